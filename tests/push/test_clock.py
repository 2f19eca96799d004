"""A pushing camera's clock against the box's: measured on live reads, warned of hourly."""

from __future__ import annotations

from datetime import datetime, timedelta

from edged.lane.offline import clock_note
from edged.push.clock import REPEAT_S, ClockWatch, describe, span

T = datetime.fromisoformat("2026-12-01T08:00:00+08:00")


def test_an_off_clock_is_warned_of_once_an_hour_and_its_return_once() -> None:
    watch = ClockWatch()
    assert watch.note(T - timedelta(seconds=0.4), T, 0.0) is None and not watch.off
    assert watch.offset_s == -0.4, "a live read's own latency is no offset worth a word"
    assert watch.note(T + timedelta(seconds=95), T, 10.0) == "off"
    assert watch.note(T + timedelta(seconds=96), T, 20.0) is None, "said already"
    assert watch.note(T + timedelta(seconds=96), T, 10.0 + REPEAT_S) == "off", "an hour on"
    assert watch.note(T + timedelta(seconds=1), T, 10.0 + REPEAT_S + 5) == "ok"
    assert watch.note(T, T, 10.0 + REPEAT_S + 6) is None and watch.offset_s == 0.0


def test_offsets_read_as_a_technician_says_them() -> None:
    assert describe(43.2) == "43 s ahead of the box's"
    assert describe(-600) == "10 min behind the box's"
    assert describe(-(2 * 3600 + 5 * 60), "NTP") == "2 h 5 min behind NTP"
    assert describe(9 * 365 * 86400) == "3285 days ahead of the box's"
    assert (span(-43.2), span(7200), span(7260)) == ("43 s", "2 h 0 min", "2 h 1 min")


def test_a_late_reads_time_is_doubted_only_when_the_clock_is_known_off_or_ahead() -> None:
    assert clock_note(T - timedelta(hours=3), T, None) is None, "hours old is what late means"
    assert clock_note(T - timedelta(hours=3), T, 2.0) is None
    assert "10 min behind" in (clock_note(T - timedelta(hours=3), T, -600.0) or "")
    assert "5 min ahead of the box's clock" in (clock_note(T + timedelta(minutes=5), T, None) or "")
