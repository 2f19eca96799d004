"""The data logger's data reaches HJ 212 platforms: real-time on each platform's cadence,
minute data over each platform's minute interval, each record once.

Real parts: meters on pymodbus's own server, the data logger's poller and
store, the uplink service, and platforms on real TCP (``edged/hj212/platform_sim.py``).
The data logger's wall clock is driven by the test, so twelve minutes pass
in a second.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from drivers.simulators import Meter, TcpMeters
from edged.app.events import EventSink
from edged.datalogger.aggregate import Sample
from edged.datalogger.registers import ModbusConfig, ModbusDevice, PollGroup, RegisterPoint
from edged.datalogger.service import DataLogger
from edged.datalogger.store import DataStoreConfig
from edged.hj212.codec import Packet
from edged.hj212.config import Hj212Config, PlatformConfig
from edged.hj212.platform_sim import PlatformSimulator
from edged.hj212.record_feed import RecordFeed
from edged.hj212.service import UplinkService
from tests.broker import free_port

TZ = ZoneInfo("Asia/Shanghai")
MN = "66330300010100001001"


def numbers(fields: dict[str, str]) -> dict[str, float | str]:
    """A factor's fields as numbers (the flag as it is): how a platform reads them."""
    return {k: v if k == "Flag" else float(v) for k, v in fields.items()}


def board(site: datetime) -> datetime:
    """The board's wall time (what the data logger stamps) of a site time."""
    return site.replace(tzinfo=TZ).astimezone().replace(tzinfo=None)


