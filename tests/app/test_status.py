"""The gate's health status: retained on MQTT with every figure, and readable in ``edged status``."""

from __future__ import annotations

import json
import queue
import socket
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest

from tests.box_rig import passage, running_box
from tests.broker import Mosquitto

PARTS = [
    "ledger",
    "registry",
    "mqtt",
    "passage_feed",
    "main.gpio",
    "main.camera",
    "hj212",
    "main.worker",
    "control",
    "housekeeping",
]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def gate(tmp_path: Path, mosquitto: Mosquitto) -> Any:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i}.jpg"), np.full((120, 160, 3), 40 * i, np.uint8))
    extra = f"""
[camera]
type = "folder"
folder = "{frames}"
fps = 20
[mqtt]
host = "127.0.0.1"
port = {mosquitto.port}
[[hj212.platforms]]
name = "city"
host = "127.0.0.1"
port = {_closed_port()}
mn = "66330300010100001001"
backoff_min_s = 5
"""
    with running_box(tmp_path, extra, PARTS) as box:
        yield box


def _retained_status(port: int, timeout: float = 10.0) -> dict[str, Any]:
    """What a backend that connects now sees on the status topic."""
    got: queue.Queue[dict[str, Any]] = queue.Queue()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_message = lambda _c, _u, m: got.put({"retain": m.retain, **json.loads(m.payload)})
    c.connect("127.0.0.1", port)
    c.subscribe("edged/p1/g1/status", qos=1)
    c.loop_start()
    try:
        return got.get(timeout=timeout)
    finally:
        c.loop_stop()
        c.disconnect()


def test_status_carries_every_figure_of_the_issue(gate: Any, mosquitto: Mosquitto) -> None:
    lane = gate.lane("main")
    deadline = time.monotonic() + 10
    while lane.camera.rate.rate() == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    passage(gate, "冀B12345")
    gate.uplink.uplink.clock.set(datetime.now() + timedelta(seconds=120))  # a platform's 1012
    deadline = time.monotonic() + 10  # let the MQTT link connect and drain the passage
    while (
        not gate.mqtt.connected or gate.mqtt.status()["backlog"]
    ) and time.monotonic() < deadline:
        time.sleep(0.05)
    gate.publish_health()

    msg = _retained_status(mosquitto.port)
    if not msg["retain"]:  # it was still on its way: a backend connecting now gets it retained
        msg = _retained_status(mosquitto.port)
    assert msg["retain"] is True
    st = msg["payload"]
    assert st["uptime_s"] >= 0
    assert st["site"] == {"id": "p1", "name": "", "gate": "g1", "gate_name": ""}
    assert st["components"]["main.camera"]["state"] == "running"
    assert st["components"]["ledger"]["state"] == "running"
    ln = st["lanes"]["main"]
    assert ln["direction"] == "in"
    assert ln["camera"]["state"] == "ok" and 0 < ln["camera"]["fps"] <= 25  # paced at 20 fps
    assert ln["last_read"]["plate"] == "冀B12345" and ln["last_read"]["confidence"] == 1.0
    assert ln["last_read"]["time"]
    assert ln["last_passage"]["plate"] == "冀B12345" and ln["last_passage"]["seq"] == 1
    assert ln["last_passage"]["direction"] == "in" and ln["last_passage"]["time"]
    queues = st["queues"]
    assert queues["lanes"] == {"main": 0}
    assert isinstance(queues["mqtt_outbox"], int)
    assert queues["hj212_outbox"]["city"] >= 1  # the start-up packet; the platform is down
    assert st["outbox"]["backlog"] == queues["mqtt_outbox"]
    assert st["hj212"]["city"]["connected"] is False
    assert st["disk"]["total_mb"] > 0 and 0 <= st["disk"]["used_pct"] <= 100
    assert "cpu_temp_c" in st  # None in a container, a number on a board
    assert 119 < st["clock"]["platform_offset_s"] < 121
    assert st["clock"]["platform_set_at"]
    assert "ntp_synchronized" in st["clock"]
    assert st["ledger_head"]["passages"]["seq"] == 1


def test_edged_status_prints_key_value_lines(gate: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from edged.cli.main import main

    assert (
        main(["simulate", "passage", "--plate", "豫D99881", "--socket", str(gate.control.path)])
        == 0
    )
    assert main(["status", "--socket", str(gate.control.path)]) == 0
    out = capsys.readouterr().out
    for start in (
        "site: p1, gate g1",
        "uptime: ",
        "alert level: none",
        "component main.camera: running",
        "lane main: in, 1 passages, queue 0",
        "  camera: ok, ",
        "  last read: 豫D99881 conf 1.0 (simulate)",
        "  last passage: seq 1 豫D99881 in hold",
        "queue mqtt outbox: ",
        "queue hj212 city: ",
        "hj212 city: real-time on every 30 s (last sent never), minute data every 5 min",
        "disk ",
        "cpu temperature: ",
        "clock ntp: ",
        "ledger passages: seq 1",
        f"device key: {gate.ctx.ledger_service.device_key.public_hex} (edged export verify --key)",
    ):
        assert any(line.startswith(start) for line in out.splitlines()), (start, out)


def _retained(port: int, topic: str, timeout: float = 10.0) -> dict[str, Any]:
    got: queue.Queue[dict[str, Any]] = queue.Queue()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_message = lambda _c, _u, m: got.put({"retain": m.retain, **json.loads(m.payload)})
    c.connect("127.0.0.1", port)
    c.subscribe(topic, qos=1)
    c.loop_start()
    try:
        return got.get(timeout=timeout)
    finally:
        c.loop_stop()
        c.disconnect()


def test_the_device_key_is_published_retained_at_start(gate: Any, mosquitto: Mosquitto) -> None:
    from types import SimpleNamespace

    deadline = time.monotonic() + 10
    while not gate.mqtt.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    gate.started(SimpleNamespace(as_dict=dict, first_start=True, clean=True))
    deadline = time.monotonic() + 10
    while gate.mqtt.status()["backlog"] and time.monotonic() < deadline:
        time.sleep(0.05)
    msg = _retained(mosquitto.port, "edged/p1/g1/device_key")
    assert msg["retain"] is True
    key = gate.ctx.ledger_service.device_key
    assert msg["payload"] == {
        "public_key": key.public_hex,
        "fingerprint": key.fingerprint,
        "alg": "ed25519",
    }
