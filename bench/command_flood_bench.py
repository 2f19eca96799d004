"""What refused commands cost a running gate: memory, audit log, event log, outbox.

    python bench/command_flood_bench.py [--commands N] [--quick]

Runs ``edged run`` (no camera, mock GPIO) against a local mosquitto and sends
N refused commands per round (default 1,000; --quick 200) the way a hostile
publisher would, straight onto the wire at QoS 0: unsigned opens, wrong keys,
broken JSON, opens over their size cap, replays of a signed command, and one
in a hundred a 9 MB ``registry_replace`` with a 5 MB id and 2 MB actor and
nonce. Then 10,000 junk commands and one signed ``ping``.

Prints the daemon's peak RSS over its idle RSS, and the growth of the chained
audit log, the event log and the outbox per 1,000 refused commands; the
baseline in the same run is one accepted, signed ``ping`` (an audit row is
what a legitimate command costs). Targets: no audit growth, bounded memory.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.mqtt_bench import start_broker
from bench.report import emit
from edged.app.control import request
from edged.mqtt.commands import make_command

REPO = Path(__file__).resolve().parent.parent
KEY = "bench-site-key-0123456789abcdef"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def raw_publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    """MQTT 3.1.1 CONNECT, then QoS 0 PUBLISH packets back to back: a publisher in a hurry."""
    import socket

    body = _str("MQTT") + bytes([4, 2]) + (60).to_bytes(2, "big") + _str("bench-flood")
    out = bytearray(b"\x10" + _varint(len(body)) + body)
    for topic, payload in messages:
        var = _str(topic) + payload
        out += b"\x30" + _varint(len(var)) + var
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(out[: len(body) + 2])
        sock.recv(4)
        sock.sendall(out[len(body) + 2 :] + b"\xe0\x00")


def refused(n: int, replayed: bytes) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for i in range(n):
        kind = i % 100
        if kind == 0:
            giant = {
                "id": "i" * 5_000_000,
                "ts": int(time.time()),
                "nonce": "n" * 2_000_000,
                "actor": "a" * 2_000_000,
                "params": {"version": "1", "vehicles": []},
            }
            out.append(("registry_replace", json.dumps(giant).encode()))
        elif kind < 20:
            body = make_command(KEY, "bench", "g1", "open", {"reason": "junk"}, actor="x")
            del body["sig"]
            out.append(("open", json.dumps(body).encode()))
        elif kind < 40:
            body = make_command("k" * 20, "bench", "g1", "open", {"reason": "junk"}, actor="x")
            out.append(("open", json.dumps(body).encode()))
        elif kind < 60:
            out.append(("open", b"{broken" + str(i).encode()))
        elif kind < 80:
            out.append(("open", b"{" + b" " * 20_000 + b"}"))
        else:
            out.append(("ping", replayed))
    return [(f"edged/bench/g1/cmd/{name}", raw) for name, raw in out]


class Gate:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.data = root / "data"
        self.config = root / "edged.toml"
        self.config.write_text(
            f"""
