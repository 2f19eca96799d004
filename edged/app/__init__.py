"""The process: daemon loop, supervisor, control socket, health, wiring."""
