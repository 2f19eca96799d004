"""Which value and flag each factor gets in a real-time packet, and when one is due (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from edged.datalogger.aggregate import Sample
from edged.hj212.realtime_feed import ANALYSER_CADENCE_S, rtd_factors, slot

NOW = datetime(2026, 3, 1, 10, 0, 0)


def ago(seconds: float, key: str, value: float | None, flag: str = "N") -> Sample:
    return Sample(NOW - timedelta(seconds=seconds), key, value, flag)


def test_fresh_values_go_out_with_their_flags() -> None:
    latest = {
        "i12001": ago(10, "i12001", 21.5),
        "i12002": ago(10, "i12002", 99.0, "T"),
        "a34013": ago(50, "a34013", 3.25, "M"),  # analyser in maintenance: value and M
        "meter.raw": ago(1, "meter.raw", 1.0),  # not an HJ 212 factor code
    }
    got = rtd_factors(latest, NOW, 30, {"i12001": 62.0, "i12002": 62.0})
    assert got == {
        "a34013": {"Rtd": 3.25, "Flag": "M"},
        "i12001": {"Rtd": 21.5, "Flag": "N"},
        "i12002": {"Rtd": 99.0, "Flag": "T"},
    }


def test_a_factor_without_a_fresh_value_gets_only_a_flag() -> None:
    cadence = {f"i1200{i}": 62.0 for i in range(1, 6)}
    latest = {
        "i12001": ago(5, "i12001", None, "B"),  # polled just now, no answer
        "i12002": ago(5, "i12002", None, "D"),  # polled just now, refused
        "i12003": ago(63, "i12003", 7.0),  # older than its cadence: stale
        "i12004": ago(600, "i12004", None, "D"),  # stale, and a fault when last read
        "a34013": ago(ANALYSER_CADENCE_S + 1, "a34013", 1.0),  # analyser gone quiet
    }
    got = rtd_factors(latest, NOW, 30, cadence)
    assert got == {
        "a34013": {"Flag": "B"},
        "i12001": {"Flag": "B"},
        "i12002": {"Flag": "D"},
        "i12003": {"Flag": "B"},
        "i12004": {"Flag": "D"},
        "i12005": {"Flag": "B"},  # in the register map, never sampled
    }


def test_freshness_is_the_longer_of_the_platforms_interval_and_the_factors_cadence() -> None:
    latest = {"i12001": ago(100, "i12001", 2.0), "a34013": ago(100, "a34013", 3.0)}
    slow_poll = rtd_factors(latest, NOW, 30, {"i12001": 302.0})
    assert slow_poll["i12001"] == {"Rtd": 2.0, "Flag": "N"}  # a 5-minute meter keeps its value
    assert slow_poll["a34013"] == {"Flag": "B"}
    assert rtd_factors(latest, NOW, 120, {})["a34013"] == {"Rtd": 3.0, "Flag": "N"}


def test_slots_follow_the_site_clock() -> None:
    kathmandu = ZoneInfo("Asia/Kathmandu")  # +05:45: the site's full minute is not UTC's
    site = datetime(2026, 3, 1, 10, 0, 0, tzinfo=kathmandu)

    def board(dt: datetime) -> datetime:
        return dt.astimezone().replace(tzinfo=None)

    first = slot(board(site), 60, kathmandu)
    assert slot(board(site + timedelta(seconds=59)), 60, kathmandu) == first
    assert slot(board(site - timedelta(seconds=1)), 60, kathmandu) == first - 1
    assert slot(board(site + timedelta(seconds=60)), 60, kathmandu) == first + 1
    day = slot(board(site.replace(hour=0)), 3600, kathmandu)
    assert slot(board(site), 3600, kathmandu) == day + 10  # hours counted from site midnight
