"""Signed MQTT commands reach the registry, the ledger and the barrier through the box."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edged.mqtt.commands import make_command
from tests.box_rig import passage, running_box
from tests.broker import Mosquitto
from tests.mqtt.helpers import wait_until

KEY = "s3cret-site-key-0123456789"


@pytest.fixture
def gate(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Any]:
    extra = (
        '[camera]\ntype = "none"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto.port}\nhmac_key = "{KEY}"\n'
    )
    with running_box(tmp_path, extra) as g:
        # a command published before the gate's subscription is acknowledged is lost
        assert wait_until(lambda: g.mqtt.listening, 10), "the gate never subscribed to commands"
        yield g


def _send(port: int, name: str, params: dict[str, Any], key: str = KEY) -> dict[str, Any]:
    replies: queue.Queue[dict[str, Any]] = queue.Queue()
    subscribed = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_message = lambda _c, _u, m: replies.put(json.loads(m.payload))
    c.on_subscribe = lambda *_a: subscribed.set()
    c.connect("127.0.0.1", port)
    c.subscribe(f"edged/p1/g1/cmd/{name}/reply", qos=1)
    c.loop_start()
    assert subscribed.wait(10), "the broker never acknowledged the reply subscription"
    cmd = make_command(key, "p1", "g1", name, params, actor="backend-op")
    c.publish(f"edged/p1/g1/cmd/{name}", json.dumps(cmd, ensure_ascii=False), qos=1)
    try:
        reply = replies.get(timeout=10)
    finally:
        c.loop_stop()
        c.disconnect()
    return reply


def _body(reply: dict[str, Any]) -> dict[str, Any]:
    return reply.get("payload", reply)


def test_registry_commands_change_the_decision(gate: Any, mosquitto: Mosquitto) -> None:
    reply = _body(
        _send(
            mosquitto.port,
            "registry_upsert",
            {
                "vehicles": [
                    {
                        "plate": "冀B12345",
                        "fuel": "diesel",
                        "emission_stage": "6",
                        "plate_color": "yellow",
                    }
                ]
            },
        )
    )
    assert reply.get("ok") is True, reply
    out = passage(gate, "冀B12345")
    assert out.decision == "allow"
    reply = _body(
        _send(
            mosquitto.port,
            "blacklist_upsert",
            {
                "entries": [
                    {"plate": "冀B12345", "reason": "遥感监测超标排放", "source": "生态环境局"}
                ]
            },
        )
    )
    assert reply.get("ok") is True, reply
    out = passage(gate, "冀B12345")
    assert out.decision == "deny" and out.reason_code == "blacklisted"
    actions = [a for a in _audit_actions(gate)]
    assert any("blacklist" in a for a in actions)


def test_badly_signed_open_is_refused_and_barrier_stays_shut(
    gate: Any, mosquitto: Mosquitto
) -> None:
    reply = _body(
        _send(
            mosquitto.port,
            "open",
            {"reason": "司机卡顿，人工放行"},
            key="wrong-key-0123456789abcdef",
        )
    )
    assert reply.get("ok") is False
    assert gate.ledger.heads()["passages"][0] == 0
    reply = _body(_send(mosquitto.port, "open", {"reason": "司机卡顿，人工放行"}))
    assert reply.get("ok") is True, reply
    assert gate.ledger.heads()["passages"][0] == 1


def test_bad_registry_item_is_refused_with_row_and_field(gate: Any, mosquitto: Mosquitto) -> None:
    reply = _body(
        _send(
            mosquitto.port,
            "registry_upsert",
            {
                "vehicles": [
                    {"plate": "冀B12345", "fuel": "diesel"},
                    {"plate": "冀B1234", "fuel": "coal"},
                ]
            },
        )
    )
    assert reply.get("ok") is False
    text = json.dumps(reply, ensure_ascii=False)
    assert "row 2" in text or "vehicles[1]" in text
    assert gate.registry.get_vehicle("冀B12345") is None  # all or nothing


def _audit_actions(gate: Any) -> list[str]:
    import sqlite3

    db = sqlite3.connect(gate.ctx.ledger_service.path)
    rows = [r[0] for r in db.execute("SELECT action FROM audit")]
    db.close()
    return rows


def test_status_and_simulated_passage_over_the_control_socket(
    gate: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from edged.cli.main import main

    try:
        sock = str(gate.control.path)
        assert main(["simulate", "passage", "--plate", "豫D99881", "--socket", sock]) == 0
        out = capsys.readouterr().out
        assert "豫D99881" in out and "unknown_vehicle" in out
        assert main(["status", "--json", "--socket", sock]) == 0
        status = json.loads(capsys.readouterr().out)
        last = status["lanes"]["main"]["last_passage"]
        assert status["passages"] == 1 and last["plate"] == "豫D99881"
        assert status["ledger_head"]["passages"]["seq"] == 1
        assert main(["simulate", "passage", "--plate", "12", "--socket", sock]) == 0
    finally:
        gate.control.stop()
    assert main(["status", "--socket", sock]) == 1  # no daemon: clear failure, no traceback
