"""What the HJ 212 feed costs the box's main loop, next to a bare query on the same store.

The box calls ``RecordFeed.forward()`` every second from its main loop, the
loop that also watches the lanes, so a round must stay short. Measured on a
data store holding one-minute samples of 28 factors (quick: 1 day; full: 7
days, the samples' retention), with one platform:

* an idle round (nothing due: one look at how far minutes are closed), per
  call, next to one bare ``SELECT 1`` on the same database (the floor);
* a real-time round (newest sample of each factor, freshness, the CN 2011
  CP built and queued for the platform);
* a minute-data round (one 5-minute record from the 1-minute records).

    python bench/hj212_feed_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit
from edged.datalogger.aggregate import Sample
from edged.datalogger.registers import ModbusConfig, ModbusDevice, PollGroup, RegisterPoint
from edged.datalogger.service import DataLogger
from edged.datalogger.store import DataStoreConfig
from edged.hj212.config import Hj212Config, PlatformConfig
from edged.hj212.hardware import HardwareIdentity
from edged.hj212.minute_data import interval_records
from edged.hj212.record_feed import RecordFeed
from edged.hj212.uplink import Uplink

TZ = ZoneInfo("Asia/Shanghai")
FACTORS = 28


def per_call_us(fn: Callable[[], object], seconds: float) -> float:
    """Mean microseconds per call over about ``seconds``."""
    n = 0
    start = time.perf_counter()
    while True:
        for _ in range(10):
            fn()
        n += 10
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / n * 1e6


def build(folder: Path, days: int, now: datetime) -> tuple[DataLogger, Uplink, RecordFeed]:
    points = [
        RegisterPoint(name=f"p{i}", address=i, type="uint16", factor=f"e{12001 + i}")
        for i in range(FACTORS)
    ]
    device = ModbusDevice(
        name="meter", transport="tcp", host="127.0.0.1", port=1, poll_group="g", points=points
    )
    modbus = ModbusConfig(poll_groups=[PollGroup(name="g", interval_s=60)], devices=[device])
    logger = DataLogger(
        modbus, DataStoreConfig(path="feed.sqlite3"), folder, clock=lambda: now, tz=TZ
    )
    rng = random.Random(1)
    first = now - timedelta(days=days)
    for day in range(days):
        batch = [
            Sample(first + timedelta(days=day, minutes=m), p.factor, rng.uniform(0, 100), "N")
            for m in range(1440)
            for p in points
        ]
        logger.store.add_samples(batch)
    started = time.perf_counter()
    logger.store.close_periods(now)
    print(
        f"store: {days} d x 1440 min x {FACTORS} factors; periods closed in"
        f" {time.perf_counter() - started:.1f} s"
    )
    cfg = Hj212Config(
        platforms=[PlatformConfig(name="city", host="127.0.0.1", port=1, mn="66330300010100001001")]
    )
    uplink = Uplink(cfg, folder / "outbox.sqlite", tz=TZ, identity=HardwareIdentity("L", "C", ()))
    feed = RecordFeed(logger, SimpleNamespace(uplink=uplink), TZ)
    return logger, uplink, feed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 day of samples (<30 s)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per measurement")
    args = parser.parse_args(argv)
    seconds = args.seconds or (1.0 if args.quick else 3.0)
    days = 1 if args.quick else 7
    now = datetime(2026, 3, 8, 10, 0, 30)
    with tempfile.TemporaryDirectory() as tmp:
        logger, uplink, feed = build(Path(tmp), days, now)
        feed.forward(now)  # the first round after a start: the look-back
        link = uplink.links[0]
        bare = per_call_us(lambda: logger.store.db.execute_sql("SELECT 1").fetchone(), seconds)
        idle = per_call_us(lambda: feed.forward(now), seconds)
        link.connected = True  # as if the platform were up: real-time data is queued for it

        def realtime_round() -> None:
            feed.realtime._slot.clear()  # due every time
            assert feed.realtime.send_due(uplink, now) == 1

        rtd = per_call_us(realtime_round, seconds)
        closed = logger.store.closed_until("minute")
        assert closed is not None
        begin = closed - timedelta(minutes=5)
        minute = per_call_us(lambda: interval_records(logger, begin, closed, 5, TZ), seconds)
        logger.store.close()
        uplink.outbox.close()
    print(f"bare query        {bare:10.1f} us")
    print(f"idle round        {idle:10.1f} us   ({idle / bare:.1f}x a bare query)")
    print(f"real-time round   {rtd / 1000:10.2f} ms   ({FACTORS} factors, {rtd / bare:.0f}x)")
    print(f"minute-data round {minute / 1000:10.2f} ms   (5 x 1 min x {FACTORS} factors)")
    print("main loop: tick every 0.5 s; one feed round per second")
    emit("feed idle round", idle, "us", target="<= 1000")
    emit("feed idle / bare query", idle / bare, "x")
    emit(f"feed real-time round ({FACTORS} factors)", rtd / 1000, "ms", target="<= 50")
    emit("feed 5-minute record", minute / 1000, "ms", target="<= 50")
    return 0


if __name__ == "__main__":
    sys.exit(main())
