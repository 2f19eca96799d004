"""Closed data-logger periods reach the HJ 212 uplink's resend outbox exactly once."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from edged.app.supervisor import Supervisor
from edged.assembly import Gate
from edged.config.load import parse
from tests.broker import free_port


class MinuteSource:
    """The data logger's ``records()`` interface over fixed minute rows."""

    def __init__(self, rows: list[tuple[datetime, dict]]) -> None:
        self.rows = rows

    def records(self, cn: str, begin: datetime, end: datetime) -> list[tuple[datetime, dict]]:
        if cn != "2051":
            return []
        return [r for r in self.rows if begin <= r[0] <= end]


def test_forward_data_hands_each_closed_minute_over_once(tmp_path: Path) -> None:
    port = free_port()  # nothing listens: the platform is down, records must wait
    cfg = parse(
        f"""
[daemon]
data_dir = "{tmp_path}"
[mqtt]
enabled = false
[[hj212.platforms]]
name = "city"
host = "127.0.0.1"
port = {port}
mn = "66330300010100001001"
pw = "123456"
""",
        "t.toml",
    )
    gate = Gate(cfg, SimpleNamespace(started_at=time.time(), supervisor=Supervisor()))
    now = datetime(2026, 11, 23, 10, 5)
    minute = {"e12001": {"Avg": 12.5, "Min": 11.0, "Max": 14.0, "Cou": 0.2, "Flag": "N"}}
    source = MinuteSource(
        [(now - timedelta(minutes=2), minute), (now - timedelta(minutes=1), minute)]
    )
    gate.datalogger = source
    gate._start_uplink()
    try:
        before = gate.uplink.outbox.backlog("city")
        assert gate.forward_data(now) == 2
        assert gate.uplink.outbox.backlog("city") == before + 2
        assert gate.forward_data(now) == 0  # nothing new: nothing handed over twice
        source.rows.append((now, minute))
        assert gate.forward_data(now + timedelta(minutes=1)) == 1
        assert gate.uplink.outbox.backlog("city") == before + 3
    finally:
        gate._stop_uplink()


def test_over_limit_goes_to_the_platforms_at_once(tmp_path: Path) -> None:
    port = free_port()
    cfg = parse(
        f"""
[daemon]
data_dir = "{tmp_path}"
[mqtt]
enabled = false
[[hj212.platforms]]
name = "city"
host = "127.0.0.1"
port = {port}
mn = "66330300010100001001"
pw = "123456"
""",
        "t.toml",
    )
    gate = Gate(cfg, SimpleNamespace(started_at=time.time(), supervisor=Supervisor()))
    gate._start_uplink()
    try:
        before = gate.uplink.outbox.backlog("city")
        gate._datalogger_event(
            "over_limit",
            "alarm",
            "fan.current = 52.1A outside [0, 50]",
            device="fan",
            point="current",
            factor="e12001",
            value=52.1,
            low=0,
            high=50,
            ts="2026-11-23T10:05:00",
        )
        assert gate.uplink.outbox.backlog("city") == before + 1
        gate._datalogger_event("recovered", "info", "fan answers again", device="fan")
        assert gate.uplink.outbox.backlog("city") == before + 1
        gate.uplink.clock.set(datetime(2030, 1, 1))  # what a 1012 from the platform does
        assert gate.uplink.clock.now().year == 2030
        assert any(e[0] == "clock_set_by_platform" for e in gate._pending_events)
    finally:
        gate._stop_uplink()
