"""How far a pushing camera's clock is from the box's, from its live reads. Pure.

A camera stamps each read with its own clock, and the reads it keeps while
it cannot reach the box are recorded at that time (:mod:`edged.lane.offline`).
A camera without NTP drifts, and one that lost power may restart years off;
then its late rows sit beside the wrong minutes of video. A live read
arrives within a second of being taken, so its stamp against the box's
clock measures the camera's offset: beyond ``TOLERANCE_S`` the technician is
told (once an hour while it lasts), ``edged status`` shows it, and late rows
say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: A live read is taken, encoded and posted well within this; more is the camera's clock.
TOLERANCE_S = 30.0
#: While a clock stays off, the warning comes again this often.
REPEAT_S = 3600.0
#: A read sent as live but stamped this long before it came (the camera's offset taken
#: off) is one the camera kept and sent late: history, not a truck at the barrier.
STALE_S = 60.0


@dataclass
class ClockWatch:
    """One camera's clock offset (camera minus box, seconds) and when it was last warned of."""

    offset_s: float | None = None
    warned_at: float | None = None  # monotonic time of the last warning; None: not off

    @property
    def off(self) -> bool:
        return self.offset_s is not None and abs(self.offset_s) > TOLERANCE_S

    def note(self, shot_at: datetime, received: datetime, mono: float) -> str | None:
        """A live read stamped ``shot_at`` came in at ``received``: ``"off"`` when a warning
        is due, ``"ok"`` when the clock came back within tolerance, else None."""
        self.offset_s = round((shot_at - received).total_seconds(), 1)
        if self.off:
            if self.warned_at is None or mono - self.warned_at >= REPEAT_S:
                self.warned_at = mono
                return "off"
            return None
        if self.warned_at is not None:
            self.warned_at = None
            return "ok"
        return None


def span(seconds: float) -> str:
    """``43 s`` / ``10 min`` / ``2 h 5 min`` / ``3 days``: a length of time as said."""
    s = abs(seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 2 * 3600:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"
    return f"{s / 86400:.0f} days"


def describe(offset_s: float, than: str = "the box's") -> str:
    """``43 s ahead of the box's`` / ``2 h 5 min behind the box's``: as a technician says it."""
    return f"{span(offset_s)} {f'ahead of {than}' if offset_s > 0 else f'behind {than}'}"
