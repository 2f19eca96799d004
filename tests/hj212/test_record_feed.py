"""Closed data-logger periods reach the HJ 212 uplink's resend outbox exactly once."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edged.app.events import EventSink
from edged.config.load import parse
from edged.hj212.record_feed import RecordFeed
from edged.hj212.service import UplinkService
from tests.broker import free_port

TZ = ZoneInfo("Asia/Shanghai")


class MinuteSource:
    """The data logger's ``records()`` interface over fixed minute rows."""

    def __init__(self, rows: list[tuple[datetime, dict]]) -> None:
        self.rows = rows

    def records(self, cn: str, begin: datetime, end: datetime) -> list[tuple[datetime, dict]]:
        if cn != "2051":
            return []
        return [r for r in self.rows if begin <= r[0] <= end]


class Events(EventSink):
    """The box's sink with no ledger: events are kept to be looked at."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def event(self, kind: str, severity: str, message: str, **details: Any) -> None:
        self.seen.append(kind)


@pytest.fixture
def uplink(tmp_path: Path) -> Any:
    port = free_port()  # nothing listens: the platform is down, records must wait
    cfg = parse(
        f"""
[daemon]
data_dir = "{tmp_path}"
[camera]
type = "none"
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
    service = UplinkService(cfg.hj212, tmp_path / "hj212.sqlite", None, TZ, Events(), {})
    service.start()
    yield service
    service.stop()


def test_forward_hands_each_closed_minute_over_once(uplink: Any) -> None:
    now = datetime(2026, 11, 23, 10, 5)
    minute = {"e12001": {"Avg": 12.5, "Min": 11.0, "Max": 14.0, "Cou": 0.2, "Flag": "N"}}
    source = MinuteSource(
        [(now - timedelta(minutes=2), minute), (now - timedelta(minutes=1), minute)]
    )
    feed = RecordFeed(source, uplink, TZ)
    outbox = uplink.uplink.outbox
    before = outbox.backlog("city")
    assert feed.forward(now) == 2
    assert outbox.backlog("city") == before + 2
    assert feed.forward(now) == 0  # nothing new: nothing handed over twice
    source.rows.append((now, minute))
    assert feed.forward(now + timedelta(minutes=1)) == 1
    assert outbox.backlog("city") == before + 3


def test_over_limit_goes_to_the_platforms_at_once(uplink: Any) -> None:
    feed = RecordFeed(MinuteSource([]), uplink, TZ)
    outbox = uplink.uplink.outbox
    before = outbox.backlog("city")
    feed.alarm(
        "over_limit",
        {
            "device": "fan",
            "point": "current",
            "factor": "e12001",
            "value": 52.1,
            "low": 0,
            "high": 50,
            "ts": "2026-11-23T10:05:00+08:00",
        },
    )
    assert outbox.backlog("city") == before + 1
    feed.alarm("recovered", {"device": "fan"})
    assert outbox.backlog("city") == before + 1


def test_a_platform_setting_the_time_is_an_event(uplink: Any) -> None:
    uplink.uplink.clock.set(datetime(2030, 1, 1))  # what a 1012 from the platform does
    assert uplink.uplink.clock.now().year == 2030
    assert "clock_set_by_platform" in uplink.sink.seen
    assert uplink.status()["city"]["connected"] is False
