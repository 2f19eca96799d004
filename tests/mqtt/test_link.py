"""The link against a real mosquitto: outages, kill -9, LWT, signed commands."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from structlog.testing import capture_logs

from edged.mqtt.client import MqttLink, fallback_needed
from edged.mqtt.commands import make_command
from tests.box_rig import held_worker
from tests.broker import Mosquitto
from tests.mqtt.helpers import (
    KEY,
    Collector,
    PersistentMosquitto,
    link_config,
    raw_flood,
    unique_in_order,
    wait_until,
)

PUBLISHER = Path(__file__).with_name("publisher.py")


def _send(port: int, topic: str, payload: bytes, *, retain: bool = False) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="backend", protocol=mqtt.MQTTv311)
    c.connect("127.0.0.1", port, 10)
    c.loop_start()
    c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def test_publish_envelopes_online_and_graceful_offline(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    col = Collector(mosquitto.port, "edged/#")
    events: list[str] = []
    link = MqttLink(
        link_config(mosquitto.port),
        ("s1", "g1"),
        tmp_path / "o.db",
        on_event=lambda name, _d: events.append(name),
    )
    link.start()
    try:
        link.publish("passage", {"plate": "冀A12345"})
        link.publish("sensors", {"pm10": 41.5}, subtopic="dust1", durable=False)
        link.publish("status", {"ok": True}, retain=True)
        link.publish("ledger_head", {"seq": 1, "hash": "ab"}, retain=True)
        assert wait_until(lambda: len(col.on("/ledger/head")) == 1, 5)
        p = col.on("/passage")[0]
        assert p["payload"] == {"plate": "冀A12345"} and p["site"] == "s1" and p["gate"] == "g1"
        assert [b["seq"] for b in col.on("/passage") + col.on("/sensors/dust1")] == [1, 2]
        assert col.on("/availability")[0]["payload"] == {"state": "online"}
        assert "connected" in events
        assert wait_until(lambda: link.stats()["backlog"] == 0, 5)
    finally:
        assert link.stop(3) == 0
    assert wait_until(lambda: col.on("/availability")[-1]["payload"]["state"] == "offline", 5)
    col.close()
    # retained status survives for a backend that subscribes later
    late = Collector(mosquitto.port, "edged/s1/g1/status", client_id="late")
    assert wait_until(lambda: len(late.on("/status")) == 1, 5)
    late.close()


def test_outage_30s_200_passages_in_order_none_missing(tmp_path: Path) -> None:
    broker = PersistentMosquitto(tmp_path / "mosq")
    broker.start()
    col = Collector(broker.port, "edged/s1/g1/passage", client_id="backend-outage")
    link = MqttLink(link_config(broker.port, drain_rate=100), ("s1", "g1"), tmp_path / "o.db")
    link.start()
    try:
        assert wait_until(lambda: link.connected, 5)
        for i in range(20):
            link.publish("passage", {"phase": "before", "n": i})
        assert wait_until(lambda: len(col.on("/passage")) >= 20, 5)
        broker.stop()
        t0 = time.monotonic()
        for i in range(200):  # passages keep happening during the 30 s outage
            link.publish("passage", {"phase": "outage", "n": i})
            time.sleep(0.1)
        assert not link.connected
        time.sleep(max(0.0, 30 - (time.monotonic() - t0)))
        broker.start()
        for i in range(20):
            link.publish("passage", {"phase": "after", "n": i})
        assert wait_until(lambda: link.stats()["backlog"] == 0, 20), link.stats()
        assert wait_until(lambda: len(unique_in_order(col.on("/passage"))[0]) == 240, 10)
        time.sleep(0.5)
        unique, dups = unique_in_order(col.on("/passage"))
        outage = [b["payload"]["n"] for b in unique if b["payload"]["phase"] == "outage"]
        assert outage == list(range(200)), "outage passages must arrive in order, none missing"
        seqs = sorted(b["seq"] for b in unique)
        assert seqs == list(range(1, 241)), "no gaps in the gate's sequence"
        stats = link.stats()
        print(
            f"duplicates seen by the backend: {dups}; link reports possible: "
            f"{stats['possible_duplicates']}; stats: {stats}"
        )
        # Two sources: the gate resending what was in flight when the link fell
        # (stats) and the restarted broker redelivering to the backend what was
        # in flight to *it* (at most its 20-message window; the gate cannot see it).
        assert dups <= stats["possible_duplicates"] + 20, "duplicates must be rare"
        assert stats["sent"] >= 240
    finally:
        link.stop(2)
        col.close()
        broker.cleanup()


def _spawn(port: int, outbox: Path, count: int, drain: float = 500.0) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(PUBLISHER),
            "--port",
            str(port),
            "--outbox",
            str(outbox),
            "--count",
            str(count),
            "--drain-rate",
            str(drain),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("queued"), (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc


def _kill9(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_with_1000_queued_then_restart_all_arrive_and_lwt(tmp_path: Path) -> None:
    broker = PersistentMosquitto(tmp_path / "mosq")
    broker.start()
    col = Collector(broker.port, "edged/s1/g1/#", client_id="backend-kill")
    outbox = tmp_path / "gate.db"
    try:
        # 1) broker down: 1,000 passages queued, then the gate is killed with -9
        broker.stop()
        _kill9(_spawn(broker.port, outbox, 1000))
        # 2) broker up: the gate restarts, starts draining, is killed again mid-drain
        broker.start()
        proc = _spawn(broker.port, outbox, 0, drain=300)
        assert wait_until(lambda: len(col.on("/passage")) >= 200, 10)
        assert col.on("/availability")[-1]["payload"]["state"] == "online"
        _kill9(proc)
        got_mid = len(unique_in_order(col.on("/passage"))[0])
        assert got_mid < 1000, "the kill must happen while messages are still queued"
        # LWT: the broker announces the dead gate
        assert wait_until(lambda: col.on("/availability")[-1]["payload"]["state"] == "offline", 5)
        # 3) restart: everything arrives
        proc = _spawn(broker.port, outbox, 0, drain=0)
        try:
            assert wait_until(lambda: len(unique_in_order(col.on("/passage"))[0]) == 1000, 20)
            unique, dups = unique_in_order(col.on("/passage"))
            assert sorted(b["payload"]["n"] for b in unique) == list(range(1000))
            assert [b["seq"] for b in unique] == list(range(1, 1001)), "drained in order"
            print(f"killed after {got_mid} delivered; duplicates {dups}")
            # after a crash, resent = in flight + acknowledged-not-yet-deleted (batched)
            assert dups <= 20 + 256
        finally:
            proc.terminate()
            proc.wait(5)
    finally:
        col.close()
        broker.cleanup()


# -- commands over the broker --------------------------------------------------


class Audit:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, actor: str, action: str, details: dict[str, Any]) -> None:
        self.entries.append((actor, action, details))


class Events:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str, dict[str, Any]]] = []

    def __call__(self, kind: str, severity: str, message: str, details: dict[str, Any]) -> None:
        self.entries.append((kind, severity, message, details))


@pytest.fixture
def cmd_link(mosquitto: Mosquitto, tmp_path: Path):
    audit = Audit()
    events = Events()
    link = MqttLink(
        link_config(mosquitto.port, cmd_refusal_report_s=0.5),
        ("s1", "g1"),
        tmp_path / "o.db",
        audit=audit,
        record_event=events,
    )
    link.events = events  # type: ignore[attr-defined]
    opened: list[tuple[dict[str, Any], str]] = []

    def do_open(params: dict[str, Any], actor: str) -> dict[str, Any]:
        opened.append((params, actor))
        return {"opened": True}

    def boom(_p: dict[str, Any], _a: str) -> dict[str, Any]:
        raise RuntimeError("registry locked")

    link.on_command("open", do_open)
    link.on_command("registry_delete", boom)
    # a gate worker held up by a long job: a command waiting on it times out
    with held_worker("busy-test") as (busy, _release):
        link.on_command("alert_level", lambda p, _a: busy.submit(dict, p, wait=0.05))
        link.start()
        assert wait_until(lambda: link.listening, 5)
        col = Collector(mosquitto.port, "edged/s1/g1/cmd/+/reply", client_id="backend-cmd")
        yield link, col, audit, opened
        link.stop(2)
        col.close()


def test_listening_follows_the_command_subscription_across_an_outage(tmp_path: Path) -> None:
    broker = Mosquitto(workdir=tmp_path / "mosq")
    broker.start()
    link = MqttLink(link_config(broker.port), ("s1", "g1"), tmp_path / "o.db")
    try:
        link.start()
        assert wait_until(lambda: link.listening, 5)
        assert link.stats()["listening"] is True
        broker.stop()
        assert wait_until(lambda: not link.connected, 5)
        assert not link.listening and link.stats()["listening"] is False
        broker.start()
        assert wait_until(lambda: link.listening, 15), "commands not subscribed after reconnect"
        # A broker that refuses the subscription (EMQX with an ACL answers 0x87;
        # mosquitto's acl_file never refuses a subscribe, so the SUBACK is fed in):
        # the gate stays not listening and says why.
        mid = link._subscribe_mid
        with capture_logs() as logs:
            link._on_subscribe(
                None, None, mid, [ReasonCode(PacketTypes.SUBACK, identifier=0x87)], None
            )
        assert not link.listening
        refused = [e for e in logs if e["event"] == "mqtt_command_subscribe_refused"]
        assert len(refused) == 1 and refused[0]["topic"] == "edged/s1/g1/cmd/+"
        assert "Not authorized" in refused[0]["reason"] and "ACL" in refused[0]["hint"]
    finally:
        link.stop(2)
        broker.stop()


def _cmd(port: int, name: str, body: dict[str, Any] | bytes) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    _send(port, f"edged/s1/g1/cmd/{name}", raw)


def test_commands_signed_accepted_refusals_replied_fresh_ones_audited(
    cmd_link, mosquitto: Mosquitto
) -> None:
    link, col, audit, opened = cmd_link
    port = mosquitto.port
    good = make_command(KEY, "s1", "g1", "open", {"reason": "地磅故障"}, actor="zhang.san")
    _cmd(port, "open", good)
    assert wait_until(lambda: len(col.on("/open/reply")) == 1, 5)
    reply = col.on("/open/reply")[0]["payload"]
    assert reply["ok"] is True and reply["result"] == {"opened": True}
    assert reply["cmd_id"] == good["id"]
    assert opened == [({"reason": "地磅故障"}, "zhang.san")]

    unsigned = dict(good, nonce="u" * 20)
    del unsigned["sig"]
    badsig = make_command(KEY + "x", "s1", "g1", "open", {"reason": "x"}, actor="mallory")
    stale = make_command(
        KEY, "s1", "g1", "open", {"reason": "x"}, actor="a", ts=int(time.time()) - 3600
    )
    cases = [
        ("open", unsigned, "unsigned"),
        ("open", badsig, "bad_signature"),
        ("open", stale, "stale"),
        ("open", good, "replayed"),
        ("open", b"{not json", "malformed"),
        ("open", make_command(KEY, "s1", "g1", "open", {"reason": 5}, actor="a"), "invalid_params"),
        ("selfdestruct", make_command(KEY, "s1", "g1", "ping", {}, actor="a"), "unknown_command"),
        (
            "resend",
            make_command(KEY, "s1", "g1", "resend", {"from_seq": 1, "to_seq": 2}, actor="a"),
            "not_supported",
        ),
        (
            "registry_delete",
            make_command(KEY, "s1", "g1", "registry_delete", {"plates": ["冀A12345"]}, actor="a"),
            "handler_error",
        ),
        (
            "alert_level",
            make_command(
                KEY, "s1", "g1", "alert_level", {"level": "orange", "reason": "预警"}, actor="a"
            ),
            "timeout",
        ),
    ]
    for name, body, _err in cases:
        _cmd(port, name, body)
    assert wait_until(lambda: len(col.messages) == 1 + len(cases), 10), col.messages
    # signed commands are answered at once, refusals of unverified ones on the next
    # tick of the worker and list commands by their own worker: the order may differ
    replies = {b["payload"]["error"]: b["payload"] for _t, b, _r in col.messages[1:]}
    assert sorted(replies) == sorted(e for _n, _b, e in cases)
    assert all(r["ok"] is False and r["detail"] for r in replies.values())
    assert "registry locked" in replies["handler_error"]["detail"]
    assert "not cancelled" in replies["timeout"]["detail"]
    assert len(opened) == 1, "no refused command may reach the handler"
    # Only signed, fresh commands are audited one by one (the key holder sent them);
    # refusals anyone could cause are summarised in the bounded event log instead.
    fresh = [e for _n, _b, e in cases if e in ("not_supported", "handler_error", "timeout")]
    fresh.insert(0, "invalid_params")
    assert wait_until(lambda: len(audit.entries) == 1 + len(fresh), 5), audit.entries
    assert audit.entries[0][:2] == ("zhang.san", "mqtt_command_accepted")
    assert sorted(d["error"] for _a, _act, d in audit.entries[1:]) == sorted(fresh)
    assert all(d["signature_verified"] for _a, _act, d in audit.entries)
    events = link.events.entries
    assert wait_until(lambda: sum(d["count"] for *_x, d in events) == len(cases) - len(fresh), 5)
    kinds = {k for k, *_r in events}
    assert kinds == {"mqtt_commands_refused"}
    by_error: dict[str, int] = {}
    for *_x, d in events:
        for err, n in d["by_error"].items():
            by_error[err] = by_error.get(err, 0) + n
        assert len(d["examples"]) <= 5
    assert by_error == {
        "unsigned": 1,
        "bad_signature": 1,
        "stale": 1,
        "replayed": 1,
        "malformed": 1,
        "unknown_command": 1,
    }
    # ping is built in and the link still works after all that
    _cmd(port, "ping", make_command(KEY, "s1", "g1", "ping", {"echo": "hi"}, actor="a"))
    assert wait_until(lambda: len(col.on("/ping/reply")) == 1, 5)
    assert col.on("/ping/reply")[0]["payload"]["result"]["echo"] == "hi"
    assert link.stats()["commands_refused"] == len(cases)
    assert link.stats()["commands_queued"] == 0


def test_retained_command_is_ignored_on_subscribe(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """A command left retained on the broker must not run again at every reconnect."""
    body = make_command(KEY, "s1", "g1", "open", {"reason": "x"}, actor="a")
    _send(mosquitto.port, "edged/s1/g1/cmd/open", json.dumps(body).encode(), retain=True)
    opened: list[str] = []
    link = MqttLink(link_config(mosquitto.port), ("s1", "g1"), tmp_path / "o.db")
    link.on_command("open", lambda _p, actor: opened.append(actor) or {})
    col = Collector(mosquitto.port, "edged/s1/g1/cmd/+/reply", client_id="backend-ret")
    link.start()
    try:
        assert wait_until(lambda: link.listening, 5)
        _cmd(mosquitto.port, "ping", make_command(KEY, "s1", "g1", "ping", {}, actor="a"))
        assert wait_until(lambda: len(col.on("/ping/reply")) == 1, 5)
        assert opened == [] and col.on("/open/reply") == []
    finally:
        link.stop(2)
        col.close()


def test_protocol_311_and_fallback_rule(mosquitto: Mosquitto, tmp_path: Path) -> None:
    col = Collector(mosquitto.port, "edged/#")
    link = MqttLink(link_config(mosquitto.port, protocol="3.1.1"), ("s1", "g1"), tmp_path / "o.db")
    link.start()
    link.publish("events", {"event": "door_open"})
    assert wait_until(lambda: len(col.on("/events")) == 1, 5)
    assert link.stats()["protocol"] == "3.1.1"
    link.stop(2)
    col.close()
    assert fallback_needed("auto", True, 1) and fallback_needed("auto", True, 0x84)
    assert not fallback_needed("5", True, 0x84)
    assert not fallback_needed("auto", True, 0x86)  # bad user/password: no point retrying
    assert not fallback_needed("auto", False, 1)


def test_telemetry_drop_is_reported_as_event(mosquitto: Mosquitto, tmp_path: Path) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    link = MqttLink(
        link_config(mosquitto.port, outbox_max_messages=100),
        ("s1", "g1"),
        tmp_path / "o.db",
        on_event=lambda n, d: events.append((n, d)),
    )
    for i in range(150):  # not started yet: like a long outage
        link.publish("sensors", {"i": i}, subtopic="fan", durable=False)
    col = Collector(mosquitto.port, "edged/s1/g1/events")
    link.start()
    try:
        assert wait_until(lambda: len(col.on("/events")) >= 1, 5)
        assert wait_until(lambda: link.stats()["backlog"] == 0, 5)
        assert len(col.on("/events")) == 1, "one event per minute, not one per dropped row"
        ev = col.on("/events")[0]["payload"]
        assert ev["kind"] == "telemetry_dropped" and ev["count"] == 50
        assert ev["severity"] == "warning" and "event" not in ev, "one event type key: kind"
        assert ev["first_seq"] == 1 and ev["last_seq"] == 50
        assert ("telemetry_dropped", ev) in events
        assert link.stats()["dropped"] in (50, 51)  # the event itself may push one more out
    finally:
        link.stop(2)
        col.close()


def _junk(i: int) -> tuple[str, bytes]:
    """Unverified traffic of every kind the intake sorts out."""
    kind = i % 5
    if kind == 0:  # unsigned
        body = make_command(KEY, "s1", "g1", "open", {"reason": "junk"}, actor="x")
        del body["sig"]
        return "open", json.dumps(body).encode()
    if kind == 1:  # signed with another key
        return "ping", json.dumps(
            make_command("k" * 20, "s1", "g1", "ping", {}, actor="x")
        ).encode()
    if kind == 2:
        return "open", b"{not json" + str(i).encode()
    if kind == 3:
        return f"junk{i % 50}", b"{}"
    return "ping", b"x" * 10_000  # over the ping cap


def test_junk_flood_never_delays_a_signed_command(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """10,000 unverified commands at QoS 0, then one signed ping: acted on within a second
    of reaching the gate, with no junk queued, a bounded outbox and one summary instead
    of 10,000 records."""
    events = Events()
    audit = Audit()
    link = MqttLink(
        link_config(mosquitto.port),
        ("s1", "g1"),
        tmp_path / "o.db",
        audit=audit,
        record_event=events,
    )
    arrived: list[float] = []
    acted: list[float] = []
    intake = link.inbox.intake

    def timed_intake(name: str, raw: bytes) -> None:
        if b"through" in raw:
            arrived.append(time.monotonic())
        intake(name, raw)

    link.inbox.intake = timed_intake  # type: ignore[method-assign]
    link.on_command("ping", lambda p, _a: acted.append(time.monotonic()) or {"echo": p["echo"]})
    link.start()
    col = Collector(mosquitto.port, "edged/s1/g1/cmd/ping/reply", client_id="backend-flood")
    try:
        assert wait_until(lambda: link.listening, 5)
        junk = [(f"edged/s1/g1/cmd/{name}", raw) for name, raw in map(_junk, range(10_000))]
        ping = make_command(KEY, "s1", "g1", "ping", {"echo": "through"}, actor="ops")
        t0 = time.monotonic()
        raw_flood(mosquitto.port, [*junk, ("edged/s1/g1/cmd/ping", json.dumps(ping).encode())])

        def answered() -> bool:
            return any(b["payload"]["cmd_id"] == ping["id"] for b in col.on("/ping/reply"))

        assert wait_until(answered, 20), link.stats()
        total = time.monotonic() - t0
        waited = acted[0] - arrived[0]
        print(
            f"signed ping acted on {waited * 1000:.1f} ms after it reached the gate;"
            f" {total:.2f} s after the flood began (reading 10,000 messages off the socket)"
        )
        assert waited < 1.0, f"the signed ping waited {waited:.2f} s behind junk in the gate"
        # reading 10,000 messages takes 2 to 6 s on a loaded two-core CI machine; an
        # intake that slowed down as junk piled up would take minutes
        assert total < 15.0, f"the flood held the link up for {total:.2f} s"
        assert wait_until(lambda: link.stats()["commands_refused_unverified"] == 10_000, 5), (
            link.stats()
        )
        st = link.stats()
        assert st["commands_queued"] == 0 and st["commands_accepted"] == 1
        assert [a for _x, a, _d in audit.entries] == ["mqtt_command_accepted"]
        assert wait_until(lambda: len(events.entries) >= 1, 2)
        assert len(events.entries) == 1, "one summary per report period, not one per refusal"
        summary = events.entries[0][3]
        assert 1 <= summary["count"] < 10_000 and len(summary["examples"]) <= 5
        assert len(summary["by_command"]) <= 21
        # replies to junk are limited to the per-minute budget: the outbox stays small
        assert st["refusal_replies_skipped"] >= 10_000 - 70  # 60 at once, then 1 a second
        assert link.outbox.stats()["backlog"] <= 70
    finally:
        link.stop(2)
        col.close()
    # the rest is summarised when the period ends, or at the latest when the link stops
    assert len(events.entries) == 2 and sum(e[3]["count"] for e in events.entries) == 10_000


def test_replayed_copies_of_a_signed_command_never_crowd_the_signed_queue(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Someone who captured one signed command floods it: the copies are signed too, so the
    arrival check also reads the nonce cache; only the first copy is queued and acted on."""
    audit = Audit()
    link = MqttLink(link_config(mosquitto.port), ("s1", "g1"), tmp_path / "o.db", audit=audit)
    link.start()
    col = Collector(mosquitto.port, "edged/s1/g1/cmd/ping/reply", client_id="backend-replay")
    try:
        assert wait_until(lambda: link.listening, 5)
        captured = json.dumps(make_command(KEY, "s1", "g1", "ping", {}, actor="ops")).encode()
        fresh = make_command(KEY, "s1", "g1", "ping", {"echo": "fresh"}, actor="ops")
        raw_flood(
            mosquitto.port,
            [("edged/s1/g1/cmd/ping", captured)] * 3000
            + [("edged/s1/g1/cmd/ping", json.dumps(fresh).encode())],
        )
        assert wait_until(
            lambda: any(
                b["payload"]["cmd_id"] == fresh["id"] and b["payload"]["ok"]
                for b in col.on("/ping/reply")
            ),
            20,
        )
        assert wait_until(lambda: link.stats()["commands_refused_unverified"] == 2999, 10)
        st = link.stats()
        assert st["commands_accepted"] == 2 and st["commands_queued"] == 0
        assert [a for _x, a, _d in audit.entries] == ["mqtt_command_accepted"] * 2
    finally:
        link.stop(2)
        col.close()
