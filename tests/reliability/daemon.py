"""Real ``edged run`` processes, a real broker and a backend subscriber, for fault scenarios.

The reliability suite judges the daemon as a plant runs it: a separate
process that is killed, starved of disk or cut off from its broker, and
whose promises (a passage acknowledged on the control socket, a ledger row
on disk) are checked afterwards from the outside. So nothing here reaches
into the daemon: passages go in through the control socket, as
``edged simulate passage`` sends them, and come out of the ledger file and
the MQTT broker.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edged.app.control import request
from edged.ledger.verify import VerifyResult, verify_db
from tests.broker import Mosquitto

REPO = Path(__file__).resolve().parents[2]
VEHICLES_CSV = REPO / "config" / "demo-vehicles.csv"
# Letters a Chinese plate may carry after the province (no I or O).
_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def persistent_broker(workdir: Path) -> Mosquitto:
    """A broker that keeps sessions and queued messages across its own restarts.

    A real backend subscribes with a persistent session on a broker that
    persists. Without that, a message the broker acknowledged to the gate
    and then lost in its own restart would count against edged.
    """
    broker = Mosquitto(workdir=workdir)
    text = broker.conf.read_text()
    # Started as root, mosquitto drops to its own user, which cannot write the
    # (0700) test folder: the store would fail silently and sessions vanish.
    user = "user root\n" if os.geteuid() == 0 else ""
    broker.conf.write_text(
        text.replace(
            "persistence false\n",
            f"persistence true\npersistence_location {broker.workdir}/\n{user}",
        )
    )
    return broker


def plate(n: int, province: str = "冀") -> str:
    """The n-th of a run of distinct, well-formed plates, so every passage is identifiable."""
    letter = _LETTERS[(n // 100_000) % len(_LETTERS)]
    return f"{province}{letter}{n % 100_000:05d}"


class Instance:
    """One gate daemon (``python -m edged run``) with its own config and data dir."""

    def __init__(
        self,
        root: Path,
        broker_port: int,
        *,
        site: str = "rel",
        gate: str = "g1",
        data_dir: Path | None = None,
        camera: str = 'source = "none"',
        model_dir: Path | None = None,
        ledger: str = "",
        extra: str = "",
    ) -> None:
        """``camera`` and ``ledger`` are extra TOML lines for those sections, ``extra``
        whole sections appended at the end; ``model_dir`` None means no models at all."""
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.site, self.gate = site, gate
        self.data_dir = data_dir or root / "data"
        self.config = root / "edged.toml"
        self.log_path = root / "edged.log"
        self.socket = self.data_dir / "state" / "control.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.startup_s: list[float] = []
        self._term_sent = False
        self.config.write_text(
            f"""
[site]
id = "{site}"
gate_id = "{gate}"
direction = "in"

[daemon]
data_dir = "{self.data_dir}"
heartbeat_seconds = 1.0
health_seconds = 30.0
stop_timeout_seconds = 15.0

[logging]
components = {{ mqtt = "warning", control = "warning", supervisor = "warning" }}

[camera]
{camera}

[lpr]
# with no camera: a folder without models, since such a lane must not need them
model_dir = "{model_dir or root / "no-models"}"

[rfid]
enabled = false

[gpio]
pulse_ms = 100

[policy]
unknown_action = "allow_flag"

[registry]
seed_csv = "{VEHICLES_CSV}"

[ledger]
db_path = "ledger.db"
images_dir = "images"
{ledger}

