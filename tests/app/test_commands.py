"""Signed MQTT commands reach the registry, the ledger and the barrier through the box."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
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
                        "plate_colour": "yellow",
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


def _send_raw(port: int, name: str, payload: bytes, wait: float = 10) -> dict[str, Any] | None:
    """Publish raw bytes on a command topic; the reply, or None when none came."""
    replies: queue.Queue[dict[str, Any]] = queue.Queue()
    subscribed = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_message = lambda _c, _u, m: replies.put(json.loads(m.payload))
    c.on_subscribe = lambda *_a: subscribed.set()
    c.connect("127.0.0.1", port)
    c.subscribe(f"edged/p1/g1/cmd/{name}/reply", qos=1)
    c.loop_start()
    assert subscribed.wait(10)
    c.publish(f"edged/p1/g1/cmd/{name}", payload, qos=1).wait_for_publish(10)
    try:
        return replies.get(timeout=wait)
    except queue.Empty:
        return None
    finally:
        c.loop_stop()
        c.disconnect()


def _audit_rows(gate: Any) -> list[tuple[str, int]]:
    import sqlite3

    db = sqlite3.connect(gate.ledger.path)
    rows = [(a, n) for a, n in db.execute("SELECT action, length(fields) FROM audit")]
    db.close()
    return rows


def test_refused_giant_command_leaves_no_trace_but_a_bounded_summary(
    gate: Any, mosquitto: Mosquitto
) -> None:
    """The finding: an unsigned command with a 5 MB id and 2 MB actor and nonce became a
    9 MB audit row and a 7 MB reply. Now: a counted refusal, a small reply, no audit row."""
    body = {
        "id": "i" * 5_000_000,
        "ts": int(time.time()),
        "nonce": "n" * 2_000_000,
        "actor": "a" * 2_000_000,
        "params": {"version": "1", "vehicles": []},
    }
    before = _audit_rows(gate)
    reply = _send_raw(mosquitto.port, "registry_replace", json.dumps(body).encode())
    assert reply is not None
    reply = _body(reply)
    assert reply["error"] == "unsigned" and reply["cmd_id"] is None and reply["nonce"] is None
    assert len(json.dumps(reply)) < 1000
    # over its name's cap, an open is not even parsed
    reply = _body(_send_raw(mosquitto.port, "open", json.dumps(body).encode()[:100_000]) or {})
    assert reply["error"] == "too_large"
    assert _audit_rows(gate) == before, "refusals of unverified commands are not audited"
    assert wait_until(lambda: any(e.kind == "mqtt_commands_refused" for e in _events(gate)), 5)
    summary = next(e for e in _events(gate) if e.kind == "mqtt_commands_refused")
    assert len(json.dumps(summary.details)) < 4000
    outbox = gate.mqtt.link.outbox.path
    on_disk = sum(p.stat().st_size for p in outbox.parent.glob(outbox.name + "*"))
    assert on_disk < 2_000_000, f"outbox files {on_disk} bytes: a giant reply was stored"


def _events(gate: Any) -> list[Any]:
    return gate.ledger.recent_events(200)


def test_parameters_the_gate_would_ignore_are_refused_and_approvals_honoured(
    gate: Any, mosquitto: Mosquitto
) -> None:
    reply = _body(_send(mosquitto.port, "alert_level", {"level": "red", "region": "唐山市"}))
    assert reply["error"] == "invalid_params" and "region" in reply["detail"]
    assert gate.registry.alert_state().level == "none"
    approval = {
        "approval_id": "BK-2024-0042",
        "plate": "冀B12345",
        "applicant": "李四",
        "approver": "李四",
        "reason": "抢修设备出厂",
        "valid_from": "2024-06-01T08:00:00+08:00",
        "valid_until": "2034-06-01T18:00:00+08:00",
        "direction": "out",
        "uses": 3,
        "approved_at": "2024-06-01T07:30:00+08:00",
    }
    reply = _body(_send(mosquitto.port, "approval", approval))
    assert reply["ok"] is False and "another person must approve it" in reply["detail"]
    reply = _body(_send(mosquitto.port, "approval", {**approval, "approver": "王五"}))
    assert reply["ok"] is True, reply
    (a,) = gate.registry.list_approvals()
    assert (a.ref, a.direction, a.uses, a.plate) == ("BK-2024-0042", "out", 3, "冀B12345")
    assert a.approved_at.isoformat() == "2024-06-01T07:30:00+08:00"
    assert reply["result"]["ref"] == "BK-2024-0042"
    assert reply["result"]["approved_at"] == "2024-06-01T07:30:00+08:00"


def test_machinery_in_plant_vehicles_cargo_and_alert_windows_over_mqtt(
    gate: Any, mosquitto: Mosquitto
) -> None:
    """Each list command changes the registry, is audited with the signed actor, and the
    running gate applies the machinery rules at the alert level in force."""
    machines = {
        "machines": [
            {"registry_no": "HB130001", "machine_type": "装载机", "emission_stage": "2"},
            {"registry_no": "HB130002", "emission_stage": "4", "plate": "冀A9999X"},
        ]
    }
    assert _body(_send(mosquitto.port, "machinery_upsert", machines))["ok"] is True
    plant = {"vehicles": [{"plate": "冀A0C001", "plate_colour": "yellow", "fuel": "diesel"}]}
    assert _body(_send(mosquitto.port, "plant_vehicles_upsert", plant))["ok"] is True
    assert gate.registry.get_vehicle("冀A0C001").category == "in_plant"
    until = (datetime.now().astimezone() + timedelta(hours=2)).isoformat(timespec="seconds")
    reply = _body(
        _send(mosquitto.port, "cargo", {"plate": "冀A0C001", "cargo": "焦炭", "valid_until": until})
    )
    assert reply["ok"] is True, reply
    assert gate.registry.snapshot().cargo_for("冀A0C001", datetime.now().astimezone()) == "焦炭"
    card = {"tag": "E200ABCD0001", "cargo": "铁矿石", "valid_until": until, "uses": 1}
    reply = _body(_send(mosquitto.port, "cargo", card))
    assert reply["ok"] is True and reply["result"]["tag"] == "E200ABCD0001", reply
    assert reply["result"]["plate"] is None
    assert gate.registry.snapshot().is_waybill("E200ABCD0001")
    reply = _body(
        _send(
            mosquitto.port,
            "alert_level",
            {"level": "orange", "reason": "市重污染天气橙色预警", "valid_until": until},
        )
    )
    assert reply["ok"] is True and reply["result"]["in_force"] == "orange", reply
    assert reply["result"]["valid_until"] == datetime.fromisoformat(until).isoformat()
    out = passage(gate, "HB130001")
    assert (out.decision, out.reason_code) == ("deny", "machine_stage_below_minimum")
    assert passage(gate, "冀A9999X").decision == "allow"
    gone = _body(_send(mosquitto.port, "machinery_delete", {"registry_nos": ["HB130001"]}))
    assert gone["result"] == {"applied": 1}
    actions = _audit(gate)
    for action in ("nrmm.upsert", "plant_vehicles.upsert", "cargo.declare", "alert.set"):
        assert (action, "backend-op") in actions, action


def _audit(gate: Any) -> list[tuple[str, str]]:
    import sqlite3

    db = sqlite3.connect(gate.ctx.ledger_service.path)
    rows = list(db.execute("SELECT action, actor FROM audit"))
    db.close()
    return rows


def test_a_replayed_open_is_refused_across_a_clock_step(gate: Any, mosquitto: Mosquitto) -> None:
    """The finding: accept an open at T, step the clock to T+1 h, prune, step back to
    T+30 s, and the same open was accepted again."""
    t = int(time.time())
    clock = [float(t)]
    gate.mqtt.link.verifier.clock = lambda: clock[0]
    first = make_command(
        KEY, "p1", "g1", "open", {"reason": "司机卡顿，人工放行"}, actor="op", ts=t
    )
    raw = json.dumps(first, ensure_ascii=False).encode()
    assert _body(_send_raw(mosquitto.port, "open", raw) or {})["ok"] is True
    opened = gate.ledger.heads()["passages"][0]
    clock[0] = t + 3600.0
    later = make_command(KEY, "p1", "g1", "ping", {}, actor="op", ts=t + 3600)
    assert _body(_send_raw(mosquitto.port, "ping", json.dumps(later).encode()) or {})["ok"]
    gate.mqtt.link._maintain()  # whatever pruning the link does on its own, it has done now
    assert gate.mqtt.link.outbox.nonces_kept() == 1, "the open's nonce was forgotten at T+1 h"
    clock[0] = t + 30.0
    reply = _body(_send_raw(mosquitto.port, "open", raw) or {})
    # refused by the signed high-water mark, whatever any clock says now
    assert reply["ok"] is False and reply["error"] == "stale", reply
    assert "newest command this gate accepted" in reply["detail"]
    assert gate.ledger.heads()["passages"][0] == opened, "the replayed open opened again"


def test_an_unusable_device_key_stops_attestations_not_the_gate(tmp_path: Path) -> None:
    from edged.devicekey import create, key_path

    key = key_path(tmp_path / "data")
    create(key)
    key.chmod(0o644)  # readable by others: refused, so nothing is signed with it
    config = '[camera]\ntype = "none"\n'
    with running_box(tmp_path, config, ["ledger"]) as g:
        service = g.ctx.ledger_service
        assert g.ledger is not None and service.device_key is None
        assert service.attest("p1", "g1") is None  # nothing signed, nothing failed
    key.chmod(0o600)
    with running_box(tmp_path, config, ["ledger"]) as g:
        service = g.ctx.ledger_service
        assert service.device_key is not None and service.device_key.path == key
        assert service.attest("p1", "g1").n == 1


def test_open_honours_plate_direction_hold_and_lane(gate: Any, mosquitto: Mosquitto) -> None:
    from gpiozero import Device

    reply = _body(
        _send(
            mosquitto.port,
            "open",
            {
                "reason": "长车出厂，人工放行",
                "plate": "冀B12345",
                "direction": "out",
                "hold_s": 2,
                "lane": "main",
                "cargo": "废钢",
            },
        )
    )
    assert reply["ok"] is True, reply
    assert reply["result"]["direction"] == "out" and reply["result"]["lane"] == "main"
    relay = Device.pin_factory.pin(17)
    assert relay.state, "held open: the relay stays closed for hold_s"
    row = next(gate.ledger.passages(since_seq=reply["result"]["ledger_seq"] - 1)).record
    assert (row.plate, row.direction, row.lane, row.id_source) == (
        "冀B12345",
        "out",
        "main",
        "manual",
    )
    assert row.operator == "backend-op" and row.reason_code == "remote_open"
    assert row.cargo == "废钢", "the guard's word on the cargo"
    assert wait_until(lambda: not relay.state, 5), "the held relay was never released"
    audit = _audit_actions(gate)
    assert "manual_open" in audit[-2:]
    reply = _body(_send(mosquitto.port, "open", {"reason": "人工放行测试", "lane": "west"}))
    assert reply["ok"] is False and "no lane 'west'" in json.dumps(reply, ensure_ascii=False)


def test_correct_appends_a_row_publishes_it_and_audits_the_actor(
    gate: Any, mosquitto: Mosquitto
) -> None:
    out = passage(gate, "冀B1234S")
    got: queue.Queue[dict[str, Any]] = queue.Queue()
    ready = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_message = lambda _c, _u, m: got.put(json.loads(m.payload)["payload"])
    c.on_subscribe = lambda *_a: ready.set()
    c.connect("127.0.0.1", mosquitto.port)
    c.subscribe("edged/p1/g1/passage", qos=1)
    c.loop_start()
    try:
        assert ready.wait(10)
        reply = _body(
            _send(
                mosquitto.port,
                "correct",
                {"seq": out.seq, "plate": "冀B12345", "reason": "车牌误识别，人工更正"},
            )
        )
        assert reply["ok"] is True, reply
        fix = reply["result"]
        assert fix["correction_of"] == out.seq
        msgs = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(m.get("correction_of") for m in msgs):
            with contextlib.suppress(queue.Empty):
                msgs.append(got.get(timeout=1))
        fixed = next(m for m in msgs if m.get("correction_of") == out.seq)
        assert fixed["plate"] == "冀B12345" and fixed["raw_plate"] == "冀B1234S"
        assert fixed["ledger_seq"] == fix["correction_seq"] and fixed["operator"] == "backend-op"
    finally:
        c.loop_stop()
        c.disconnect()
    assert "correction" in _audit_actions(gate)
    (row,) = [r for r in gate.ledger.effective_passages() if r.record.correction_of]
    assert row.record.plate == "冀B12345"
