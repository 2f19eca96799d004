"""How often a platform gets real-time data (CN 2011) and minute data (CN 2051).

Each platform may set its own (CN 1062 real-time interval in seconds, CN 1064
minute interval in minutes) and read them back (1061/1063); the config's
``[hj212] rtd_interval_s`` / ``min_interval_min`` are where they start. The
link keeps them per platform and stores what a platform set, so the cadence
it chose survives a restart; the data feed reads them on every round, so a
change takes effect at once.
"""

from __future__ import annotations

from collections.abc import Callable

#: what a platform may set, inclusive (HJ 212-2017 §6.6: 30 s .. 1 h, 1 .. 60 min)
BOUNDS = {"rtd_interval": (30, 3600), "min_interval": (1, 60)}


class Intervals:
    """Real-time (s) and minute (min) upload intervals of one platform.

    ``on_change(name, value)`` runs on every :meth:`set` (the link stores the
    value durably there); names are ``"rtd_interval"`` and ``"min_interval"``.
    A value missing or out of bounds (an old store) falls back to ``defaults``.
    """

    def __init__(
        self,
        rtd_interval: int | None = 30,
        min_interval: int | None = 5,
        on_change: Callable[[str, int], None] | None = None,
        defaults: tuple[int, int] = (30, 5),
    ) -> None:
        self.rtd_interval = _within("rtd_interval", rtd_interval, defaults[0])
        self.min_interval = _within("min_interval", min_interval, defaults[1])
        self.on_change = on_change

    def set(self, name: str, value: int) -> None:
        low, high = BOUNDS[name]
        if not low <= value <= high:
            raise ValueError(f"{name}: expected {low}..{high}, found {value}")
        if self.on_change is not None:
            self.on_change(name, value)
        setattr(self, name, value)


def _within(name: str, value: int | None, default: int) -> int:
    low, high = BOUNDS[name]
    return value if value is not None and low <= value <= high else default
