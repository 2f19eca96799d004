"""The whole daemon as systemd runs it: READY, WATCHDOG, passages on MQTT, a clean stop.

Runs ``edged demo`` (the daemon with simulated devices on real interfaces)
as a subprocess against a real mosquitto and a fake NOTIFY_SOCKET; the
demo's data logger polls its Modbus meter and reports to its HJ 212
platform meanwhile.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edged.app.control import request
from edged.cli.status import format_status
from edged.ledger.store import LedgerStore
from edged.lpr import check_models
from tests.broker import Mosquitto

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models" / "onnx"


def _start(workdir: Path, port: int, notify: str, fresh: bool) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "NOTIFY_SOCKET": notify,
        "WATCHDOG_USEC": "2000000",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("WATCHDOG_PID", None)
    cmd = [
        sys.executable,
        "-m",
        "edged",
        "demo",
        "--passages",
        "0",
        "--dir",
        str(workdir),
        "--mqtt-port",
        str(port),
    ]
    if fresh:
        cmd.append("--fresh")
    return subprocess.Popen(
        cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _collect(sock: socket.socket, seen: list[bytes], stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            seen.append(sock.recv(4096))
        except TimeoutError:
            continue
        except OSError:
            return


def test_daemon_runs_under_systemd_protocol_and_records_clean_stop(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    if check_models(MODELS):
        pytest.skip("models not fetched: run python models/fetch.py")
    notify = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify)
    seen: list[bytes] = []
    stop = threading.Event()
    threading.Thread(target=_collect, args=(sock, seen, stop), daemon=True).start()

    passages: list[dict] = []
    events: list[dict] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        if msg.topic.endswith("/passage"):
            passages.append(body)
        elif msg.topic.endswith("/events"):
            events.append(body)

    sub.on_message = on_message
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe("edged/demo-plant/east/#", qos=1)
    sub.loop_start()

    workdir = tmp_path / "demo"
    proc = _start(workdir, mosquitto.port, notify, fresh=True)
    try:
        deadline = time.monotonic() + 90

        def live() -> list[dict]:
            return [p for p in passages if "offline_read" not in p["payload"]["flags"]]

        while len(live()) < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert len(live()) >= 4, (
            f"passages seen: {len(passages)}; output: {proc.stdout.read() if proc.poll() is not None else ''}"
        )
        # edged status against the running demo names its meter and its platform link
        reply = request(workdir / "data" / "state" / "control.sock", {"cmd": "status"})
        status = format_status(reply)
        meter = reply["meters"]["fan1_meter"]  # polled every 10 s by then, every poll answered
        assert meter["polls"] >= 1 and meter["ok"] == meter["polls"], meter
        assert meter["success_rate"] == 1.0 and meter["last_error"] is None, meter
        line = f"meter fan1_meter: ok, {meter['ok']} of {meter['polls']} polls answered (100.0%"
        assert any(x.startswith(line) for x in status), status
        assert any(line.startswith("hj212 city: real-time on every 30 s") for line in status), (
            status
        )
        assert "component datalogger: running" in status and "component hj212: running" in status
        # the exit's IP camera is asked for snapshots only when a vehicle is there
        exit_camera = reply["lanes"]["exit"]["camera"]
        assert exit_camera["decode"] == "on_request" and exit_camera["state"] == "ok", exit_camera
        # over https, its own certificate pinned: status says when that certificate ends
        assert any(
            "snapshot:https://127.0.0.1:" in x and "on_request" in x and "certificate ends" in x
            for x in status
        ), status
        # the west lane's Zhenshi camera pushed the reads it kept while its link was down
        west = reply["lanes"]["west"]["camera"]
        assert west["pushes"].get("offline_record") == 2, west
        assert any(x.startswith("  camera: ok, zhenshi:127.0.0.1 pushes:") for x in status)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    lines = b"\n".join(seen).decode()
    assert "READY=1" in lines and "WATCHDOG=1" in lines and "STOPPING=1" in lines
    assert "event=passage " in out  # a readable line per passage
    # ... and each is a ledger row at the camera's time, saying what the rules would have said
    late = {p["payload"]["plate"]: p["payload"] for p in passages if p not in live()}
    assert set(late) == {"京AD12345", "冀A8K302"}, late
    assert "would_allow" in late["京AD12345"]["flags"]
    assert {"would_deny", "stage_below_minimum"} <= set(late["冀A8K302"]["flags"])
    assert all(r["decision"] == "hold" and r["lane"] == "west" for r in late.values())
    assert "event=offline_read_recorded lane=west" in out
    decisions = {p["payload"]["plate"]: p["payload"]["decision"] for p in live()}
    assert decisions.get("冀B12345") == "allow"
    assert decisions.get("冀A8K302") == "deny"
    # the loaded truck leaves with a waybill card beside its own tag: the card names the cargo
    leaving = next(p["payload"] for p in passages if p["payload"]["direction"] == "out")
    assert (leaving["plate"], leaving["cargo"]) == ("冀B12345", "螺纹钢"), leaving
    # its plate was read on the exit camera's snapshot and agrees with its tag
    assert leaving["id_source"] == "plate+rfid", leaving
    assert (
        leaving["rfid_tag"] == "E2003412B802011512345678" and "unknown_tag" not in leaving["flags"]
    )
    # The entry's LED board (a simulator decoding the real driver's frames) told the refused
    # driver why, on screen and by voice; the demo prints it.
    assert "event=demo_display" in out and "国五以下车辆禁止入厂" in out, out[-3000:]
    # The data logger polled the demo's meter over Modbus TCP and stored its readings ...
    assert re.search(
        r"event=demo_meter_polled device=fan1_meter .*state=ok .*ua 2\d\d\.\d V", out
    ), out[-3000:]
    # ... and the box reported them in HJ 212-2025: the demo's platform decrypted a real-time
    # packet (CN 2011) carrying the meter's voltage, and acknowledged it
    assert re.search(
        r"event=demo_platform_received platform=city cn=2011 .*encrypted=true .*answered=9014"
        r' factors="i12001 2\d\d\.\d N,',
        out,
    ), out[-3000:]
    assert "demo_platform_refused" not in out and "hj212_no_reply" not in out
    # everything stopped: the daemon first, then the demo's meter and platform
    tail = out[out.index("event=stopped") :]
    assert "event=demo_meter_closed" in tail and "event=demo_platform_closed" in tail, tail

    with LedgerStore(workdir / "data" / "ledger.db") as store:
        rows = list(store.passages())
    assert len(rows) >= len(passages)
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))

    # Second start: the previous (SIGTERM) stop is recorded as clean.
    proc = _start(workdir, mosquitto.port, notify, fresh=False)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            e["payload"].get("kind") == "previous_stop" for e in events
        ):
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    prev = [e["payload"] for e in events if e["payload"].get("kind") == "previous_stop"]
    assert prev and prev[0]["clean"] is True and prev[0]["down_seconds"] is not None
    with LedgerStore(workdir / "data" / "ledger.db") as store:
        kinds = [e.kind for e in store.recent_events(200)]
    assert "previous_stop" in kinds
    stop.set()
    sub.loop_stop()
    sock.close()
