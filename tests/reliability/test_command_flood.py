"""A hostile broker neighbour against a real ``edged run``: giant, bomb and flood commands.

Reproduces the findings of the hardening review against the daemon as a plant
runs it: eleven unsigned commands with a 5 MB id and 2 MB actor and nonce
(once 9 MB audit rows each, a full data partition and a shut barrier), 16 MiB
payloads of nested empty lists (once 400 MB each while parsed), and 10,000
junk commands at QoS 0 ahead of one signed ``ping`` (once dropped with them).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edged.mqtt.commands import make_command
from tests.broker import Mosquitto
from tests.mqtt.helpers import raw_flood, wait_until
from tests.reliability import summary
from tests.reliability.daemon import Instance

KEY = "flood-site-key-0123456789abcdef"


def _vmhwm_mb(gate: Instance) -> float:
    assert gate.proc is not None
    for line in Path(f"/proc/{gate.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _audit(gate: Instance) -> tuple[int, int]:
    conn = sqlite3.connect(gate.ledger_path, timeout=30)
    try:
        rows, size = conn.execute(
            "SELECT count(*), coalesce(sum(length(fields)), 0) FROM audit"
        ).fetchone()
    finally:
        conn.close()
    return int(rows), int(size)


def _data_bytes(gate: Instance) -> int:
    return sum(p.stat().st_size for p in gate.data_dir.rglob("*") if p.is_file())


def _ping(port: int, site: str, echo: str, timeout: float = 30) -> float | None:
    """One signed ping; seconds until its reply, None if none came."""
    got: list[float] = []
    subscribed: list[bool] = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_message = lambda _c, _u, m: echo.encode() in m.payload and got.append(time.monotonic())
    c.on_subscribe = lambda *_a: subscribed.append(True)
    c.connect("127.0.0.1", port)
    c.subscribe(f"edged/{site}/g1/cmd/ping/reply", qos=1)
    c.loop_start()
    try:
        assert wait_until(lambda: bool(subscribed), 10)
        cmd = make_command(KEY, site, "g1", "ping", {"echo": echo}, actor="ops")
        t0 = time.monotonic()
        c.publish(f"edged/{site}/g1/cmd/ping", json.dumps(cmd), qos=1)
        wait_until(lambda: bool(got), timeout)
        return got[0] - t0 if got else None
    finally:
        c.loop_stop()
        c.disconnect()


@pytest.mark.reliability
@pytest.mark.slow
def test_hostile_commands_cost_bounded_memory_and_disk_and_never_block_a_signed_one(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    t0 = time.monotonic()
    gate = Instance(tmp_path / "gate", mosquitto.port, site="flood", extra=f'hmac_key = "{KEY}"\n')
    gate.start()
    try:
        assert wait_until(lambda: (gate.status().get("outbox") or {}).get("listening"), 30)
        assert _ping(mosquitto.port, "flood", "warm-up") is not None
        idle_mb = gate.rss_mb()
        audit_before = _audit(gate)
        disk_before = _data_bytes(gate)
        base = "edged/flood/g1/cmd/"

        giant = json.dumps(
            {
                "id": "i" * 5_000_000,
                "ts": int(time.time()),
                "nonce": "n" * 2_000_000,
                "actor": "a" * 2_000_000,
                "params": {"version": "1", "vehicles": []},
            }
        ).encode()
        bomb = b'{"params": [' + b"[]," * (16 * 1024 * 1024 // 3 - 8) + b"[]]}"
        hostile = [(base + "registry_replace", giant)] * 11 + [
            (base + "registry_replace", bomb)
        ] * 3
        hostile += [(base + "open", giant[:2_000_000])] * 5  # over the open cap: never parsed
        raw_flood(mosquitto.port, hostile)
        assert wait_until(
            lambda: (
                int((gate.status().get("outbox") or {}).get("commands_refused_unverified", 0))
                >= len(hostile)
            ),
            120,
        ), gate.status().get("outbox")
        peak_mb = _vmhwm_mb(gate)
        assert gate.running, gate.log_tail()
        assert _audit(gate) == audit_before, "refusals of unverified commands wrote audit rows"
        grown = _data_bytes(gate) - disk_before
        assert grown < 5_000_000, f"data dir grew {grown} bytes for {len(hostile)} refusals"
        assert peak_mb - idle_mb < 150, f"RSS {idle_mb:.0f} -> peak {peak_mb:.0f} MB"

        # 10,000 junk commands at QoS 0, then one signed ping
        junk = []
        for i in range(10_000):
            body = make_command(KEY, "flood", "g1", "open", {"reason": f"junk {i}"}, actor="x")
            if i % 2:
                del body["sig"]
            else:
                body["sig"] = "0" * 64
            junk.append((base + "open", json.dumps(body).encode()))
        counted = int(gate.status()["outbox"]["commands_refused_unverified"])
        raw_flood(mosquitto.port, junk)
        took = _ping(mosquitto.port, "flood", "through")
        assert took is not None, "the signed ping was dropped behind the junk"
        assert wait_until(
            lambda: int(gate.status()["outbox"]["commands_refused_unverified"]) >= counted + 10_000,
            60,
        )
        outbox = gate.status()["outbox"]
        assert outbox["commands_accepted"] == 2 and outbox["commands_queued"] == 0
        kinds = [k for k, _d in gate.events() if k == "mqtt_commands_refused"]
        assert 1 <= len(kinds) <= 3, "refusals are summarised, not recorded one by one"
        assert _audit(gate)[0] == audit_before[0] + 1, "only the accepted ping was audited"
        assert gate.verify().ok
    finally:
        rc = gate.stop()
    assert rc == 0, gate.log_tail()
    summary.record(
        "hostile MQTT commands (daemon)",
        faults=len(hostile) + 10_000,
        delivered=1,
        lost=0,
        seconds=time.monotonic() - t0,
        note=f"RSS +{peak_mb - idle_mb:.0f} MB, data +{grown // 1024} KB, 0 audit rows;"
        f" signed ping answered {took:.2f} s after 10,000 junk",
    )
