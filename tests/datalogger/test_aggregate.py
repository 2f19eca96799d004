"""Minute/hour/day statistics (pure, no clock, no database)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edged.datalogger.aggregate import (
    FLAG_SEVERITY,
    Aggregate,
    Rule,
    Sample,
    aggregate_samples,
    combine,
    group_by_period,
    interval_end,
    interval_start,
    over_interval,
    period_start,
    worst_flag,
)

T0 = datetime(2026, 3, 1, 10, 0, 0)


def s(sec: float, value: float | None, flag: str = "N", key: str = "i12001") -> Sample:
    return Sample(T0 + timedelta(seconds=sec), key, value, flag)


def test_avg_min_max_over_valid_samples_only():
    got = aggregate_samples(
        [s(0, 10), s(15, 20), s(30, None, "B"), s(45, 30, "T")],
        key="i12001",
        period="minute",
        start=T0,
        min_valid_ratio=0.5,
    )
    assert (got.avg, got.min, got.max) == (20, 10, 30)
    assert (got.n_valid, got.n_total, got.flag, got.cou) == (3, 4, "N", None)


def test_period_over_limit_is_judged_on_the_average():
    rule = Rule(high=25)
    spike = aggregate_samples(
        [s(0, 10), s(30, 30, "T")], key="k", period="minute", start=T0, rule=rule
    )
    assert spike.flag == "N"  # one sample above, average 20 within
    high = aggregate_samples(
        [s(0, 26, "T"), s(30, 30, "T")], key="k", period="minute", start=T0, rule=rule
    )
    assert high.flag == "T"


def test_flag_precedence_for_faulty_periods():
    only_b = aggregate_samples(
        [s(0, None, "B"), s(30, None, "B")], key="k", period="minute", start=T0
    )
    assert (only_b.flag, only_b.avg) == ("B", None)
    tie = aggregate_samples([s(0, None, "B"), s(30, None, "D")], key="k", period="minute", start=T0)
    assert tie.flag == "D"  # a device fault outranks a silent line on a tie
    more_b = aggregate_samples(
        [s(0, None, "B"), s(20, None, "B"), s(40, None, "D")], key="k", period="minute", start=T0
    )
    assert more_b.flag == "B"
    # one valid out of four: values given, but the period is flagged incomplete
    sparse = aggregate_samples(
        [s(0, 5), s(15, None, "B"), s(30, None, "B"), s(45, None, "B")],
        key="k",
        period="minute",
        start=T0,
    )
    assert (sparse.flag, sparse.avg) == ("B", 5)


def test_cou_sum_delta_integral():
    samples = [s(0, 100.0), s(20, 100.5), s(40, 101.25)]
    summed = aggregate_samples(samples, key="k", period="minute", start=T0, rule=Rule(cou="sum"))
    assert summed.cou == pytest.approx(301.75)
    delta = aggregate_samples(
        samples, key="k", period="minute", start=T0, rule=Rule(cou="delta"), prev_value=99.0
    )
    assert delta.cou == pytest.approx(2.25)  # 99 → 101.25, including the step across the boundary
    assert delta.last == 101.25
    reset = aggregate_samples(
        [s(0, 500.0), s(20, 2.0), s(40, 3.0)],
        key="k",
        period="minute",
        start=T0,
        rule=Rule(cou="delta"),
    )
    assert reset.cou == pytest.approx(1.0)  # the meter reset adds nothing, rises after it count
    flow = aggregate_samples(
        [s(0, 60.0), s(30, 120.0)],
        key="k",
        period="minute",
        start=T0,
        rule=Rule(cou="integral", cou_unit_s=3600),
    )
    assert flow.cou == pytest.approx(1.5)  # 90 m³/h for one minute


def test_hour_from_minutes_weights_by_valid_count_and_sums_cou():
    rule = Rule(cou="delta")
    m1 = aggregate_samples([s(0, 10), s(30, 12)], key="k", period="minute", start=T0, rule=rule)
    m2 = aggregate_samples(
        [s(60, 13), s(75, None, "B"), s(90, None, "B"), s(105, None, "B")],
        key="k",
        period="minute",
        start=T0 + timedelta(minutes=1),
        rule=rule,
        prev_value=m1.last,
    )
    hour = combine([m2, m1], key="k", period="hour", start=T0, rule=rule)
    assert hour.avg == pytest.approx((10 + 12 + 13) / 3)
    assert (hour.min, hour.max, hour.n_valid, hour.n_total) == (10, 13, 3, 6)
    assert hour.cou == pytest.approx(3.0)
    assert hour.flag == "B"  # half the samples of the hour are missing
    assert hour.last == 13
    day = combine(
        [hour], key="k", period="day", start=T0.replace(hour=0), rule=rule, min_valid_ratio=0.5
    )
    assert day.flag == "N" and day.avg == hour.avg


def test_empty_period_has_no_values():
    agg = combine([], key="k", period="hour", start=T0)
    assert (agg.avg, agg.min, agg.max, agg.n_total, agg.flag) == (None, None, None, 0, "B")


def test_grouping_by_period_boundaries():
    samples = [s(59.9, 1), s(60, 2), s(3599, 3), s(3600, 4)]
    minutes = group_by_period(samples, "minute")
    assert sorted(k[1].strftime("%H:%M") for k in minutes) == ["10:00", "10:01", "10:59", "11:00"]
    hours = group_by_period(samples, "hour")
    assert [len(v) for _, v in sorted(hours.items())] == [3, 1]
    assert period_start(datetime(2026, 3, 1, 23, 59, 59), "day") == datetime(2026, 3, 1)


# --- minute data per min_interval (HJ 212 2051 every 1-60 minutes) ------------------

ZONES = [None, ZoneInfo("Asia/Shanghai"), ZoneInfo("Asia/Kolkata"), ZoneInfo("Asia/Kathmandu")]
DAY0 = datetime(2026, 3, 1, 0, 0)


def minute_row(at: int, key: str, n_valid: int, n_total: int, value: float, flag: str, cou):
    """A stored 1-minute record ``at`` minutes after DAY0 (board time)."""
    valid = n_valid > 0
    return Aggregate(
        "minute",
        DAY0 + timedelta(minutes=at),
        key,
        value if valid else None,
        value - 1 if valid else None,
        value + 2 if valid else None,
        cou,
        flag,
        n_valid,
        n_total,
        value if valid else None,
    )


@st.composite
def minute_rows(draw):
    keys = draw(st.lists(st.sampled_from(["a34013", "e12001", "i12003"]), min_size=1, unique=True))
    rows = []
    for key in keys:
        starts = draw(st.lists(st.integers(0, 3 * 1440), min_size=1, max_size=40, unique=True))
        for at in starts:
            n_total = draw(st.integers(1, 12))
            n_valid = draw(st.integers(0, n_total))
            value = draw(st.floats(-1e4, 1e4, allow_nan=False))
            flag = draw(st.sampled_from([*FLAG_SEVERITY, "P"]))
            cou = draw(st.none() | st.floats(0, 1e3, allow_nan=False))
            rows.append(minute_row(at, key, n_valid, n_total, value, flag, cou))
    return rows


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


@settings(max_examples=150, deadline=None)
@given(
    rows=minute_rows(),
    minutes=st.integers(1, 60),
    tz=st.sampled_from(ZONES),
)
def test_interval_records_account_for_every_minute(rows, minutes, tz) -> None:
    out = over_interval(rows, minutes, tz)
    by_start = {(r.start, r.key): r for r in out}
    assert len(by_start) == len(out)  # one record per key and interval
    assert [(r.start, r.key) for r in out] == sorted(by_start)
    members: dict[tuple[datetime, str], list[Aggregate]] = {}
    for row in rows:
        start = interval_start(row.start, minutes, tz)
        assert start <= row.start < interval_end(start, minutes, tz)
        site = start if tz is None else start.astimezone(tz)
        assert (site.hour * 60 + site.minute) % minutes == 0 and site.second == 0
        members.setdefault((start, row.key), []).append(row)
    assert set(members) == set(by_start)
    for slot, parts in members.items():
        rec = by_start[slot]
        valid = [p for p in parts if p.n_valid]
        n_valid = sum(p.n_valid for p in parts)
        assert (rec.n_valid, rec.n_total) == (n_valid, sum(p.n_total for p in parts))
        if valid:
            weighted = sum(p.avg * p.n_valid for p in valid) / n_valid
            assert close(rec.avg, weighted)
            assert rec.min == min(p.min for p in valid) and rec.max == max(p.max for p in valid)
            assert rec.min <= rec.avg + 1e-6 and rec.avg <= rec.max + 1e-6
        else:
            assert rec.avg is rec.min is rec.max is None
        cous = [p.cou for p in parts if p.cou is not None]
        assert close(rec.cou, sum(cous) if cous else None)
        assert rec.flag == worst_flag(p.flag for p in parts)
        assert rec.flag in {p.flag for p in parts}


@settings(max_examples=100, deadline=None)
@given(rows=minute_rows(), tz=st.sampled_from(ZONES))
def test_one_minute_interval_sends_the_minutes_as_they_are(rows, tz) -> None:
    assert over_interval(rows, 1, tz) == sorted(rows, key=lambda r: (r.start, r.key))


@settings(max_examples=100, deadline=None)
@given(
    rows=minute_rows(),
    step=st.sampled_from([1, 2, 3, 5, 6, 10, 15]),
    times=st.integers(1, 4),
    tz=st.sampled_from(ZONES),
)
def test_intervals_nest(rows, step, times, tz) -> None:
    """Records over 5 minutes regrouped into 15 are the 15-minute records from the minutes."""
    whole = over_interval(rows, step * times, tz)
    nested = over_interval(over_interval(rows, step, tz), step * times, tz)
    assert [(r.start, r.key, r.flag, r.n_valid, r.n_total) for r in nested] == [
        (r.start, r.key, r.flag, r.n_valid, r.n_total) for r in whole
    ]
    for a, b in zip(nested, whole, strict=True):
        assert close(a.avg, b.avg) and a.min == b.min and a.max == b.max and close(a.cou, b.cou)


def test_worst_flag_order() -> None:
    assert worst_flag("NTN") == "T"
    assert worst_flag("NTBD") == "D"
    assert worst_flag(["N", "P"]) == "P"  # an unknown flag is worse than over-limit
    assert worst_flag(["C", "P"]) == "C"


def test_five_minute_record_from_minutes_by_hand() -> None:
    rows = [
        minute_row(600, "a34013", 6, 6, 10.0, "N", 1.0),  # 10:00
        minute_row(601, "a34013", 2, 6, 20.0, "D", 2.0),
        minute_row(604, "a34013", 6, 6, 40.0, "T", None),
        minute_row(605, "a34013", 6, 6, 99.0, "N", 5.0),  # 10:05: the next record
    ]
    first, second = over_interval(rows, 5)
    assert first.start == datetime(2026, 3, 1, 10, 0) and second.start == rows[3].start
    assert first.avg == pytest.approx((10 * 6 + 20 * 2 + 40 * 6) / 14)
    assert (first.min, first.max, first.cou, first.flag) == (9.0, 42.0, 3.0, "D")
    assert (first.n_valid, first.n_total) == (14, 18)


def test_intervals_follow_the_site_clock_and_stop_at_its_midnight() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")  # +05:30: the site's full hour is :30 in UTC
    board = datetime(2026, 3, 1, 4, 50).replace(tzinfo=ZoneInfo("UTC")).astimezone()
    at = board.replace(tzinfo=None)
    start = interval_start(at, 60, kolkata)
    assert start.replace(tzinfo=None).astimezone(kolkata).strftime("%H:%M") == "10:00"
    assert interval_end(start, 60, kolkata) - start == timedelta(hours=1)
    late = datetime(2026, 3, 1, 23, 58)
    assert interval_start(late, 7) == datetime(2026, 3, 1, 23, 55)  # 1435 = 205 x 7
    assert interval_end(datetime(2026, 3, 1, 23, 55), 7) == datetime(2026, 3, 2)
    with pytest.raises(ValueError, match=r"1\.\.1440"):
        interval_start(late, 0)
