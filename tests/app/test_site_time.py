"""Every time the box writes carries the site's offset, whatever zone the board is set to.

Pi images often ship set to UTC. An inspector lining the ledger up against
video, and a backend lining MQTT up against the ledger, need one clock: the
daemon runs here under a board zone of America/New_York (-05:00 in winter)
for a site in Asia/Shanghai (+08:00).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edged import sitetime
from tests.broker import Mosquitto
from tests.reliability.daemon import Instance

SITE_OFFSET = "+08:00"


def test_the_site_zone_rules_and_the_board_zone_stands_in_until_a_config_is_read() -> None:
    old = sitetime.zone()
    try:
        sitetime.set_zone(None)
        assert sitetime.now().utcoffset() == datetime.now().astimezone().utcoffset()
        sitetime.set_zone("Asia/Shanghai")
        assert sitetime.now_iso().endswith(SITE_OFFSET)
        noon_utc = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        assert sitetime.local(noon_utc).isoformat() == "2026-12-01T20:00:00+08:00"
    finally:
        sitetime.set_zone(old)


def test_logs_ledger_and_mqtt_agree_on_the_site_offset(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")  # the daemon's board zone
    envelopes: list[dict[str, Any]] = []
    subscribed = threading.Event()
    backend = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    backend.on_message = lambda _c, _u, m: envelopes.append(json.loads(m.payload))
    backend.on_subscribe = lambda *_a: subscribed.set()
    backend.connect("127.0.0.1", mosquitto.port)
    backend.subscribe("edged/rel/g1/passage", qos=1)
    backend.loop_start()
    gate = Instance(tmp_path / "gate", mosquitto.port)
    try:
        assert subscribed.wait(10)
        gate.start()
        assert gate.passage("冀B12345")["ok"]
        gate.wait_outbox_empty()
        assert gate.stop() == 0, gate.log_tail()
    finally:
        if gate.running:
            gate.kill()
        backend.loop_stop()
        backend.disconnect()

    stamps = re.findall(r"timestamp=(\S+)", gate.log_text())
    assert stamps and all(s.endswith(SITE_OFFSET) for s in stamps), stamps[:5]
    ((_seq, row),) = gate.ledger_rows()
    assert row["time"].endswith(SITE_OFFSET), row["time"]
    conn = sqlite3.connect(gate.ledger_path)
    try:
        times = [t for (t,) in conn.execute("SELECT time FROM events")]
        times += [t for (t,) in conn.execute("SELECT json_extract(fields, '$.time') FROM audit")]
    finally:
        conn.close()
    assert times and all(t.endswith(SITE_OFFSET) for t in times), times
    assert envelopes and all(e["ts"].endswith(SITE_OFFSET) for e in envelopes), envelopes
    assert envelopes[0]["payload"]["time"] == row["time"]


def test_a_command_logs_in_the_site_zone_once_it_has_read_its_config(tmp_path: Path) -> None:
    """The CLI sets up logging before it reads the config; its lines must still carry the
    site's offset, not the board's (the logs an integrator lines up with the ledger)."""
    import os
    import subprocess
    import sys

    cfg = tmp_path / "edged.toml"
    (tmp_path / "data").mkdir()
    cfg.write_text(
        f'[site]\nid = "p1"\ngate_id = "g1"\n[daemon]\ndata_dir = "{tmp_path / "data"}"\n',
        encoding="utf-8",
    )
    argv = ["cargo", "declare", "冀A12345", "--cargo", "焦煤", "--until", "2099-01-01T00:00"]
    done = subprocess.run(
        [sys.executable, "-m", "edged", "--config", str(cfg), *argv, "--operator", "张工"],
        capture_output=True,
        text=True,
        env={**os.environ, "TZ": "America/New_York"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    stamps = re.findall(r"timestamp=(\S+)", done.stderr)
    assert stamps and all(s.endswith(SITE_OFFSET) for s in stamps), done.stderr
