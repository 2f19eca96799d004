"""SQLite store: aggregates from disk, catch-up after a power cut, retention, records()."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

import pytest

from edged.config.schema import SchemaError, build
from edged.datalogger.aggregate import Rule, Sample
from edged.datalogger.store import DataStore, DataStoreConfig

T0 = datetime(2026, 3, 1, 10, 0, 0)
RULES = {"e01001": Rule(cou="delta"), "i12001": Rule(high=50.0)}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def feed(store: DataStore, start: datetime, minutes: int, every_s: int = 30) -> None:
    """Energy counter rising 0.5 kWh per sample and a current at 10 A."""
    for i in range(minutes * 60 // every_s):
        ts = start + timedelta(seconds=i * every_s)
        store.add_samples(
            [Sample(ts, "e01001", 1000 + 0.5 * i, "N"), Sample(ts, "i12001", 10.0, "N")]
        )


def test_minute_hour_day_rows_and_records(tmp_path):
    clock = Clock(T0)
    st = DataStore(tmp_path / "d.sqlite3", RULES, clock=clock)
    feed(st, T0, 120)  # 10:00 .. 11:59:30
    clock.now = T0 + timedelta(hours=2, seconds=5)
    assert st.close_periods() == {"minute": 240, "hour": 4, "day": 0}
    assert st.close_periods() == {"minute": 0, "hour": 0, "day": 0}  # idempotent

    hours = st.records("2061", T0, T0 + timedelta(hours=1))
    assert [ts for ts, _ in hours] == [T0, T0 + timedelta(hours=1)]
    first = hours[0][1]
    assert first["i12001"] == {"Avg": 10.0, "Min": 10.0, "Max": 10.0, "Flag": "N"}
    assert first["e01001"]["Cou"] == pytest.approx(59.5)  # 120 samples, first has no predecessor
    assert hours[1][1]["e01001"]["Cou"] == pytest.approx(60.0)  # chained across the hour boundary

    minutes = st.records("2051", T0, T0 + timedelta(minutes=1))
    assert len(minutes) == 2 and minutes[1][1]["e01001"]["Cou"] == pytest.approx(1.0)

    rt = st.records("2011", T0, T0 + timedelta(seconds=30))
    assert rt == [
        (T0, {"e01001": {"Rtd": 1000.0, "Flag": "N"}, "i12001": {"Rtd": 10.0, "Flag": "N"}}),
        (
            T0 + timedelta(seconds=30),
            {"e01001": {"Rtd": 1000.5, "Flag": "N"}, "i12001": {"Rtd": 10.0, "Flag": "N"}},
        ),
    ]
    clock.now = datetime(2026, 3, 2, 0, 0, 1)
    assert st.close_periods()["day"] == 2
    (day,) = st.records("2031", datetime(2026, 3, 1), datetime(2026, 3, 1))
    assert day[1]["e01001"]["Cou"] == pytest.approx(119.5)
    with pytest.raises(ValueError, match=r"^cn: "):
        st.records("9999", T0, T0)


def test_faulty_samples_keep_flags_and_local_keys_are_not_uploaded(tmp_path):
    st = DataStore(tmp_path / "d.sqlite3", RULES)
    st.add_samples([Sample(T0, "i12001", None, "B"), Sample(T0, "fan.raw", 3.0, "N")])
    st.add_samples([Sample(T0 + timedelta(seconds=30), "i12001", None, "B")])
    st.close_periods(T0 + timedelta(minutes=1))
    assert st.records("2011", T0, T0) == [(T0, {"i12001": {"Flag": "B"}})]
    assert st.records("2051", T0, T0) == [(T0, {"i12001": {"Flag": "B"}})]
    assert [a.key for a in st.aggregates("minute", T0, T0)] == ["fan.raw", "i12001"]


def test_power_cut_mid_hour_is_caught_up_from_disk(tmp_path):
    path = tmp_path / "d.sqlite3"
    st = DataStore(path, RULES)
    feed(st, T0, 30)  # 10:00–10:29:30 on disk
    st.close_periods(T0 + timedelta(minutes=10, seconds=1))  # closed up to 10:10 before the cut
    st.close()  # power gone; nothing in memory survives

    st2 = DataStore(path, RULES)  # back at 12:00
    done = st2.close_periods(T0 + timedelta(hours=2))
    assert done == {"minute": 40, "hour": 2, "day": 0}
    (hour,) = [a for a in st2.aggregates("hour", T0, T0) if a.key == "e01001"]
    assert hour.n_total == 60 and hour.flag == "N"
    assert hour.cou == pytest.approx(29.5)  # no gap in the counter chain across the restart


def test_samples_survive_on_disk_after_each_add(tmp_path):
    path = tmp_path / "d.sqlite3"
    st = DataStore(path, RULES)
    st.add_samples([Sample(T0, "i12001", 1.0, "N")])
    # a second connection (as after a crash) sees the committed row
    con = sqlite3.connect(path)
    assert con.execute("SELECT COUNT(*) FROM sample").fetchone()[0] == 1
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    assert st.db.execute_sql("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_retention(tmp_path):
    st = DataStore(tmp_path / "d.sqlite3", RULES, config=DataStoreConfig(sample_days=2))
    old = T0 - timedelta(days=400)
    for start in (old, T0 - timedelta(days=40), T0 - timedelta(days=3), T0 - timedelta(days=1)):
        st.add_samples([Sample(start, "i12001", 1.0, "N")])
        st.close_periods(start + timedelta(days=1, minutes=1))
    removed = st.prune(T0)
    assert removed == {"sample": 2 + 1, "minute": 2, "hour": 1, "day": 1}
    assert len(st.samples(old, T0)) == 1
    assert len(st.aggregates("minute", old, T0)) == 2
    assert len(st.aggregates("hour", old, T0)) == 3
    assert len(st.aggregates("day", old, T0)) == 3


@pytest.mark.parametrize(
    "kwargs,field_name",
    [
        ({"minute_days": 29}, "minute_days"),
        ({"hour_days": 100}, "hour_days"),
        ({"day_days": 364}, "day_days"),
    ],
)
def test_retention_below_the_guide_is_refused(kwargs, field_name):
    with pytest.raises(SchemaError) as info:
        build(DataStoreConfig, kwargs)
    (problem,) = info.value.problems
    assert problem.path == field_name and problem.message.startswith("expected >= ")


def test_grace_keeps_a_minute_open_for_late_samples(tmp_path):
    st = DataStore(tmp_path / "d.sqlite3", RULES, grace_seconds=10)
    st.add_samples([Sample(T0, "i12001", 1.0, "N")])
    assert st.close_periods(T0 + timedelta(seconds=65))["minute"] == 0
    st.add_samples([Sample(T0 + timedelta(seconds=59), "i12001", 3.0, "N")])  # written late
    assert st.close_periods(T0 + timedelta(seconds=71))["minute"] == 1
    (agg,) = st.aggregates("minute", T0, T0)
    assert (agg.avg, agg.n_total) == (2.0, 2)
