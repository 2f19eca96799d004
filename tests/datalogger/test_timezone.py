"""Minutes, hours and days close in the site's zone, even on a board whose system zone is UTC.

HJ 212 day data (CN 2031) is the site's day: on a UTC board at a Beijing
site, the day must run from 16:00 UTC, not from midnight UTC.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.box_rig import running_box
from tests.broker import free_port

CHILD = r"""
import json, sys, time
from datetime import datetime
from zoneinfo import ZoneInfo
from edged.datalogger.aggregate import Sample
from edged.datalogger.registers import ModbusConfig
from edged.datalogger.service import DataLogger
from edged.datalogger.store import DataStoreConfig
from edged.hj212.codec import Cp

site = ZoneInfo(sys.argv[2])
now = [datetime(2024, 5, 1, 15, 0)]  # the board's clock: UTC, naive
dl = DataLogger(ModbusConfig(), DataStoreConfig(), sys.argv[1], clock=lambda: now[0], tz=site)
dl.store.add_samples([  # stamped by the board, as the poller stamps them
    Sample(datetime(2024, 5, 1, 15, 40), "a34013", 1.0, "N"),
    Sample(datetime(2024, 5, 1, 16, 40), "a34013", 3.0, "N"),
])
now[0] = datetime(2024, 5, 3, 12, 0)
dl.housekeeping()


def sent(cn):  # DataTime as the uplink writes it for the platform, with the average
    rows = dl.records(cn, datetime(2024, 4, 28), datetime(2024, 5, 4))
    return [
        [Cp.build({"DataTime": t}, tz=site).params["DataTime"], f["a34013"]["Avg"]]
        for t, f in rows
    ]


print(json.dumps({"tzname": list(time.tzname), "days": sent("2031"), "hours": sent("2061")}))
dl.stop()
"""


@pytest.mark.parametrize(
    ("zone", "days", "hours"),
    [
        (  # 15:40 and 16:40 UTC are 23:40 on 1 May and 00:40 on 2 May in Beijing
            "Asia/Shanghai",
            [["20240501000000", 1.0], ["20240502000000", 3.0]],
            [["20240501230000", 1.0], ["20240502000000", 3.0]],
        ),
        (  # 21:10 and 22:10 in India: one day, and hours from the site's full hour
            "Asia/Kolkata",
            [["20240501000000", 2.0]],
            [["20240501210000", 1.0], ["20240501220000", 3.0]],
        ),
    ],
)
def test_day_and_hour_records_follow_the_site_zone_on_a_utc_board(
    tmp_path: Path, zone: str, days: list, hours: list
) -> None:
    env = {**os.environ, "TZ": "UTC", "PYTHONPATH": str(Path.cwd())}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), zone],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["tzname"][0] == "UTC"
    assert result["days"] == days
    assert result["hours"] == hours


def test_the_box_gives_its_data_logger_the_site_zone(tmp_path: Path) -> None:
    toml = f"""
[camera]
type = "none"
[mqtt]
enabled = false
[[modbus.devices]]
name = "m1"
transport = "tcp"
host = "127.0.0.1"
port = {free_port()}
timeout_s = 0.1
retries = 0
[[modbus.devices.points]]
name = "v"
factor = "i12001"
"""
    with running_box(tmp_path, toml, parts=["datalogger"]) as box:
        assert box.datalogger.logger.store.tz == ZoneInfo("Asia/Shanghai")


ANALYSER_CHILD = r"""
import json, os, sys, time
from datetime import datetime
from zoneinfo import ZoneInfo
from edged.datalogger.instruments import InstrumentConfig
from edged.datalogger.registers import ModbusConfig
from edged.datalogger.service import DataLoggerService
from edged.datalogger.store import DataStoreConfig
from edged.hj212.codec import Cp, Packet, encode

site = ZoneInfo("Asia/Shanghai")
master, slave = os.openpty()
service = DataLoggerService(
    ModbusConfig(), DataStoreConfig(), [InstrumentConfig("cems", os.ttyname(slave))],
    sys.argv[1], lambda *a, **k: None, tz=site,
)
service.start()
inst = service.instruments[0]
deadline = time.monotonic() + 10
while (inst._reader is None or not inst._reader._running.is_set()) and time.monotonic() < deadline:
    time.sleep(0.02)
packet = Packet(  # the analyser's clock is the site's: 23:30 in Beijing, 15:30 UTC
    cn="2011", mn="66330300010100001001", st="31",
    cp=Cp.build({"DataTime": "20240501233000"}, {"a34013": {"Rtd": "7.5", "Flag": "N"}}),
)
os.write(master, encode(packet))
while inst.samples == 0 and time.monotonic() < deadline:
    time.sleep(0.05)
store = service.logger.store
store.close_periods()
rtd = service.records("2011", datetime(2024, 4, 30), datetime(2024, 5, 3))
hours = service.records("2061", datetime(2024, 4, 30), datetime(2024, 5, 3))
print(json.dumps({
    "tzname": list(time.tzname),
    "stored": [t.isoformat() for t, _ in rtd],
    "hours": [[Cp.build({"DataTime": t}, tz=site).params["DataTime"], f["a34013"]["Avg"]]
              for t, f in hours],
}))
service.stop()
os.close(master)
os.close(slave)
"""


def test_analyser_datatime_is_site_time_on_a_utc_board(tmp_path: Path) -> None:
    """An analyser stamps DataTime in site time; the store keeps the board's time: the
    reading must join the hour it was taken in, not one eight hours away."""
    env = {**os.environ, "TZ": "UTC", "PYTHONPATH": str(Path.cwd())}
    out = subprocess.run(
        [sys.executable, "-c", ANALYSER_CHILD, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["tzname"][0] == "UTC"
    assert result["stored"] == ["2024-05-01T15:30:00"]  # the board's wall time
    assert result["hours"] == [["20240501230000", 7.5]]  # the site's 23:00 hour