[site]
id = "bench"
gate_id = "g1"
[daemon]
data_dir = "{self.data}"
[logging]
components = {{ mqtt = "error", control = "warning" }}
[camera]
type = "none"
[lpr]
model_dir = "{root / "no-models"}"
[mqtt]
host = "127.0.0.1"
port = {port}
hmac_key = "{KEY}"
outbox_sync = "NORMAL"
""",
            encoding="utf-8",
        )
        env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONPATH": str(REPO)}
        self.log = (root / "edged.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edged", "--config", str(self.config), "run"],
            cwd=root,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.socket = self.data / "state" / "control.sock"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                st = request(self.socket, {"cmd": "status"}, timeout=5)
                if (st.get("outbox") or {}).get("listening"):
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise SystemExit("edged did not start listening for commands")

    def rss(self, field: str = "VmRSS") -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        return 0.0

    def sizes(self) -> dict[str, int]:
        conn = sqlite3.connect(self.data / "ledger.db", timeout=30)
        audit = conn.execute("SELECT count(*), coalesce(sum(length(fields)), 0) FROM audit")
        a_rows, a_bytes = audit.fetchone()
        (events,) = conn.execute("SELECT count(*) FROM events").fetchone()
        conn.close()
        outbox = int(self.stats().get("next_seq", 0))  # messages ever queued to the outbox
        return {"audit_rows": a_rows, "audit_bytes": a_bytes, "events": events, "outbox": outbox}

    def stats(self) -> dict[str, object]:
        return request(self.socket, {"cmd": "status"}, timeout=10).get("outbox") or {}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def ping(port: int, echo: str, retry_s: float = 2.0, tries: int = 15) -> tuple[float, int]:
    """Send a signed ping as a backend does, again (new nonce) every ``retry_s`` without a
    reply; returns seconds from the first send to a reply, and how many were sent."""
    got: list[float] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.on_message = lambda _c, _u, m: echo.encode() in m.payload and got.append(time.monotonic())
    ready: list[bool] = []
    sub.on_subscribe = lambda *_a: ready.append(True)
    sub.connect("127.0.0.1", port)
    sub.subscribe("edged/bench/g1/cmd/ping/reply", qos=1)
    sub.loop_start()
    while not ready:
        time.sleep(0.01)
    t0 = time.monotonic()
    sent = 0
    try:
        while not got and sent < tries:
            cmd = make_command(KEY, "bench", "g1", "ping", {"echo": echo}, actor="bench")
            sub.publish("edged/bench/g1/cmd/ping", json.dumps(cmd), qos=1)
            sent += 1
            deadline = time.monotonic() + retry_s
            while not got and time.monotonic() < deadline:
                time.sleep(0.005)
    finally:
        sub.loop_stop()
        sub.disconnect()
    return ((got[0] - t0) if got else float("inf")), sent


def wait_refused(gate: Gate, total: int, timeout: float = 300) -> int:
    """Until the gate counted ``total`` refusals, or its count stopped moving for 3 s
    (a broker drops QoS 0 messages a slow subscriber cannot take); returns the count."""
    deadline = time.monotonic() + timeout
    last, still = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = int(gate.stats().get("commands_refused_unverified", 0))
        if count >= total:
            return count
        if count != last:
            last, still = count, time.monotonic()
        elif time.monotonic() - still > 3:
            return count
        time.sleep(0.2)
    raise SystemExit(f"the gate counted {gate.stats()} refusals, expected {total}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commands", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="200 refused commands")
    a = ap.parse_args()
    n = a.commands or (200 if a.quick else 1000)
    with tempfile.TemporaryDirectory(prefix="edged-flood-bench-") as tmp:
        broker, port = start_broker(Path(tmp))
        gate = Gate(Path(tmp), port)
        try:
            ping(port, "warm-up")
            before = gate.sizes()
            ping(port, "baseline")  # one accepted command: the baseline cost
            base = gate.sizes()
            audit_per_accepted = base["audit_bytes"] - before["audit_bytes"]
            idle = gate.rss()
            replay = make_command(KEY, "bench", "g1", "ping", {"echo": "once"}, actor="bench")
            raw_publish(port, [("edged/bench/g1/cmd/ping", json.dumps(replay).encode())])
            time.sleep(0.5)
            counted0 = int(gate.stats().get("commands_refused_unverified", 0))
            start = gate.sizes()
            raw_publish(port, refused(n, json.dumps(replay).encode()))
            got = wait_refused(gate, counted0 + n) - counted0
            if got < n:
                print(f"the broker dropped {n - got} of {n} QoS 0 commands; figures per arrived")
                n = got
            after = gate.sizes()
            peak = gate.rss("VmHWM")
            per = 1000 / max(n, 1)
            audit_growth = (after["audit_bytes"] - start["audit_bytes"]) * per
            print(
                f"{n} refused commands: audit +{after['audit_rows'] - start['audit_rows']} rows"
                f" (+{after['audit_bytes'] - start['audit_bytes']} bytes), events"
                f" +{after['events'] - start['events']}, outbox +{after['outbox'] - start['outbox']}"
                f" messages; RSS idle {idle:.0f} MB, peak {peak:.0f} MB"
            )
            print(f"baseline: one accepted signed ping adds {audit_per_accepted} bytes of audit")
            junk = refused(10_000, json.dumps(replay).encode())
            junk = [m for m in junk if len(m[1]) < 100_000]  # the flood: small messages
            counted1 = int(gate.stats().get("commands_refused_unverified", 0))
            raw_publish(port, junk[:10_000])
            latency, sent = ping(port, "through-the-flood")
            arrived = wait_refused(gate, counted1 + len(junk[:10_000])) - counted1
            print(
                f"signed ping answered {latency:.2f} s after {len(junk[:10_000])} junk commands"
                f" at QoS 0, {sent} sent ({arrived} junk reached the gate, the broker dropped the"
                " rest: its queue per subscriber is full during the flood, and it may drop a"
                " signed command too; the backend sends it again after 2 s without a reply)"
            )
            emit("audit growth per 1,000 refused commands", audit_growth, "bytes", "<= 0")
            emit(
                "audit growth per 1,000 refused / per accepted command",
                audit_growth / max(audit_per_accepted, 1),
                "x",
            )
            # summaries and replies are limited per minute, not per command: whole round
            emit(
                f"event log rows for {n} refused commands",
                after["events"] - start["events"],
                "rows",
            )
            emit(
                f"outbox messages for {n} refused commands",
                after["outbox"] - start["outbox"],
                "messages",
                "<= 70",
            )
            emit("daemon RSS peak over idle, refused commands", peak - idle, "MB", "<= 64")
            emit("daemon RSS peak / idle", peak / max(idle, 1), "x")
            emit(
                "signed ping reply during a 10,000-message flood (backend resends after 2 s)",
                latency,
                "s",
                "<= 1",
            )
            emit("signed pings sent until one was answered", sent, "pings")
        finally:
            gate.stop()
            broker.terminate()
            broker.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
