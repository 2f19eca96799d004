"""Minute/hour/day statistics (pure, no clock, no database)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from edged.datalogger.aggregate import (
    Rule,
    Sample,
    aggregate_samples,
    combine,
    group_by_period,
    period_start,
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
