"""Minute data (CN 2051) as a platform gets it: one record per its ``min_interval`` minutes.

The data logger closes and keeps 1-minute records; a platform gets minute
data every ``min_interval`` minutes (1-60, CN 1064), aggregated from them
(:func:`~edged.datalogger.aggregate.over_interval`). The feed that sends it
and the answer to a history request (CN 2051 with BeginTime/EndTime) both
build it here, so a platform asking again for what it missed gets the same
records it would have been sent. Times are the board's wall time, as the
data logger keeps them; intervals are aligned to the site's clock.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Protocol

from edged.datalogger.aggregate import Aggregate, interval_end, interval_start, over_interval
from edged.datalogger.store import factor_fields

Factors = dict[str, dict[str, float | str]]


class MinuteSource(Protocol):
    """The data logger's 1-minute records and how far they are closed (DataLoggerService)."""

    def aggregates(self, period: str, begin: datetime, end: datetime) -> list[Aggregate]: ...

    def closed_until(self, period: str) -> datetime | None: ...


def interval_records(
    source: MinuteSource, begin: datetime, until: datetime, minutes: int, tz: tzinfo | None
) -> list[tuple[datetime, datetime, Factors]]:
    """(start, end, factors) of each ``minutes``-long interval that starts at or after
    ``begin`` and is over by ``until`` (minutes before ``until`` are closed), oldest first."""
    parts = [
        a for a in source.aggregates("minute", begin, until) if a.start < until and "." not in a.key
    ]
    records: dict[datetime, Factors] = {}
    for rec in over_interval(parts, minutes, tz):
        records.setdefault(rec.start, {})[rec.key] = factor_fields(rec)
    out = []
    for start, factors in sorted(records.items()):
        end = interval_end(start, minutes, tz)
        if start >= begin and end <= until:
            out.append((start, end, factors))
    return out


def minute_history(
    source: MinuteSource, begin: datetime, end: datetime, minutes: int, tz: tzinfo | None
) -> list[tuple[datetime, Factors]]:
    """Minute data whose DataTime lies in ``begin``..``end`` (both inclusive), for a history
    answer: only intervals that are over, as the feed would have sent them."""
    closed = source.closed_until("minute")
    if closed is None or end < begin:
        return []
    until = min(closed, interval_end(interval_start(end, minutes, tz), minutes, tz))
    return [
        (start, factors)
        for start, _end, factors in interval_records(source, begin, until, minutes, tz)
        if start <= end
    ]
