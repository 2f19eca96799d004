"""Samples → minute, hour and day data (HJ 212 Avg/Min/Max/Cou + Flag).

Pure functions: the store feeds them rows and writes back what they return,
so the arithmetic is tested without a database or a clock.

Rules (HJ 212-2017 statistics, as the data logger applies them):

* Only samples flagged N or T carry a measured value; Avg/Min/Max are
  taken over those. D/B (and the operating flags F/M/S/C) carry none.
* Cou (累计值) depends on the factor: ``sum`` adds the samples (per-interval
  quantities), ``delta`` is the rise of a counter such as an energy meter's
  kWh (a drop means the meter was reset: that step adds nothing),
  ``integral`` is a rate over the period's time (flow m³/h → m³).
* Hour data is built from minute data and day data from hour data, so a
  long period never needs its raw samples again: Avg weighted by valid
  sample count, Min of Min, Max of Max, Cou summed.
* Flag of a period: no valid value → the most frequent invalid flag
  (ties: D before B, a device fault tells the technician more than a
  silent line); valid values covering less than ``min_valid_ratio`` of the
  samples → that invalid flag too (the period is incomplete, the values
  are still given); otherwise T if Avg breaks a limit, else N.
* HJ 212 minute data (CN 2051) goes to a platform every ``min_interval``
  minutes (1-60, CN 1064): :func:`over_interval` builds those records from
  the stored 1-minute ones the same way (Avg weighted by valid samples, Min
  of Min, Max of Max, Cou summed) and gives each the *worst* flag of its
  minutes, so a fault or an over-limit in any minute shows in the record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from itertools import pairwise
from typing import Literal

Period = Literal["minute", "hour", "day"]
VALID_FLAGS = frozenset("NT")
#: order used to break ties between invalid flags (most telling first)
INVALID_PRECEDENCE = "DBFMSC"
#: data flags from worst to best; a flag not listed ranks just after the invalid ones
FLAG_SEVERITY = INVALID_PRECEDENCE + "TN"
PERIOD_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Sample:
    """One reading of one point (real-time data, 实时数据)."""

    ts: datetime
    key: str
    value: float | None
    flag: str


@dataclass(frozen=True)
class Aggregate:
    """Statistics of one key over one period."""

    period: Period
    start: datetime
    key: str
    avg: float | None
    min: float | None
    max: float | None
    cou: float | None
    flag: str
    n_valid: int
    n_total: int
    last: float | None = None  # last valid value, carried so counters chain across periods


@dataclass(frozen=True)
class Rule:
    """What the statistics need to know about a key."""

    cou: str = "none"
    cou_unit_s: float = 3600.0
    low: float | None = None
    high: float | None = None


def period_start(ts: datetime, period: Period, tz: tzinfo | None = None) -> datetime:
    """Start of the period that holds ``ts``.

    ``ts`` is the board's wall time without zone, as the data logger stamps
    samples. Without ``tz`` the periods are the board's. With ``tz`` (the
    site's zone) they are the site's -- a day runs from the site's midnight,
    an hour from the site's full hour, whatever zone the board runs in -- and
    the start is returned as board wall time too, so HJ 212 DataTime (site
    time) of a day record is the site's midnight.
    """
    if tz is None:
        return _floor(ts, period)
    return _floor(ts.astimezone(tz), period).astimezone().replace(tzinfo=None)


def _floor(ts: datetime, period: Period) -> datetime:
    if period == "minute":
        return ts.replace(second=0, microsecond=0)
    if period == "hour":
        return ts.replace(minute=0, second=0, microsecond=0)
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def period_end(start: datetime, period: Period) -> datetime:
    return start + timedelta(seconds=PERIOD_SECONDS[period])


def _period_flag(
    invalid: Counter[str], n_valid: int, n_total: int, avg: float | None, rule: Rule, ratio: float
) -> str:
    if n_total == 0:
        return "B"
    if n_valid == 0 or n_valid < ratio * n_total:
        best = max(
            invalid.items(),
            key=lambda kv: (
                kv[1],
                -INVALID_PRECEDENCE.find(kv[0]) if kv[0] in INVALID_PRECEDENCE else -99,
            ),
        )
        return best[0]
    if avg is not None and (
        (rule.low is not None and avg < rule.low) or (rule.high is not None and avg > rule.high)
    ):
        return "T"
    return "N"


def aggregate_samples(
    samples: Sequence[Sample],
    *,
    key: str,
    period: Period,
    start: datetime,
    rule: Rule = Rule(),
    prev_value: float | None = None,
    min_valid_ratio: float = 0.75,
) -> Aggregate:
    """Statistics of one key's samples inside one period.

    ``prev_value`` is the last valid value before the period; for counters
    (cou=delta) the rise from it to the first sample belongs to this period.
    """
    ordered = sorted(samples, key=lambda s: s.ts)
    values = [s.value for s in ordered if s.flag in VALID_FLAGS and s.value is not None]
    invalid = Counter(
        s.flag for s in ordered if not (s.flag in VALID_FLAGS and s.value is not None)
    )
    n_valid, n_total = len(values), len(ordered)
    avg = sum(values) / n_valid if n_valid else None
    cou: float | None = None
    if rule.cou == "sum":
        cou = float(sum(values)) if n_valid else None
    elif rule.cou == "delta":
        chain = ([prev_value] if prev_value is not None else []) + values
        cou = sum(max(0.0, b - a) for a, b in pairwise(chain)) if chain else None
    elif rule.cou == "integral" and avg is not None:
        cou = avg * PERIOD_SECONDS[period] / rule.cou_unit_s
    flag = _period_flag(invalid, n_valid, n_total, avg, rule, min_valid_ratio)
    return Aggregate(
        period=period,
        start=start,
        key=key,
        avg=avg,
        min=min(values) if values else None,
        max=max(values) if values else None,
        cou=cou,
        flag=flag,
        n_valid=n_valid,
        n_total=n_total,
        last=values[-1] if values else prev_value,
    )


def combine(
    parts: Sequence[Aggregate],
    *,
    key: str,
    period: Period,
    start: datetime,
    rule: Rule = Rule(),
    min_valid_ratio: float = 0.75,
) -> Aggregate:
    """Shorter periods → one longer period (minute → hour → day)."""
    valid = [p for p in parts if p.n_valid > 0 and p.avg is not None]
    n_valid = sum(p.n_valid for p in valid)
    n_total = sum(p.n_total for p in parts)
    avg = sum(p.avg * p.n_valid for p in valid) / n_valid if n_valid else None  # type: ignore[operator]
    invalid: Counter[str] = Counter()
    for p in parts:
        bad = p.n_total - p.n_valid
        if bad > 0:
            invalid[p.flag if p.flag not in VALID_FLAGS else "B"] += bad
    cous = [p.cou for p in parts if p.cou is not None]
    cou = float(sum(cous)) if cous and rule.cou != "none" else None
    last = next(
        (p.last for p in sorted(parts, key=lambda p: p.start, reverse=True) if p.last is not None),
        None,
    )
    return Aggregate(
        period=period,
        start=start,
        key=key,
        avg=avg,
        min=min(p.min for p in valid if p.min is not None) if valid else None,
        max=max(p.max for p in valid if p.max is not None) if valid else None,
        cou=cou,
        flag=_period_flag(invalid, n_valid, n_total, avg, rule, min_valid_ratio),
        n_valid=n_valid,
        n_total=n_total,
        last=last,
    )


def group_by_period(
    samples: Iterable[Sample], period: Period, tz: tzinfo | None = None
) -> dict[tuple[str, datetime], list[Sample]]:
    """Bucket samples by (key, period start); periods in ``tz`` as :func:`period_start`."""
    out: dict[tuple[str, datetime], list[Sample]] = {}
    for s in samples:
        out.setdefault((s.key, period_start(s.ts, period, tz)), []).append(s)
    return out


def worst_flag(flags: Iterable[str]) -> str:
    """The worst of ``flags`` (:data:`FLAG_SEVERITY`): D, B, F, M, S, C, unknown, T, N."""

    def rank(flag: str) -> tuple[int, str]:
        i = FLAG_SEVERITY.find(flag) if len(flag) == 1 else -1
        if i < 0:
            return (len(INVALID_PRECEDENCE), flag)
        return (i if i < len(INVALID_PRECEDENCE) else i + 1, flag)

    return min(flags, key=rank)


def _site_wall(ts: datetime, tz: tzinfo | None) -> datetime:
    return ts if tz is None else ts.astimezone(tz)


def _board_wall(ts: datetime, tz: tzinfo | None) -> datetime:
    return ts if tz is None else ts.astimezone().replace(tzinfo=None)


def interval_start(ts: datetime, minutes: int, tz: tzinfo | None = None) -> datetime:
    """Start of the ``minutes``-long upload interval that holds ``ts``.

    Intervals are counted from the site's midnight in ``tz`` (``ts`` and the
    result are board wall time, as :func:`period_start`): with 5 minutes a
    record covers 10:00-10:05 of the site's clock whatever the board's zone.
    An interval that does not divide the day (7 minutes) is cut at midnight,
    so no record spans two days.
    """
    if not 1 <= minutes <= 1440:
        raise ValueError(f"minutes: expected 1..1440, found {minutes}")
    site = _site_wall(ts, tz)
    of_day = (site.hour * 60 + site.minute) // minutes * minutes
    start = site.replace(hour=of_day // 60, minute=of_day % 60, second=0, microsecond=0)
    return _board_wall(start, tz)


def interval_end(start: datetime, minutes: int, tz: tzinfo | None = None) -> datetime:
    """End of the interval beginning at ``start`` (board wall time): ``minutes`` later,
    or the site's next midnight when that comes first."""
    site = _site_wall(start, tz)
    midnight = (site.replace(hour=0, minute=0, second=0, microsecond=0)) + timedelta(days=1)
    end = min(site + timedelta(minutes=minutes), midnight)
    return _board_wall(end, tz)