[mqtt]
host = "127.0.0.1"
port = {broker_port}
keepalive_s = 5
reconnect_min_s = 1
reconnect_max_s = 2
{extra}
""",
            encoding="utf-8",
        )

    # -- process ------------------------------------------------------------
    def start(self, ready_timeout: float = 60.0) -> float:
        """Start the daemon and wait until its control socket answers; returns seconds taken."""
        t0 = self.launch()
        self.wait_ready(ready_timeout)
        took = time.monotonic() - t0
        self.startup_s.append(took)
        return took

    def launch(self) -> float:
        """Start the process without waiting (fleets start several at once); returns its t0."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = {
            **os.environ,
            "GPIOZERO_PIN_FACTORY": "mock",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO),
        }
        for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(key, None)
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"---- start {self.starts + 1}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edged", "--config", str(self.config), "run"],
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        self._term_sent = False
        return t0

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is None or self.proc.poll() is not None:
                rc = None if self.proc is None else self.proc.returncode
                raise RuntimeError(f"edged exited ({rc}) before answering:\n{self.log_tail()}")
            try:
                reply = request(self.socket, {"cmd": "status"}, timeout=5)
                if reply.get("ok"):
                    return reply
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"edged did not answer in {timeout} s:\n{self.log_tail()}")
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed; what is on disk is all there is."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)  # a process in an fsync dies when the disk answers

    def terminate(self) -> None:
        """SIGTERM without waiting (``stop`` then collects the exit status).

        Once only, as systemd does: a second SIGTERM that lands while the
        interpreter is tearing down meets the default handler and reads as a crash.
        """
        if self.proc is not None and self.proc.poll() is None and not self._term_sent:
            self.proc.send_signal(signal.SIGTERM)
            self._term_sent = True

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait, as systemd stops the service; returns the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise
        return int(self.proc.returncode)

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    # -- control socket -------------------------------------------------------
    def passage(self, plate_text: str | None, timeout: float = 30.0) -> dict[str, Any]:
        """One simulated vehicle; the reply carries the ledger seq once the row is on disk."""
        return request(
            self.socket,
            {"cmd": "simulate_passage", "plate": plate_text, "rfid": []},
            timeout=timeout,
        )

    def status(self) -> dict[str, Any]:
        return request(self.socket, {"cmd": "status"}, timeout=10)

    def wait_outbox_empty(self, timeout: float = 60.0) -> dict[str, Any]:
        """Until the running daemon's outbox has no backlog left (all PUBACKed)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            box = st.get("outbox") or {}
            if box.get("connected") and box.get("backlog") == 0:
                return st
            if time.monotonic() > deadline:
                raise TimeoutError(f"outbox not drained in {timeout} s: {box}")
            time.sleep(0.2)

    # -- files ------------------------------------------------------------------
    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "ledger.db"

    def ledger_rows(self) -> list[tuple[int, dict[str, Any]]]:
        """Every passage row (seq, fields) as it stands on disk."""
        conn = sqlite3.connect(self.ledger_path, timeout=30)
        try:
            rows = conn.execute("SELECT seq, fields FROM passages ORDER BY seq").fetchall()
        finally:
            conn.close()
        return [(int(seq), json.loads(fields)) for seq, fields in rows]

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        conn = sqlite3.connect(self.ledger_path, timeout=30)
        try:
            rows = conn.execute("SELECT kind, details FROM events ORDER BY id").fetchall()
        finally:
            conn.close()
        return [(kind, json.loads(details)) for kind, details in rows]

    def verify(self, images: bool = False) -> VerifyResult:
        return verify_db(self.ledger_path, self.data_dir / "images" if images else None)


class Collector:
    """The backend: a persistent QoS 1 session that gathers passages by gate and event id."""

    def __init__(self, port: int, client_id: str = "reliability-backend") -> None:
        self.port = port
        self.seen: dict[tuple[str, str], set[str]] = {}
        self.messages = 0
        self.connects = 0
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        c.reconnect_delay_set(1, 2)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *_a: self._subscribed.set()
        c.on_message = self._on_message
        self.client = c

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if not rc.is_failure:
            self.connects += 1
            client.subscribe("edged/+/+/passage", qos=1)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        if body.get("type") != "passage":
            return
        event_id = body["payload"].get("event_id")
        with self._lock:
            self.messages += 1
            self.seen.setdefault((body["site"], body["gate"]), set()).add(event_id)

    def start(self, timeout: float = 10.0) -> Collector:
        self.client.connect("127.0.0.1", self.port, keepalive=5)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            raise TimeoutError("collector did not subscribe")
        return self

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def ids(self, site: str, gate: str) -> set[str]:
        with self._lock:
            return set(self.seen.get((site, gate), set()))

    def missing(
        self, expected: dict[tuple[str, str], Iterable[str]]
    ) -> dict[tuple[str, str], set[str]]:
        with self._lock:
            out = {k: set(v) - self.seen.get(k, set()) for k, v in expected.items()}
        return {k: v for k, v in out.items() if v}

    def wait_for(
        self, expected: dict[tuple[str, str], Iterable[str]], timeout: float = 60.0
    ) -> dict[tuple[str, str], set[str]]:
        """Until every expected event id has arrived, or the timeout; returns what is missing."""
        want = {k: set(v) for k, v in expected.items()}
        deadline = time.monotonic() + timeout
        while True:
            missing = self.missing(want)
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.2)


def event_ids(rows: list[tuple[int, dict[str, Any]]]) -> list[str]:
    return [fields["event_id"] for _seq, fields in rows]
