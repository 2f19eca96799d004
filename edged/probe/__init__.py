"""``edged probe``: installation checks of every device and link."""
