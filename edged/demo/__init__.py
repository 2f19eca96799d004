"""``edged demo``: a simulated gate whose vehicles arrive on real device interfaces."""