class Events(EventSink):
    """The box's sink with no ledger: events are kept to be looked at."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def event(self, kind: str, severity: str, message: str, **details: Any) -> None:
        self.seen.append(kind)


class PlatformLoop:
    """Test platforms served on their own asyncio loop, as a platform's server runs apart."""

    def __init__(self, platforms: list[PlatformSimulator]) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        for p in platforms:
            self.call(p.start())
        self.platforms = platforms

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 15.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def wait_for(
        self, plat: PlatformSimulator, what: Callable[[], bool], timeout: float = 10
    ) -> None:
        self.call(plat.wait_for(what, timeout), timeout + 5)

    def ask(
        self, plat: PlatformSimulator, cn: str, qn: str, params: dict[str, str]
    ) -> list[Packet]:
        """A command from the platform, and the logger's replies to it."""
        self.call(plat.send(plat.command(cn, qn, params)))
        self.wait_for(plat, lambda: any(p.cn in ("9012", "9013") for p in plat.replies(qn)))
        return plat.replies(qn)

    def close(self) -> None:
        for p in self.platforms:
            self.call(p.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@dataclass
class Rig:
    meters: list[Meter]
    logger: DataLogger
    service: UplinkService
    feed: RecordFeed
    platforms: PlatformLoop
    now: list[datetime] = field(default_factory=list)

    def at(self, site: datetime) -> datetime:
        self.now[:] = [board(site)]
        return self.now[0]

    def poll(self, *devices: str) -> None:
        for d in self.logger.poller.config.devices:
            if not devices or d.name in devices:
                self.logger.poller.poll_device(d)

    def link(self, name: str) -> Any:
        return next(lk for lk in self.service.uplink.links if lk.cfg.name == name)

    def wait_connected(self) -> None:
        deadline = time.monotonic() + 10
        while not all(lk.connected for lk in self.service.uplink.links):
            assert time.monotonic() < deadline, "platforms did not connect"
            time.sleep(0.02)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []
    servers: list[TcpMeters] = []

    def make(n_platforms: int = 1, units: int = 1, **hj212: Any) -> Rig:
        meters = [Meter(unit=u + 1) for u in range(units)]
        server = TcpMeters(meters)
        servers.append(server)
        devices = [
            ModbusDevice(
                name=f"m{u + 1}",
                transport="tcp",
                host="127.0.0.1",
                port=server.port,
                unit=u + 1,
                poll_group="g",
                timeout_s=0.3,
                retries=0,
                points=[RegisterPoint(name="v", address=0, type="uint16", factor=f"i1200{u + 1}")],
            )
            for u in range(units)
        ]
        modbus = ModbusConfig(poll_groups=[PollGroup(name="g", interval_s=60)], devices=devices)
        now = [datetime.now()]
        logger = DataLogger(
            modbus, DataStoreConfig(path="dl.sqlite3"), tmp_path, clock=lambda: now[0], tz=TZ
        )
        plats = [PlatformSimulator(mn=MN) for _ in range(n_platforms)]
        loop = PlatformLoop(plats)
        realtime = hj212.pop("realtime", True)
        cfg = Hj212Config(
            platforms=[
                PlatformConfig(
                    name=f"p{i}",
                    host="127.0.0.1",
                    port=p.port,
                    mn=MN,
                    timeout_s=2.0,
                    backoff_min_s=0.05,
                    backoff_max_s=0.2,
                    realtime=realtime,
                )
                for i, p in enumerate(plats)
            ],
            **hj212,
        )
        service = UplinkService(cfg, tmp_path / "hj212.sqlite", logger, TZ, Events(), {})
        service.start()
        r = Rig(meters, logger, service, RecordFeed(logger, service, TZ), loop, now)
        made.append(r)
        r.wait_connected()
        return r

    yield make
    for r in made:
        r.service.stop()
        r.platforms.close()
        r.logger.poller.stop()
        r.logger.store.close()
    for s in servers:
        s.stop()


def test_minute_data_follows_each_platforms_minute_interval(rig: Callable[..., Rig]) -> None:
    r = rig(n_platforms=2, min_interval_min=5, realtime=False)
    five, every_minute = r.platforms.platforms
    # the second platform asks for minute data every minute (CN 1064): from now on, for it only
    got = r.platforms.ask(every_minute, "1064", "20260301095900001", {"MinInterval": "1"})
    assert [p.cp.params for p in got] == [{"QnRtn": "1"}, {"ExeRtn": "1"}]
    meter = r.meters[0]
    start = datetime(2026, 3, 1, 10, 0)
    for second in range(0, 12 * 60 + 21, 20):  # a poll every 20 s from 10:00 to 10:12:20
        minute = second // 60
        meter.holding[0] = 10 + minute
        meter.exception = 2 if second == 2 * 60 + 20 else None  # one refused read at 10:02:20
        r.at(start + timedelta(seconds=second))
        r.poll()
        r.logger.housekeeping()  # closes the minutes that are over
        r.feed.forward(r.now[0])
    r.platforms.wait_for(five, lambda: len(five.data("2051")) == 2)
    r.platforms.wait_for(every_minute, lambda: len(every_minute.data("2051")) == 12)

    first, second_rec = five.data("2051")
    assert [first.cp.data_time, second_rec.cp.data_time] == [start, start + timedelta(minutes=5)]
    factor = first.cp.factors["i12001"]
    # 10:00-10:05: values 10..14, three reads a minute but one refused at 10:02
    assert float(factor["Avg"]) == pytest.approx((10 * 3 + 11 * 3 + 12 * 2 + 13 * 3 + 14 * 3) / 14)
    assert (float(factor["Min"]), float(factor["Max"]), factor["Flag"]) == (10, 14, "D")
    assert numbers(second_rec.cp.factors["i12001"]) == {
        "Avg": 17,
        "Min": 15,
        "Max": 19,
        "Flag": "N",
    }
    minutes = every_minute.data("2051")
    assert [p.cp.data_time for p in minutes] == [start + timedelta(minutes=i) for i in range(12)]
    assert [p.cp.factors["i12001"]["Flag"] for p in minutes].count("D") == 1
    assert minutes[2].cp.factors["i12001"]["Flag"] == "D"
    assert numbers(minutes[3].cp.factors["i12001"]) == {
        "Avg": 13,
        "Min": 13,
        "Max": 13,
        "Flag": "N",
    }
    # forwarding again hands nothing over twice
    assert r.feed.forward(r.now[0]) == 0
    outbox = r.service.uplink.outbox
    assert [cn for cn, _ in outbox.acked("p0")].count("2051") == 2
    # asked again (history, CN 2051), each platform gets the records it was sent
    window = {"BeginTime": "20260301100000", "EndTime": "20260301101200"}
    for plat, qn in ((five, "20260301101230001"), (every_minute, "20260301101230002")):
        sent = list(plat.data("2051"))
        replies = r.platforms.ask(plat, "2051", qn, window)
        history = [p for p in replies if p.cn == "2051"]
        assert [p.cp.data_time for p in history] == [p.cp.data_time for p in sent]
        assert [p.cp.factors for p in history] == [p.cp.factors for p in sent]


def test_a_changed_minute_interval_starts_at_its_next_boundary(rig: Callable[..., Rig]) -> None:
    r = rig(min_interval_min=1, realtime=False)
    (plat,) = r.platforms.platforms
    start = datetime(2026, 3, 1, 10, 0)

    def run(first: int, last: int) -> None:
        for second in range(first, last + 1, 30):
            r.meters[0].holding[0] = second // 60
            r.at(start + timedelta(seconds=second))
            r.poll()
            r.logger.housekeeping()
            r.feed.forward(r.now[0])

    run(0, 3 * 60 + 30)  # minute data for 10:00, 10:01 and 10:02 sent every minute
    r.platforms.wait_for(plat, lambda: len(plat.data("2051")) == 3)
    r.platforms.ask(plat, "1064", "20260301100330001", {"MinInterval": "5"})
    run(4 * 60, 16 * 60)
    r.platforms.wait_for(plat, lambda: len(plat.data("2051")) == 5)
    times = [p.cp.data_time.strftime("%H:%M") for p in plat.data("2051")]
    assert times == ["10:00", "10:01", "10:02", "10:05", "10:10"]
    assert float(plat.data("2051")[3].cp.factors["i12001"]["Avg"]) == 7  # minutes 5..9


def test_realtime_data_on_each_platforms_cadence(rig: Callable[..., Rig]) -> None:
    r = rig(units=3, rtd_interval_s=30)
    (plat,) = r.platforms.platforms
    good, refusing, _never_polled = r.meters
    good.holding[0] = 21
    refusing.exception = 2
    start = datetime(2026, 3, 1, 10, 0)

    def realtime(n: int) -> dict[str, dict[str, str]]:
        r.platforms.wait_for(plat, lambda: len(plat.data("2011")) == n)
        packet = plat.data("2011")[-1]
        assert packet.cp.data_time == board_to_site(r.now[0])
        return {code: numbers(fields) for code, fields in packet.cp.factors.items()}

    r.at(start)
    r.poll("m1", "m2")
    # an analyser's reading, as its serial input stores it
    r.logger.store.add_samples([Sample(r.now[0], "a34013", 5.5, "N")])
    assert r.feed.forward(r.now[0]) == 1
    assert realtime(1) == {
        "a34013": {"Rtd": 5.5, "Flag": "N"},
        "i12001": {"Rtd": 21, "Flag": "N"},
        "i12002": {"Flag": "D"},  # read, refused: no value
        "i12003": {"Flag": "B"},  # nothing read: no value
    }
    r.at(start + timedelta(seconds=10))
    assert r.feed.forward(r.now[0]) == 0  # within the same 30 s
    r.at(start + timedelta(seconds=30))
    assert r.feed.forward(r.now[0]) == 1
    assert realtime(2)["i12001"] == {"Rtd": 21, "Flag": "N"}  # polled every 60 s: still fresh
    # the platform asks for real-time data every 60 s (CN 1062): in force at once
    r.platforms.ask(plat, "1062", "20260301100031001", {"RtdInterval": "60"})
    r.at(start + timedelta(seconds=45))
    assert r.feed.forward(r.now[0]) == 0
    good.holding[0] = 22
    r.at(start + timedelta(seconds=60))
    r.poll("m1")
    assert r.feed.forward(r.now[0]) == 1
    assert realtime(3)["i12001"] == {"Rtd": 22, "Flag": "N"}
    r.at(start + timedelta(seconds=90))
    assert r.feed.forward(r.now[0]) == 0
    r.at(start + timedelta(seconds=190))  # nothing polled for 130 s, no analyser for 190 s
    assert r.feed.forward(r.now[0]) == 1
    assert realtime(4) == {
        "a34013": {"Flag": "B"},
        "i12001": {"Flag": "B"},
        "i12002": {"Flag": "D"},
        "i12003": {"Flag": "B"},
    }
    status = r.service.status()["p0"]
    assert status["realtime"] is True and status["rtd_interval_s"] == 60
    assert status["min_interval_min"] == 5 and status["last_realtime"] is not None
    # 2012: the platform stops real-time data
    r.platforms.ask(plat, "2012", "20260301100311001", {})
    r.at(start + timedelta(seconds=240))
    assert r.feed.forward(r.now[0]) == 0
    assert r.service.status()["p0"]["realtime"] is False


def board_to_site(board_time: datetime) -> datetime:
    return board_time.astimezone(TZ).replace(tzinfo=None)


@pytest.fixture
def uplink(tmp_path: Path) -> Any:
    cfg = Hj212Config(
        platforms=[PlatformConfig(name="city", host="127.0.0.1", port=free_port(), mn=MN)]
    )  # nothing listens: the platform is down, records must wait
    service = UplinkService(cfg, tmp_path / "hj212.sqlite", None, TZ, Events(), {})
    service.start()
    yield service
    service.stop()


def test_over_limit_goes_to_the_platforms_at_once(uplink: Any, tmp_path: Path) -> None:
    logger = DataLogger(ModbusConfig(), DataStoreConfig(), tmp_path, tz=TZ)
    feed = RecordFeed(logger, uplink, TZ)
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
    logger.store.close()


def test_a_platform_setting_the_time_is_an_event(uplink: Any) -> None:
    uplink.uplink.clock.set(datetime(2030, 1, 1))  # what a 1012 from the platform does
    assert uplink.uplink.clock.now().year == 2030
    assert "clock_set_by_platform" in uplink.sink.seen
    assert uplink.status()["city"]["connected"] is False


def assert_fits_status_schema(hj212: dict[str, Any]) -> None:
    """The links' status as the MQTT contract declares it, no key more (docs/schemas)."""
    from jsonschema import Draft202012Validator

    from tests.app.test_mqtt_contract import SCHEMAS, closed

    status = json.loads((SCHEMAS / "status.json").read_text(encoding="utf-8"))
    schema = closed(status["properties"]["payload"]["properties"]["hj212"])
    Draft202012Validator(schema).validate(hj212)


def test_a_running_box_sends_real_time_data_and_shows_it(tmp_path: Path) -> None:
    """The daemon's tick drives the feed: a platform gets real-time data from the meters."""
    from edged.cli.status import format_status
    from tests.box_rig import running_box

    meter = Meter(unit=1)
    meter.holding[0] = 4200  # 42.00 A
    meters = TcpMeters([meter])
    plat = PlatformSimulator(mn=MN)
    loop = PlatformLoop([plat])
    toml = f"""
[camera]
type = "none"
[mqtt]
enabled = false
[[modbus.poll_groups]]
name = "fast"
interval_s = 1
[[modbus.devices]]
name = "fan"
transport = "tcp"
host = "127.0.0.1"
port = {meters.port}
poll_group = "fast"
timeout_s = 0.3
retries = 0
[[modbus.devices.points]]
name = "current"
address = 0
type = "uint16"
scale = 0.01
unit = "A"
factor = "e12001"
[[hj212.platforms]]
name = "city"
host = "127.0.0.1"
port = {plat.port}
mn = "{MN}"
backoff_min_s = 0.05
backoff_max_s = 0.2
"""
    parts = ["ledger", "registry", "housekeeping", "datalogger", "hj212"]
    try:
        with running_box(tmp_path, toml, parts) as box:
            deadline = time.monotonic() + 15
            while not plat.data("2011") and time.monotonic() < deadline:
                box.tick()
                time.sleep(0.1)
            assert plat.data("2011"), "no real-time data reached the platform"
            first = plat.data("2011")[0]
            assert first.cp.factors["e12001"] == {"Rtd": "42.00", "Flag": "N"}
            deadline = time.monotonic() + 5
            while box.health()["hj212"]["city"]["last_realtime"] is None:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            link = box.health()["hj212"]["city"]
            assert (link["realtime"], link["rtd_interval_s"], link["min_interval_min"]) == (
                True,
                30,
                5,
            )
            sent = datetime.fromisoformat(link["last_realtime"])
            assert sent.utcoffset() == timedelta(hours=8)  # site time, with its offset
            assert_fits_status_schema(box.health()["hj212"])
            lines = format_status({"ok": True, **box.health()})
            assert f"hj212 city: real-time on every 30 s (last sent {sent.isoformat()})," in (
                "\n".join(lines)
            )
    finally:
        loop.close()
        meters.stop()


def test_a_failing_feed_is_logged_once_not_every_second(tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    from tests.box_rig import running_box

    class Failing:
        error: Exception | None = OSError("disk I/O error")

        def forward(self) -> int:
            if self.error is not None:
                raise self.error
            return 0

    toml = '[camera]\ntype = "none"\n[mqtt]\nenabled = false\n'
    with running_box(tmp_path, toml, ["ledger", "registry", "housekeeping"]) as box:
        box.record_feed = feed = Failing()
        with capture_logs() as logs:
            for _ in range(5):
                box.forward_records()
            feed.error = None
            box.forward_records()
            box.forward_records()
    events = [e["event"] for e in logs if e["event"].startswith("hj212_forward")]
    assert events == ["hj212_forward_failed", "hj212_forward_recovered"]
