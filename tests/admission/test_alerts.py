"""Alert levels with time windows: the level in force is derived, and the gate applies it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from edged.admission.alerts import covered_by, level_at, next_change
from edged.admission.model import AlertEntry, GateRead, Vehicle
from edged.admission.policy import EmissionRule, PolicyConfig, decide_read
from edged.admission.registry import Registry

TZ = timezone(timedelta(hours=8))
# near the wall clock: a snapshot leaves out entries that ended over a month before it
T0 = datetime.now(TZ).replace(minute=0, second=0, microsecond=0)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def entry(i: int, level: str, start: float, end: float | None, set_at: float = 0) -> AlertEntry:
    return AlertEntry(i, level, "环保专员", h(set_at), h(start), None if end is None else h(end))


# orange announced for the 2nd and 3rd day; red announced later for part of it;
# the red lifted early by a "none" set later still
SCHEDULE = [
    entry(1, "orange", 24, 72, set_at=0),
    entry(2, "red", 36, 60, set_at=10),
    entry(3, "none", 48, 60, set_at=20),
]


@pytest.mark.parametrize(
    "at,level",
    [
        (0, "none"),
        (23.99, "none"),
        (24, "orange"),
        (36, "red"),
        (47.9, "red"),
        (48, "none"),
        (59.9, "none"),
        (60, "orange"),
        (71.9, "orange"),
        (72, "none"),
    ],
)
def test_the_level_at_each_moment(at: float, level: str) -> None:
    assert level_at(SCHEDULE, h(at)) == level


def test_where_windows_overlap_the_entry_set_last_wins_whatever_the_order_given() -> None:
    assert level_at(reversed(SCHEDULE), h(40)) == "red"
    late_yellow = entry(4, "yellow", 0, None, set_at=30)
    assert level_at([*SCHEDULE, late_yellow], h(40)) == "yellow"
    assert level_at([], h(40)) == "none"


def test_the_next_change_is_when_the_level_differs() -> None:
    assert next_change(SCHEDULE, h(0)) == h(24)
    assert next_change(SCHEDULE, h(24)) == h(36)
    assert next_change(SCHEDULE, h(50)) == h(60)
    assert next_change(SCHEDULE, h(72)) is None
    same = [entry(1, "red", 0, 10), entry(2, "red", 10, 20, set_at=1)]
    assert next_change(same, h(5)) == h(20), "a boundary where the level stays is no change"


def test_an_entry_is_covered_only_by_a_later_one_holding_all_of_its_window() -> None:
    a = entry(1, "orange", 24, 72)
    assert covered_by(entry(2, "none", 20, None, set_at=1), a)
    assert not covered_by(entry(2, "none", 30, None, set_at=1), a)
    assert not covered_by(entry(2, "none", 20, 70, set_at=1), a)
    assert not covered_by(replace(a, id=0, set_at=h(-1)), a), "an earlier entry never covers"


@pytest.fixture
def reg(tmp_path: Path):
    r = Registry(tmp_path / "r.db")
    yield r
    r.close()


def test_a_scheduled_red_alert_starts_and_ends_on_time(reg: Registry) -> None:
    """A snapshot built before the alert starts still gives the right level at each moment."""
    reg.set_alert_level(
        "red", "环保专员", "市重污染天气红色预警", now=h(0), valid_from=h(20), valid_until=h(44)
    )
    snap = reg.snapshot()
    assert [snap.alert_at(h(t)) for t in (19.99, 20, 43.99, 44)] == ["none", "red", "red", "none"]
    e = snap.alert_entry_at(h(30))
    assert (e.set_by, e.reason, e.valid_until) == ("环保专员", "市重污染天气红色预警", h(44))
    assert reg.alert_state(h(30)).level == "red" and reg.alert_state(h(50)).level == "none"
    reg.set_alert_level("none", "环保专员", "预警提前解除", now=h(30))
    assert [reg.snapshot().alert_at(h(t)) for t in (25, 31)] == ["red", "none"]
    assert [e.level for e in reg.list_alerts()] == ["red", "none"]


def test_a_repeated_level_adds_nothing_and_old_slivers_leave_the_snapshot(
    reg: Registry,
) -> None:
    for i in range(5):  # a backend that repeats the level it has in force
        reg.set_alert_level("orange", "backend", now=h(i))
    assert [e.id for e in reg.list_alerts()] == [1]
    reg.set_alert_level("red", "backend", now=h(5))
    reg.set_alert_level("orange", "backend", now=h(6))
    assert [e.level for e in reg.list_alerts()] == ["orange", "red", "orange"]
    assert len(reg.alert_schedule.entries(h(7))) == 3, "a month back, each was in force"
    assert [e.id for e in reg.alert_schedule.entries(h(7) + timedelta(days=32))] == [3]
    reg.set_alert_level("none", "backend", now=h(8), valid_from=h(0))
    assert [e.level for e in reg.list_alerts()] == ["none"], "covers all three, for ever"
    assert len(reg.list_alerts(include_superseded=True)) == 4, "the file keeps every entry"


def test_alert_levels_are_checked(reg: Registry) -> None:
    with pytest.raises(ValueError, match=r"^level: .*; valid_until: must be after"):
        reg.set_alert_level("purple", "a", valid_from=h(5), valid_until=h(4), now=h(0))
    with pytest.raises(ValueError, match="has passed"):
        reg.set_alert_level("red", "a", valid_from=h(-5), valid_until=h(-4), now=h(0))
    with pytest.raises(ValueError, match=r"^actor: "):
        reg.set_alert_level("red", " ", now=h(0))


V5 = Vehicle("冀A12345", fuel="diesel", emission_stage="国5")
V4 = replace(V5, plate="冀A44444", emission_stage="国4")


def test_an_orange_alert_refuses_through_decide_read_with_a_real_snapshot(reg: Registry) -> None:
    """The fault: the pipeline gave the snapshot's alert *state* where a level was wanted,
    so no alert rule ever applied. ``decide_read`` now takes the level from the snapshot."""
    lenient = PolicyConfig(
        rules=[
            EmissionRule(min_stage="国6a", fuels=["diesel"], alert_levels=["orange", "red"]),
            EmissionRule(min_stage="国4", fuels=["diesel"]),
        ]
    )
    reg.upsert_vehicles([V5, V4])
    reg.set_alert_level("orange", "环保专员", now=h(0), valid_from=h(10), valid_until=h(20))
    snap = reg.snapshot()
    for policy in (PolicyConfig(), lenient):
        for v in (V5, V4) if policy is lenient else (V5,):
            before = decide_read(GateRead(v.plate), snap, h(9), "in", policy)
            during = decide_read(GateRead(v.plate), snap, h(15), "in", policy)
            after = decide_read(GateRead(v.plate), snap, h(20), "in", policy)
            assert (before.action, during.action, after.action) == ("allow", "deny", "allow")
            assert (before.alert_level, during.alert_level) == ("none", "orange")
            assert during.reason == "stage_below_minimum" and "需国6a" in during.text_zh
