"""Test helpers for the MQTT link: a persistent broker and a collecting subscriber."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edged.mqtt.config import MqttConfig
from tests.broker import Mosquitto

KEY = "test-site-key-0123456789"


class PersistentMosquitto(Mosquitto):
    """Mosquitto that keeps subscriber sessions across a restart.

    The collecting subscriber must not miss what the gate sends in the few
    milliseconds before it has reconnected itself, so its session (and the
    messages queued for it) survives the broker's stop/start like a real
    production broker with persistence would.
    """

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir=workdir)
        # mosquitto started as root drops to its own user, which cannot enter
        # pytest's private tmp folders: keep its database in a folder of its own.
        self.dbdir = Path(tempfile.mkdtemp(prefix="edged-mosq-db-"))
        self.dbdir.chmod(0o777)
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.dbdir}/\n"
            "max_queued_messages 0\n"
            "log_type error\n"
            "log_dest stderr\n"
        )

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dbdir, ignore_errors=True)


class Collector:
    """A backend stand-in: subscribes to a filter and records every message."""

    def __init__(self, port: int, topic: str, *, client_id: str = "collector") -> None:
        self.messages: list[tuple[str, dict[str, Any] | bytes, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        self.client.reconnect_delay_set(1, 1)
        self.topic = topic
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError("collector could not subscribe")

    def _on_connect(self, client: mqtt.Client, *_a: Any) -> None:
        client.subscribe(self.topic, qos=1)
        self.subscribed.set()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            body: dict[str, Any] | bytes = json.loads(msg.payload)
        except ValueError:
            body = bytes(msg.payload)
        with self.lock:
            self.messages.append((msg.topic, body, bool(msg.retain)))

    def on(self, suffix: str) -> list[dict[str, Any]]:
        with self.lock:
            return [b for t, b, _r in self.messages if t.endswith(suffix) and isinstance(b, dict)]

    def wait_for(self, pred: Callable[[], bool], timeout: float) -> bool:
        return wait_until(pred, timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def link_config(port: int, **kw: Any) -> MqttConfig:
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "prefix": "edged",
        "reconnect_min_s": 1,
        "reconnect_max_s": 2,
        "keepalive_s": 10,
        "hmac_key": KEY,
        "outbox_sync": "NORMAL",
    }
    base.update(kw)
    return MqttConfig(**base)


def unique_in_order(bodies: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """First occurrence of each id, in arrival order, and the duplicate count."""
    seen: set[str] = set()
    out = []
    dups = 0
    for b in bodies:
        if b["id"] in seen:
            dups += 1
            continue
        seen.add(b["id"])
        out.append(b)
    return out, dups


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    data = text.encode("utf-8")
    return len(data).to_bytes(2, "big") + data


def raw_flood(port: int, messages: list[tuple[str, bytes]], client_id: str = "flood") -> float:
    """Publish ``messages`` at QoS 0 as fast as the socket takes them; returns seconds.

    A hostile publisher is not a polite Python client: it writes MQTT 3.1.1
    PUBLISH packets back to back (the bytes are the standard's, built here),
    so the flood reaches the broker in milliseconds and the test measures the
    gate, not the flooder.
    """
    import socket

    body = _utf8("MQTT") + bytes([4, 0x02]) + (60).to_bytes(2, "big") + _utf8(client_id)
    connect = b"\x10" + _remaining_length(len(body)) + body
    packets = bytearray()
    for topic, payload in messages:
        var = _utf8(topic) + payload
        packets += b"\x30" + _remaining_length(len(var)) + var
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(connect)
        connack = sock.recv(4)
        if connack[:1] != b"\x20" or connack[3:4] != b"\x00":
            raise RuntimeError(f"broker refused the flooder: {connack!r}")
        sock.sendall(bytes(packets))
        sock.sendall(b"\xe0\x00")  # DISCONNECT
    return time.monotonic() - t0
