"""The DataLogger facade (poller + store + housekeeping) and the poll command."""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timedelta

import pytest

from drivers.simulators import Meter, TcpMeters
from edged.datalogger import cli
from edged.datalogger.registers import ModbusConfig, ModbusDevice, PollGroup, RegisterPoint
from edged.datalogger.service import DataLogger
from edged.datalogger.store import DataStoreConfig


@pytest.fixture
def meter():
    m = Meter(unit=1)
    srv = TcpMeters([m])
    yield m, srv.port
    srv.stop()


def test_datalogger_runs_and_catches_up_after_restart(meter, tmp_path):
    m, port = meter
    m.holding[0] = 123
    dev = ModbusDevice(
        name="m",
        transport="tcp",
        host="127.0.0.1",
        port=port,
        poll_group="rt",
        timeout_s=0.3,
        points=[RegisterPoint(name="v", address=0, type="uint16", factor="i12001")],
    )
    cfg = ModbusConfig(poll_groups=[PollGroup(name="rt", interval_s=1)], devices=[dev])
    now = [datetime(2026, 3, 1, 10, 0, 0)]
    events = []
    dl = DataLogger(
        cfg,
        DataStoreConfig(path="dl/data.sqlite3"),
        tmp_path,
        lambda *a, **k: events.append(a),
        clock=lambda: now[0],
        housekeeping_seconds=0.2,
    )
    dl.start()
    time.sleep(1.5)
    dl.stop()
    assert (tmp_path / "dl" / "data.sqlite3").exists()
    assert dl.stats()["m"]["ok"] >= 2
    rt = dl.records("2011", now[0], now[0])
    assert rt == [(now[0], {"i12001": {"Rtd": 123.0, "Flag": "N"}})]
    assert dl.records("2051", now[0], now[0]) == []  # minute not over yet

    start = now[0]
    now[0] += timedelta(hours=1, minutes=1)  # the box was off for an hour
    dl2 = DataLogger(cfg, DataStoreConfig(path="dl/data.sqlite3"), tmp_path, clock=lambda: now[0])
    dl2.start()
    dl2.stop()
    ((_ts, row),) = dl2.records("2051", start, start)
    assert row["i12001"]["Avg"] == 123.0 and row["i12001"]["Flag"] == "N"
    assert len(dl2.records("2061", start, now[0])) == 1


def json_lines(text: str) -> list[str]:
    # log lines may share stdout until edged.logs is configured; the data lines are JSON
    return [ln for ln in text.splitlines() if ln.startswith("{")]


def run_cli(argv):
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers()
    cli.register(sub)
    args = ap.parse_args(argv)
    args.config = None
    return args.func(args)


def test_poll_command_prints_json_lines_and_exit_code(meter, tmp_path, capsys):
    m, port = meter
    m.holding[10] = 2301
    mp = tmp_path / "map.toml"
    mp.write_text(
        f"""
[[modbus.devices]]
name = "meter1"
transport = "tcp"
host = "127.0.0.1"
port = {port}
timeout_s = 0.3
retries = 0
[[modbus.devices.points]]
name = "ua"
address = 10
scale = 0.1
factor = "i12001"
""",
        encoding="utf-8",
    )
    assert run_cli(["datalogger", "poll", "--map", str(mp)]) == 0
    (line,) = json_lines(capsys.readouterr().out)
    assert json.loads(line) == {
        "device": "meter1",
        "key": "i12001",
        "value": pytest.approx(230.1),
        "flag": "N",
    }
    m.exception = 2
    assert run_cli(["datalogger", "poll", "--map", str(mp)]) == 1
    out = capsys.readouterr()
    (line,) = json_lines(out.out)
    assert json.loads(line)["flag"] == "D" and "illegal data address" in out.err
    mp.write_text("[[modbus.devices]]\nname = 'x'\nfoo = 1\n", encoding="utf-8")
    assert run_cli(["datalogger", "poll", "--map", str(mp)]) == 2
    assert "foo" in capsys.readouterr().err
