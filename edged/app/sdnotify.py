"""systemd's notify protocol over ``NOTIFY_SOCKET``, without libsystemd.

``Type=notify`` lets systemd know when the gate is really ready (models
loaded, ledger open), and ``WatchdogSec`` restarts a daemon whose main loop
has hung — which only works if WATCHDOG=1 is sent from the main loop itself
and only while it is healthy.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    """Sends state lines to systemd; silently does nothing outside systemd."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self._sock: socket.socket | None = None
        if self.address:
            addr = self.address
            if addr.startswith("@"):
                addr = "\0" + addr[1:]
            self._target = addr
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, *lines: str) -> bool:
        """Send ``KEY=value`` lines in one datagram; False when not under systemd or on error."""
        if self._sock is None:
            return False
        try:
            self._sock.sendto("\n".join(lines).encode("utf-8"), self._target)
            return True
        except OSError:
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec (seconds), or None when no watchdog is set."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1e6 / 2
    except ValueError:
        return None
