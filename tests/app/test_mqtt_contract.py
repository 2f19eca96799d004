"""The MQTT contract against a running gate: every message it publishes fits its schema.

A real box (mock pins, no camera) talks to a real mosquitto; a backend
stand-in subscribes to the whole tree before the box starts, sends every
command (signed, with today's and the deprecated field names, and one badly
signed), runs passages of every decision, and collects what arrives. Each
message is validated with the ``jsonschema`` package against the committed
schema files, closed (no key the schema does not name) wherever the contract
declares every key. The examples in docs/MQTT.md come from the same run:
``EDGED_UPDATE_DOCS=1`` rewrites them; otherwise they must have the shape of
what the gate sent.
"""

from __future__ import annotations

import copy
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from edged.app.contract import TOPICS, schema_for
from edged.app.lifecycle import judge_previous
from edged.cli.mqtt import differences
from edged.mqtt.commands import COMMAND_NAMES, make_command
from tests.box_rig import passage, running_box
from tests.broker import Mosquitto
from tests.mqtt.helpers import wait_until

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "docs" / "schemas"
MQTT_MD = REPO / "docs" / "MQTT.md"
KEY = "contract-site-key-0123456789"

#: Payloads whose every key the contract declares; events carry open details by design.
CLOSED = {
    "passage",
    "status",
    "availability",
    "ledger_head",
    "attestation",
    "device_key",
    "reply",
    "probe",
}

FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    """ISO 8601 with an explicit UTC offset: times without one are ambiguous at the backend."""
    if not isinstance(value, str):
        return True
    if datetime.fromisoformat(value).utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return True