def over_interval(
    parts: Iterable[Aggregate], minutes: int, tz: tzinfo | None = None
) -> list[Aggregate]:
    """1-minute records → one record per key and ``minutes``-long interval (HJ 212 2051).

    Avg is weighted by each minute's valid samples, Min is the least Min, Max
    the greatest Max, Cou the sum of the minutes' Cou (None when none had
    one), the flag the worst of the minutes' flags; sample counts add up.
    Each record starts at :func:`interval_start`; sorted by start, then key.
    """
    groups: dict[tuple[datetime, str], list[Aggregate]] = {}
    for p in parts:
        groups.setdefault((interval_start(p.start, minutes, tz), p.key), []).append(p)
    out = []
    for (start, key), group in sorted(groups.items()):
        valid = [p for p in group if p.n_valid > 0 and p.avg is not None]
        n_valid = sum(p.n_valid for p in valid)
        if len(valid) == 1:
            avg: float | None = valid[0].avg
        else:
            avg = sum(p.avg * p.n_valid for p in valid) / n_valid if n_valid else None  # type: ignore[operator]
        mins = [p.min for p in valid if p.min is not None]
        maxs = [p.max for p in valid if p.max is not None]
        cous = [p.cou for p in group if p.cou is not None]
        last = next(
            (
                p.last
                for p in sorted(group, key=lambda p: p.start, reverse=True)
                if p.last is not None
            ),
            None,
        )
        out.append(
            Aggregate(
                period="minute",
                start=start,
                key=key,
                avg=avg,
                min=min(mins) if mins else None,
                max=max(maxs) if maxs else None,
                cou=(cous[0] if len(cous) == 1 else float(sum(cous))) if cous else None,
                flag=worst_flag(p.flag for p in group),
                n_valid=sum(p.n_valid for p in group),
                n_total=sum(p.n_total for p in group),
                last=last,
            )
        )
    return out
