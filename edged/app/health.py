"""Figures for the health status: temperature, disk, clock, frame rate.

The box stands in a roadside cabinet in the sun, runs from an SD card and
has no one watching its clock; the status a backend sees every few seconds
is how anyone learns that it overheats, fills up or drifts. Each figure is a
small function that answers ``None`` where the board cannot tell, so a
missing sensor never breaks the status. Paths are parameters so tests (and
boards with other sensors) can point them elsewhere.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import shutil
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
TIMESYNC_MARKER = Path("/run/systemd/timesync/synchronized")

_STA_UNSYNC = 0x0040  # kernel: clock not synchronised (linux/timex.h)
_MAXERROR_UNSYNCED = 16_000_000  # µs; the kernel's "no sync" ceiling, as timedatectl uses


def cpu_temperature_c(path: str | Path = THERMAL_ZONE) -> float | None:
    """SoC temperature in °C, or None where the board has no thermal zone.

    The kernel reports millidegrees; a few vendor kernels report degrees, so
    small numbers are taken as they are.
    """
    try:
        raw = float(Path(path).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    return round(raw / 1000 if abs(raw) >= 1000 else raw, 1)


def disk_use(path: str | Path) -> dict[str, Any] | None:
    """Size and free space of the file system holding ``path`` (MB, %), or None."""
    try:
        du = shutil.disk_usage(path)
    except OSError:
        return None
    mb = 1024 * 1024
    return {
        "path": str(path),
        "total_mb": round(du.total / mb, 1),
        "free_mb": round(du.free / mb, 1),
        "used_pct": round(100 * (du.total - du.free) / du.total, 1) if du.total else None,
    }


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>; only modes, status and maxerror are read,
    # the tail is padding the kernel may write into.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_pad", ctypes.c_int * 11),
    ]


def _kernel_synchronized() -> bool | None:
    """The kernel's own verdict (read-only adjtimex, as timedatectl asks it)."""
    try:
        name = ctypes.util.find_library("c")
        if name is None:
            return None
        libc = ctypes.CDLL(name, use_errno=True)
        tx = _Timex()  # modes = 0: read only, needs no privilege
        if libc.adjtimex(ctypes.byref(tx)) < 0:
            return None
    except (OSError, AttributeError):
        return None
    return not (tx.status & _STA_UNSYNC) and tx.maxerror < _MAXERROR_UNSYNCED


def clock_synchronized(
    marker: str | Path | None = TIMESYNC_MARKER, kernel: bool = True
) -> bool | None:
    """Is the system clock set by NTP? None when it cannot be told.

    systemd-timesyncd touches ``marker`` once it has synchronised; chrony and
    ntpd do not, but every one of them clears the kernel's unsynchronised
    flag, so the kernel is asked when the marker is absent.
    """
    if marker is not None and Path(marker).exists():
        return True
    return _kernel_synchronized() if kernel else None


def clock_status(
    platform_clock: Any = None,
    platform_set_at: datetime | None = None,
    *,
    marker: str | Path | None = TIMESYNC_MARKER,
    kernel: bool = True,
) -> dict[str, Any]:
    """NTP state and, once an HJ 212 platform has set the time (CN 1012), the
    offset between the platform's clock and the board's, in seconds."""
    offset = None
    if platform_clock is not None and platform_set_at is not None:
        offset = round((platform_clock.now() - datetime.now()).total_seconds(), 3)
    return {
        "ntp_synchronized": clock_synchronized(marker, kernel),
        "platform_offset_s": offset,
        "platform_set_at": platform_set_at.isoformat(timespec="seconds")
        if platform_set_at
        else None,
    }


class RateMeter:
    """Events per second over the last ``window`` seconds (frames actually delivered).

    The configured camera fps is what the gate asks for; this is what it got,
    which drops when an RTSP camera stalls or the board is overloaded.
    """

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        """Events per second in the window; 0.0 when nothing arrived in it."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            n = len(self._times)
            if n < 2:
                return 0.0
            span = max(now - self._times[0], self._times[-1] - self._times[0])
        return round((n - 1) / span, 2) if span > 0 else 0.0