def closed(schema: Any) -> Any:
    """``schema`` with every object that names its properties closed to other keys."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def validator(name: str, strict: bool) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    if strict:
        schema = {**schema, "properties": {**schema["properties"]}}
        schema["properties"]["payload"] = closed(schema["properties"]["payload"])
    return Draft202012Validator(schema, format_checker=FORMATS)


class Backend:
    """Subscribes to the gate's whole tree and sends signed commands, as a backend does."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="backend")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: ready.set()
        self.client.connect("127.0.0.1", port, 30)
        self.client.subscribe("edged/#", qos=1)
        self.client.loop_start()
        assert ready.wait(10), "the broker never acknowledged the backend's subscription"

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, suffix: str) -> list[dict[str, Any]]:
        with self.lock:
            got = [(t, p) for t, p, _r in self.messages if t.endswith("/" + suffix)]
        return [json.loads(p) for _t, p in got]

    def command(
        self, name: str, params: dict[str, Any], key: str = KEY
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        cmd = make_command(key, "p1", "g1", name, params, actor="backend-op")
        self.client.publish(f"edged/p1/g1/cmd/{name}", json.dumps(cmd, ensure_ascii=False), qos=1)

        def reply() -> dict[str, Any] | None:
            for m in self.on(f"cmd/{name}/reply"):
                if m["payload"]["cmd_id"] == cmd["id"]:
                    return m["payload"]
            return None

        assert wait_until(lambda: reply() is not None, 15), f"no reply to {name}"
        return cmd, reply() or {}

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One gate through every message it can publish; what the backend received."""
    tmp = tmp_path_factory.mktemp("contract")
    broker = Mosquitto(workdir=tmp / "mosquitto")
    broker.start()
    backend = Backend(broker.port)
    extra = (
        '[camera]\ntype = "none"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nhmac_key = "{KEY}"\n'
        "reconnect_min_s = 1\nreconnect_max_s = 2\n"
    )
    replies: dict[str, list[dict[str, Any]]] = {}
    sent: list[tuple[str, dict[str, Any]]] = []  # commands written to today's schemas

    def send(name: str, params: dict[str, Any], key: str = KEY) -> dict[str, Any]:
        cmd, reply = backend.command(name, params, key)
        replies.setdefault(name, []).append(reply)
        if key == KEY and not _old_names(params):
            sent.append((name, cmd))
        return reply

    try:
        with running_box(tmp, extra) as box:
            assert wait_until(lambda: box.mqtt.listening, 10)
            box.started(judge_previous(None, time.time()))  # as the daemon does once started
            ok = send("ping", {"echo": "联调"})
            assert ok["ok"] and ok["result"]["echo"] == "联调"
            truck = {
                "plate": "冀B12345",
                "plate_colour": "yellow",
                "fuel": "diesel",
                "emission_stage": "国6b",
                "fleet": "唐山鑫达运输",
                "rfid_tags": ["E2801160600002084F35A1F3"],
            }
            old_names = {
                "plate": "冀B54321",
                "plate_color": "yellow",
                "fuel": "gas",
                "rfid": "E2A1",
            }
            assert send("registry_upsert", {"vehicles": [truck]})["ok"]
            reply = send("registry_upsert", {"vehicles": [old_names]})
            assert reply["ok"] and "plate_color (now plate_colour)" in reply["detail"], reply
            assert box.registry.get_vehicle("冀B12345").rfid_tags == (truck["rfid_tags"][0],)
            entry = {"plate": "晋C55667", "reason": "遥感监测超标排放", "source": "生态环境局"}
            assert send("blacklist_upsert", {"entries": [entry]})["ok"]
            approval = {
                "approval_id": "OA-2024-0042",
                "plate": "冀D11223",
                "applicant": "李四",
                "approver": "王五",
                "reason": "抢修设备运输",
                "valid_from": "2024-06-01T08:00:00+08:00",
                "valid_until": "2034-06-01T18:00:00+08:00",
            }
            assert send("approval", approval)["ok"]
            loader = {
                "registry_no": "HB130203001",
                "machine_type": "装载机",
                "emission_stage": "国3",
                "rfid_tags": ["E2003412B802011566660004"],
            }
            assert send("machinery_upsert", {"machines": [loader]})["ok"]
            plant = {"plate": "冀B0C001", "plate_colour": "yellow", "fuel": "diesel"}
            assert send("plant_vehicles_upsert", {"vehicles": [plant]})["ok"]
            cargo = {
                "plate": "冀B12345",
                "cargo": "焦煤",
                "valid_until": "2034-06-01T18:00:00+08:00",
            }
            assert send("cargo", cargo)["result"]["plate"] == "冀B12345"
            passage(box, plate="冀B12345", tags=("E2801160600002084F35A1F3",))  # allow
            passage(box, plate="晋C55667")  # deny: blacklisted
            passage(box, plate="冀D11223")  # allow on the approval
            passage(box, plate="豫A00001")  # hold: not registered
            passage(box)  # no plate read
            assert send("alert_level", {"level": "orange", "reason": "市重污染天气橙色预警"})["ok"]
            box.check_alert_level()  # as the daemon's tick does: announced on alert_level
            fix = {"seq": 4, "reason": "车牌识别错误,人工更正", "plate": "豫A00002"}
            assert send("correct", fix)["result"]["correction_of"] == 4
            assert send("open", {"reason": "地磅故障,人工放行", "hold_s": 1})["ok"]
            assert send("resend", {"from_seq": 1, "to_seq": 2})["result"] == {"resent": 2}
            refused = send("open", {"reason": "x"}, key="not-the-site-key-000000")
            assert refused["error"] == "bad_signature"
            assert send("registry_replace", {"version": "2024-06-01", "vehicles": [truck]})["ok"]
            assert send("registry_delete", {"plates": ["冀B12345"]})["ok"]
            assert send("blacklist_delete", {"plates": ["晋C55667"]})["ok"]
            assert send("machinery_delete", {"registry_nos": ["HB130203001"]})["ok"]
            assert send("plant_vehicles_delete", {"plates": ["冀B0C001"]})["ok"]
            box.publish_heads()
            box.attest()
            box.publish_health()
            assert wait_until(lambda: len(backend.on("ledger/attestation")) == 1, 10)
            assert wait_until(lambda: box.mqtt.status()["backlog"] == 0, 15)
            assert wait_until(lambda: any(_kinds(backend, "mqtt_commands_refused")), 10)
            ledger_rows = list(box.ledger.passages())
        assert wait_until(
            lambda: backend.on("availability")[-1]["payload"]["state"] == "offline", 5
        )
        with backend.lock:
            messages = list(backend.messages)
        yield {"messages": messages, "replies": replies, "rows": ledger_rows, "sent": sent}
    finally:
        backend.close()
        broker.stop()


def _old_names(params: dict[str, Any]) -> bool:
    return "plate_color" in json.dumps(params)


def _kinds(backend: Backend, kind: str) -> list[dict[str, Any]]:
    return [m for m in backend.on("events") if m["payload"].get("kind") == kind]


def _suffix(topic: str) -> str:
    return topic.split("/", 3)[3]


def test_the_committed_schema_files_are_this_versions() -> None:
    assert differences(SCHEMAS) == [], "regenerate: edged mqtt schemas --out docs/schemas"


def test_the_schema_files_are_json_schema() -> None:
    for path in sorted(SCHEMAS.rglob("*.json")):
        if path.name != "topics.json":
            Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))


def test_every_message_of_a_running_gate_fits_its_schema(run: dict[str, Any]) -> None:
    seen: set[str] = set()
    for topic, raw, _retained in run["messages"]:
        name = schema_for(_suffix(topic))
        assert name is not None, f"{topic}: no schema for this topic"
        if name.startswith("cmd/") and not name.endswith(".reply.json"):
            continue  # the backend's commands: the next test
        body = json.loads(raw.decode("utf-8"))
        errors = sorted(
            validator(name, body.get("type") in CLOSED).iter_errors(body), key=lambda e: e.path
        )
        assert not errors, f"{topic}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]
        )
        seen.add(name)
    published = {f"{t.replace('/', '-')}.json" for k, (t, *_r) in TOPICS.items()}
    published -= {"cmd-<name>-reply.json", "probe.json"}  # replies below; probe: edged probe
    assert published <= seen, f"never published in this run: {sorted(published - seen)}"
    assert {f"cmd/{n}.reply.json" for n in COMMAND_NAMES} <= seen


def test_every_passage_arrives_with_the_ledger_row_and_its_hash(run: dict[str, Any]) -> None:
    got = {}
    for topic, raw, _r in run["messages"]:
        if topic.endswith("/passage"):
            p = json.loads(raw)["payload"]
            got.setdefault(p["ledger_seq"], p)
    rows = run["rows"]
    assert sorted(got) == [r.seq for r in rows]
    for r in rows:
        fields = {k: v for k, v in got[r.seq].items() if k not in ("ledger_seq", "hash", "resent")}
        assert fields == r.record.to_fields() and got[r.seq]["hash"] == r.hash


def test_commands_published_as_the_schemas_say_are_accepted(run: dict[str, Any]) -> None:
    """The command schemas are the gate's own: every command this run sent with today's
    names validates against its file, and so does its signed envelope."""
    for name in COMMAND_NAMES:
        replies = run["replies"][name]
        assert any(r["ok"] for r in replies), name
    assert {name for name, _cmd in run["sent"]} == set(COMMAND_NAMES)
    for name, cmd in run["sent"]:
        errors = list(validator(f"cmd/{name}.json", False).iter_errors(cmd))
        assert not errors, (name, errors)
    cmd = make_command(KEY, "p1", "g1", "open", {"reason": "地磅故障"}, actor="op")
    bad = {**cmd, "params": {"reason": "x", "hold_s": 999}}
    assert list(validator("cmd/open.json", False).iter_errors(bad))
    assert list(validator("cmd/open.json", False).iter_errors({**cmd, "retain": True}))


# -- the examples in docs/MQTT.md -----------------------------------------------------------

_BLOCK = re.compile(r"<!-- example: (?P<name>[\w:./-]+) -->\n```json\n(?P<body>.*?)\n```", re.S)


def _examples(run: dict[str, Any]) -> dict[str, Any]:
    """The real message each documented example shows, by the name the doc gives it."""
    last: dict[str, dict[str, Any]] = {}
    for topic, raw, _r in run["messages"]:
        body = json.loads(raw)
        suffix = _suffix(topic)
        if suffix.startswith("cmd/") and not suffix.endswith("/reply"):
            continue  # the backend's own commands
        if suffix.startswith("cmd/"):
            p = body["payload"]
            suffix = f"reply:{p['command']}:{'ok' if p['ok'] else p['error']}"
            suffix += ":note" if p["ok"] and p["detail"] else ""
        elif suffix == "events":
            suffix = f"events:{body['payload']['kind']}"
        elif suffix == "passage":
            p = body["payload"]
            suffix = f"passage:{p['decision']}" + (":resent" if p.get("resent") else "")
        else:
            suffix = body["type"]
        if suffix.startswith("passage"):
            last.setdefault(suffix, body)  # the first: the registered truck
        else:
            last[suffix] = body  # the latest: a status after the passages says most
    out = {k: v["payload"] for k, v in last.items()}
    out["envelope"] = last["passage:allow"]
    return out


def render_example(value: Any) -> str:
    """Top-level keys one per line, nested values compact: short, and diff-friendly."""
    if not isinstance(value, dict) or not value:
        return json.dumps(value, ensure_ascii=False)
    lines = [
        f"  {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}"
        for k, v in value.items()
    ]
    return "{\n" + ",\n".join(lines) + "\n}"


def shape(value: Any) -> Any:
    """Keys at every level and list/object structure; leaf values left out (they vary)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None


def test_the_examples_in_the_mqtt_doc_are_real_messages(run: dict[str, Any]) -> None:
    real = _examples(run)
    text = MQTT_MD.read_text(encoding="utf-8")
    named = [m.group("name") for m in _BLOCK.finditer(text)]
    assert len(named) >= 8, "docs/MQTT.md lost its generated examples"
    missing = [n for n in named if n not in real]
    assert not missing, f"the run published no message for the examples {missing}"
    if os.environ.get("EDGED_UPDATE_DOCS"):
        text = _BLOCK.sub(
            lambda m: m.group(0).replace(m.group("body"), render_example(real[m.group("name")])),
            text,
        )
        # the run's data folder is a temporary one: the doc shows the packaged box's
        text = re.sub(r'"/tmp/[^"]*"', '"/var/lib/edged"', text)
        MQTT_MD.write_text(text, encoding="utf-8")
    assert "/tmp/" not in MQTT_MD.read_text(encoding="utf-8"), "a test run's path in the doc"
    for m in _BLOCK.finditer(MQTT_MD.read_text(encoding="utf-8")):
        doc = json.loads(m.group("body"))
        assert shape(doc) == shape(copy.deepcopy(real[m.group("name")])), (
            f"docs/MQTT.md example {m.group('name')} no longer has the shape of what the gate"
            " sends: regenerate with EDGED_UPDATE_DOCS=1 pytest tests/app/test_mqtt_contract.py"
        )


def test_availability_has_a_documented_value_template(run: dict[str, Any]) -> None:
    """Home Assistant and Frigate-style consumers expect online/offline; the envelope keeps
    one format on every topic, and the doc gives the template that extracts the state."""
    text = MQTT_MD.read_text(encoding="utf-8")
    assert 'value_template: "{{ value_json.payload.state }}"' in text
    states = [
        json.loads(raw)["payload"]["state"]
        for t, raw, _r in run["messages"]
        if t.endswith("/availability")
    ]
    assert states[0] == "online" and states[-1] == "offline"


def test_field_doc_lists_every_key_of_the_status() -> None:
    """docs/FIELD.md promises every status key; the schema holds the keys Box.health gives."""
    from edged.app.contract import status_payload

    text = (REPO / "docs" / "FIELD.md").read_text(encoding="utf-8")
    rows = {m.group(1) for m in re.finditer(r"^\| `(\w+)`", text, re.M)}
    rows |= {m.group(1) for m in re.finditer(r"^\| `\w+`, `(\w+)`", text, re.M)}
    missing = set(status_payload()["properties"]) - rows
    assert not missing, f"docs/FIELD.md has no row for status keys {sorted(missing)}"
