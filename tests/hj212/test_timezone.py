"""HJ 212 times are the site's wall time even on a board whose system zone is UTC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from edged.hj212.codec import parse_qn, parse_time

CHILD = r"""
import json, sys, time
from datetime import datetime
from zoneinfo import ZoneInfo
from edged.hj212.codec import decode, encode
from edged.hj212.config import Hj212Config, PlatformConfig
from edged.hj212.hardware import HardwareIdentity
from edged.hj212.uplink import Uplink

cfg = Hj212Config(platforms=[PlatformConfig(name="p", host="127.0.0.1", port=1, mn="MN1")])
up = Uplink(cfg, sys.argv[1], tz=ZoneInfo("Asia/Shanghai"), identity=HardwareIdentity("L", "C", ()))
board_now = datetime.now()  # naive: the board's local time, here UTC
up.publish("2051", board_now, {"a34013": {"Avg": 1.5, "Flag": "N"}})
row = up.outbox.next_pending("p")
packet = up.links[0].out.packet(row.cn, row.cp)
wire = encode(packet).decode()
print(json.dumps({"tzname": list(time.tzname), "board": board_now.isoformat(), "wire": wire}))
"""


def test_datatime_and_qn_are_in_site_zone_when_the_system_zone_is_utc(tmp_path: Path) -> None:
    env = {**os.environ, "TZ": "UTC", "PYTHONPATH": str(Path.cwd())}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "o.sqlite")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["tzname"][0] == "UTC"
    board = datetime.fromisoformat(result["board"])
    fields = dict(f.split("=", 1) for f in result["wire"][6:].split(";") if "=" in f)
    data_time = parse_time(fields["CP"].removeprefix("&&DataTime="))
    assert data_time - board.replace(microsecond=0) == timedelta(hours=8)
    shanghai_now = datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
    assert abs(parse_qn(fields["QN"]) - shanghai_now) < timedelta(minutes=2)
