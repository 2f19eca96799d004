"""The logger's clock, behind an interface the platform may set (CN 1012).

Setting the board's system time needs root and belongs to the daemon, so the
uplink only talks to a :class:`Clock`; the daemon passes one whose ``set``
does the real work, tests pass :class:`ManualClock` and move time by hand.

``now()`` is the board's local wall time, naive, as ``datetime.now()`` gives
it; ``set()`` takes that or an aware datetime (a 1012 SystemTime read in the
site's zone), so a board whose system zone differs from the site's is set right.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol


def local_naive(when: datetime) -> datetime:
    """``when`` as the board's local wall time without zone (aware ones converted)."""
    return when if when.tzinfo is None else when.astimezone().replace(tzinfo=None)


class Clock(Protocol):
    def now(self) -> datetime: ...

    def set(self, when: datetime) -> None: ...


class OffsetClock:
    """System time plus an offset the platform sets; ``on_set`` may set the RTC too."""

    def __init__(self, on_set: Callable[[datetime], None] | None = None) -> None:
        self._offset = timedelta()
        self._on_set = on_set
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now() + self._offset

    def set(self, when: datetime) -> None:
        with self._lock:
            self._offset = local_naive(when) - datetime.now()
        if self._on_set is not None:
            self._on_set(local_naive(when))


class ManualClock:
    """A clock that moves only when told: for tests and simulations."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            if self._now.tzinfo is None:
                self._now = local_naive(when)
            else:
                self._now = when if when.tzinfo is not None else when.astimezone()

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now
