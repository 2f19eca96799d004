#!/usr/bin/env python3
"""A reference backend for edged gates: the MQTT contract (docs/MQTT.md) as running code.

    python contrib/edged_consumer.py --host BROKER --site SITE --key SITE_KEY \\
        --db backend.db --archive attestations/

It subscribes to every topic of a site's gates with a persistent session and:

* drops duplicates by the envelope ``id`` (QoS 1 delivers some twice);
* writes each passage into the SQLite table ``passages``, once per
  ``(site, gate, ledger_seq)``, and reports a row that comes again with a
  different hash;
* tracks each gate's message ``seq`` and reports holes that stay open past a
  grace period (telemetry the gate reports as dropped is not a hole);
* finds ledger rows it lacks (between passages, or up to the ``ledger/head``
  the gate publishes) and asks the gate to ``resend`` them with a signed
  command, again every ``--resend-every-s`` until they arrive;
* appends every chain-head attestation to ``<archive>/<site>-<gate>.jsonl``,
  the file ``edged ledger verify --attestation`` reads, and reports a broken
  chain (a missing ``n``, a ``prev`` that does not match, a fork).

It needs Python 3.11 and paho-mqtt 2, nothing of edged: copy it and change
what your backend needs (another database, alarms instead of log lines).
Gaps go to the log and to the table ``gaps``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger("edged_consumer")

MAX_RESEND = 100_000  # rows one resend command may ask for
UNSEQUENCED = ("availability", "probe")  # envelope types outside the seq sequence


# -- signed commands (docs/MQTT.md, Signature) ------------------------------------------------


def signed_command(
    key: str,
    site: str,
    gate: str,
    name: str,
    params: dict[str, Any],
    actor: str,
    *,
    ts: int | None = None,
    nonce: str | None = None,
    cmd_id: str | None = None,
) -> dict[str, Any]:
    """A command the gate accepts: HMAC-SHA256 over the eight-line canonical string."""
    ts = int(time.time()) if ts is None else ts
    nonce = nonce or secrets.token_hex(16)
    body = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = "\n".join(["edged-cmd-v1", site, gate, name, str(ts), nonce, actor, body])
    sig = hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()
    return {
        "id": cmd_id or str(uuid.uuid4()),
        "ts": ts,
        "nonce": nonce,
        "actor": actor,
        "params": params,
        "sig": sig,
    }


# -- gap bookkeeping (pure) ---------------------------------------------------------------------


def ranges(numbers: list[int]) -> list[tuple[int, int]]:
    """Sorted numbers as (first, last) runs: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for n in sorted(numbers):
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


@dataclass
class SeqTracker:
    """Which numbers of one sequence have been seen, and which holes stayed open too long.

    ``floor``: every number up to it is accounted for; ``top``: the highest
    known to exist. A hole (a number between them not seen) is reported once
    it is older than ``grace_s``: after an outage the gate's backlog drains
    beside live messages, so holes open and close for a while. ``explain``
    accounts for numbers that will never come (telemetry the gate dropped).
    """

    grace_s: float
    floor: int | None = None  # None: nothing seen yet, so nothing is missing either
    top: int = 0
    above: set[int] = field(default_factory=set)  # seen, above the floor
    opened: dict[int, float] = field(default_factory=dict)  # hole -> when first noticed

    def start_at(self, first: int) -> None:
        """Want the sequence from ``first`` on (default: from the first number seen)."""
        if self.floor is None:
            self.floor = self.top = first - 1

    def see(self, n: int, now: float) -> bool:
        """Record ``n``; False if it was already accounted for (a duplicate, or older)."""
        self.start_at(n)
        assert self.floor is not None
        if n <= self.floor or n in self.above:
            return False
        self.above.add(n)
        self.opened.pop(n, None)
        self._extend(n - 1, now)
        self.top = max(self.top, n)
        self._advance()
        return True

    def expect_up_to(self, n: int, now: float) -> None:
        """Numbers up to ``n`` exist (a ledger head says so): the missing ones are holes."""
        if self.floor is not None:
            self._extend(n, now)

    def explain(self, first: int, last: int) -> None:
        """Numbers ``first..last`` will never come: no hole."""
        if self.floor is None:
            return
        for n in range(max(first, self.floor + 1), last + 1):
            self.above.add(n)
            self.opened.pop(n, None)
        self.top = max(self.top, last)
        self._advance()

    def _extend(self, upto: int, now: float) -> None:
        """Numbers above ``top`` up to ``upto`` that were not seen are holes from ``now``."""
        for hole in range(self.top + 1, upto + 1):
            if hole not in self.above:
                self.opened.setdefault(hole, now)
        self.top = max(self.top, upto)

    def _advance(self) -> None:
        assert self.floor is not None
        while self.floor + 1 in self.above:
            self.floor += 1
            self.above.discard(self.floor)

    def holes(self) -> list[int]:
        return sorted(self.opened)

    def overdue(self, now: float) -> list[int]:
        """Holes open for longer than the grace period."""
        return sorted(n for n, t in self.opened.items() if now - t >= self.grace_s)


# -- storage ----------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    id TEXT PRIMARY KEY, site TEXT, gate TEXT, seq INTEGER, topic TEXT, received REAL);
CREATE TABLE IF NOT EXISTS passages (
    site TEXT NOT NULL, gate TEXT NOT NULL, ledger_seq INTEGER NOT NULL,
    event_id TEXT, time TEXT, lane TEXT, direction TEXT, plate TEXT, plate_colour TEXT,
    decision TEXT, reason_code TEXT, hash TEXT NOT NULL, fields TEXT NOT NULL,
    received REAL NOT NULL, PRIMARY KEY (site, gate, ledger_seq));
CREATE TABLE IF NOT EXISTS attestations (
    site TEXT NOT NULL, gate TEXT NOT NULL, n INTEGER NOT NULL, digest TEXT NOT NULL,
    prev TEXT, time TEXT, PRIMARY KEY (site, gate, n));
CREATE TABLE IF NOT EXISTS gaps (
    site TEXT, gate TEXT, kind TEXT, first INTEGER, last INTEGER, noticed REAL,
    resend_asked REAL, closed REAL);
"""


class Store:
    """The backend's SQLite database; one connection, used under a lock."""

    def __init__(self, path: str | Path) -> None:
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)
        self.lock = threading.Lock()

    def first_time(self, env: dict[str, Any], topic: str) -> bool:
        """Remember the envelope's id; False if it was seen before (a QoS 1 duplicate)."""
        with self.lock:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO seen VALUES (?, ?, ?, ?, ?, ?)",
                (env["id"], env["site"], env["gate"], env["seq"], topic, time.time()),
            )
            return cur.rowcount == 1

    def add_passage(self, site: str, gate: str, p: dict[str, Any]) -> str | None:
        """Insert the row once; None if new or the same, else the hash already held."""
        with self.lock:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO passages VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    site,
                    gate,
                    p["ledger_seq"],
                    p.get("event_id"),
                    p.get("time"),
                    p.get("lane"),
                    p.get("direction"),
                    p.get("plate"),
                    p.get("plate_colour"),
                    p.get("decision"),
                    p.get("reason_code"),
                    p["hash"],
                    json.dumps(p, ensure_ascii=False, sort_keys=True),
                    time.time(),
                ),
            )
            if cur.rowcount == 1:
                return None
            (held,) = self.db.execute(
                "SELECT hash FROM passages WHERE site=? AND gate=? AND ledger_seq=?",
                (site, gate, p["ledger_seq"]),
            ).fetchone()
            return None if held == p["hash"] else held

    def ledger_seqs(self, site: str, gate: str) -> list[int]:
        with self.lock:
            rows = self.db.execute(
                "SELECT ledger_seq FROM passages WHERE site=? AND gate=? ORDER BY ledger_seq",
                (site, gate),
            )
            return [r[0] for r in rows]

    def attestation(self, site: str, gate: str, n: int) -> tuple[str, str | None] | None:
        with self.lock:
            row = self.db.execute(
                "SELECT digest, prev FROM attestations WHERE site=? AND gate=? AND n=?",
                (site, gate, n),
            ).fetchone()
            return None if row is None else (row[0], row[1])

    def add_attestation(self, site: str, gate: str, n: int, digest: str, body: dict) -> None:
        with self.lock:
            self.db.execute(
                "INSERT OR IGNORE INTO attestations VALUES (?,?,?,?,?,?)",
                (site, gate, n, digest, body.get("prev"), body.get("time")),
            )

    def gap(self, site: str, gate: str, kind: str, first: int, last: int, **cols: float) -> None:
        """Open a gap row, or update the open one of the same range."""
        with self.lock:
            row = self.db.execute(
                "SELECT rowid FROM gaps WHERE site=? AND gate=? AND kind=? AND first=? AND last=?"
                " AND closed IS NULL",
                (site, gate, kind, first, last),
            ).fetchone()
            if row is None:
                self.db.execute(
                    "INSERT INTO gaps VALUES (?,?,?,?,?,?,?,?)",
                    (site, gate, kind, first, last, time.time(), cols.get("resend_asked"), None),
                )
            elif cols:
                sets = ", ".join(f"{k}=?" for k in cols)
                self.db.execute(f"UPDATE gaps SET {sets} WHERE rowid=?", (*cols.values(), row[0]))

    def close_gaps(self, site: str, gate: str, kind: str, open_holes: set[int]) -> None:
        """Close the gaps none of whose numbers is still missing."""
        with self.lock:
            rows = self.db.execute(
                "SELECT rowid, first, last FROM gaps WHERE site=? AND gate=? AND kind=?"
                " AND closed IS NULL",
                (site, gate, kind),
            ).fetchall()
            for rowid, first, last in rows:
                if not any(first <= n <= last for n in open_holes):
                    self.db.execute("UPDATE gaps SET closed=? WHERE rowid=?", (time.time(), rowid))
                    log.info("gap closed: %s/%s %s %d..%d", site, gate, kind, first, last)

    def gaps(self, open_only: bool = False) -> list[dict[str, Any]]:
        with self.lock:
            cur = self.db.execute(
                "SELECT site, gate, kind, first, last, noticed, resend_asked, closed FROM gaps"
                + (" WHERE closed IS NULL" if open_only else "")
            )
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def close(self) -> None:
        with self.lock:
            self.db.close()


# -- the consumer -----------------------------------------------------------------------------


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 1883
    prefix: str = "edged"
    site: str = "+"  # one site, or + for every site on the broker
    key: str = ""  # the site's hmac_key, to sign resend commands; empty: never ask
    db: str = "edged-backend.db"
    archive: str = "attestations"
    client_id: str = "edged-consumer"
    actor: str = "edged-consumer"  # who asks for resends, in the gate's audit log
    grace_s: float = 30.0  # how long a hole may stay open before it is a gap
    resend_every_s: float = 60.0  # ask again for rows that still have not come
    backfill_from: int | None = None  # ledger_seq to want rows from (default: the first seen)
    username: str | None = None
    password: str | None = None


@dataclass
class Gate:
    """What the consumer knows of one gate."""

    messages: SeqTracker  # the envelope seq
    rows: SeqTracker  # the ledger_seq of passages
    backlog: int = 0  # the gate's outbox backlog, from its latest status
    backlog_at: float = float("-inf")  # when that status arrived
    reported: set[tuple[int, int]] = field(default_factory=set)  # seq ranges reported
    asked: dict[tuple[int, int], float] = field(default_factory=dict)  # ledger range -> when


class Consumer:
    """Subscribes, stores, watches for gaps, asks for resends, archives attestations."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.s = settings
        self.clock = clock
        self.store = Store(settings.db)
        self.archive = Path(settings.archive)
        self.archive.mkdir(parents=True, exist_ok=True)
        self.gates: dict[tuple[str, str], Gate] = {}
        self.lock = threading.RLock()
        self.replies: list[dict[str, Any]] = []  # replies to the resends it asked for
        self._asked_ids: set[str] = set()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv311,
            clean_session=False,  # the broker keeps what arrives while this is away
        )
        if settings.username:
            self.client.username_pw_set(settings.username, settings.password)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    # -- running -----------------------------------------------------------------------------
    def start(self) -> None:
        self.client.connect_async(self.s.host, self.s.port, 30)
        self.client.loop_start()
        self._ticker = threading.Thread(target=self._tick_loop, name="gaps", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(5)
        self.client.disconnect()
        self.client.loop_stop()
        self.store.close()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.warning("broker refused the connection: %s", rc)
            return
        client.subscribe(f"{self.s.prefix}/{self.s.site}/+/#", qos=1)
        log.info("subscribed to %s/%s/+/#", self.s.prefix, self.s.site)

    def _tick_loop(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.tick()
            except Exception:  # a backend keeps running; the log says what broke
                log.exception("gap check failed")

    # -- messages ----------------------------------------------------------------------------
    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.handle(msg.topic, bytes(msg.payload), bool(msg.retain))
        except Exception:
            log.exception("message on %s not handled", msg.topic)

    def handle(self, topic: str, raw: bytes, retained: bool = False) -> None:
        """One message as it arrived on ``topic``."""
        rest = topic[len(self.s.prefix) + 1 :].split("/")
        if len(rest) < 3 or (rest[2] == "cmd" and rest[-1] != "reply"):
            return  # commands (ours, or another backend's): not the gate's messages
        try:
            env = json.loads(raw.decode("utf-8"))
        except ValueError:
            log.warning("%s: not JSON, dropped", topic)
            return
        if not isinstance(env, dict) or env.get("v") != 1 or "id" not in env:
            log.warning("%s: not an edged v1 envelope, dropped", topic)
            return
        if not self.store.first_time(env, topic):
            return  # a duplicate (QoS 1): already handled
        site, gate, kind = env["site"], env["gate"], env["type"]
        now = self.clock()
        with self.lock:
            g = self._gate(site, gate)
            if kind not in UNSEQUENCED and not (retained and g.messages.floor is None):
                # a retained message delivered on subscribe may be old: it does not start
                # the count, but once counting it is one of the sequence like any other
                g.messages.see(env["seq"], now)
            payload = env.get("payload") or {}
            if kind == "passage":
                self._passage(site, gate, g, payload, now)
            elif kind == "ledger_head":
                head = payload.get("passages", {}).get("seq")
                if isinstance(head, int):
                    g.rows.expect_up_to(head, now)
            elif kind == "attestation":
                self._attestation(site, gate, env)
            elif kind == "status":
                g.backlog = (payload.get("outbox") or {}).get("backlog") or 0
                g.backlog_at = now
            elif kind == "events" and payload.get("kind") == "telemetry_dropped":
                g.messages.explain(payload["first_seq"], payload["last_seq"])
            elif kind == "reply" and payload.get("cmd_id") in self._asked_ids:
                self.replies.append(payload)
                log.info("resend reply from %s/%s: %s", site, gate, payload)

    def _gate(self, site: str, gate: str) -> Gate:
        g = self.gates.get((site, gate))
        if g is None:
            g = Gate(SeqTracker(self.s.grace_s), SeqTracker(self.s.grace_s))
            if self.s.backfill_from is not None:
                g.rows.start_at(self.s.backfill_from)
            for seq in self.store.ledger_seqs(site, gate):  # rows held from earlier runs
                g.rows.see(seq, self.clock())
            self.gates[(site, gate)] = g
        return g

    def _passage(self, site: str, gate: str, g: Gate, p: dict[str, Any], now: float) -> None:
        held = self.store.add_passage(site, gate, p)
        if held is not None:
            log.error(
                "%s/%s ledger_seq %s came again with hash %s, we hold %s: a rebuilt or"
                " restored ledger; check the box (edged ledger verify --attestation)",
                site,
                gate,
                p["ledger_seq"],
                p["hash"],
                held,
            )
        g.rows.see(p["ledger_seq"], now)

    def _attestation(self, site: str, gate: str, env: dict[str, Any]) -> None:
        msg = env["payload"]
        n, text = msg["n"], msg["payload"]
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        body = json.loads(text)
        held = self.store.attestation(site, gate, n)
        if held is not None:
            if held[0] != digest:
                log.error("%s/%s attestation %d: a second, different one (a fork)", site, gate, n)
            return
        before = self.store.attestation(site, gate, n - 1)
        if before is not None and body.get("prev") != before[0]:
            log.error(
                "%s/%s attestation %d does not follow %d (prev differs)", site, gate, n, n - 1
            )
        with (self.archive / f"{site}-{gate}.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(msg, ensure_ascii=False) + "\n")
            fh.flush()
        self.store.add_attestation(site, gate, n, digest, body)

    # -- gaps --------------------------------------------------------------------------------
    def tick(self) -> None:
        """Report holes past their grace; ask for missing ledger rows."""
        now = self.clock()
        with self.lock:
            items = list(self.gates.items())
        for (site, gate), g in items:
            with self.lock:
                late_msgs = g.messages.overdue(now)
                late_rows = g.rows.overdue(now)
                # a gate still draining its backlog (a recent status says so) may yet fill
                # the holes: wait for it before calling anything lost
                draining = g.backlog > 0 and now - g.backlog_at < self.s.grace_s
                open_msgs, open_rows = set(g.messages.holes()), set(g.rows.holes())
            self.store.close_gaps(site, gate, "seq", open_msgs)
            self.store.close_gaps(site, gate, "ledger_seq", open_rows)
            if draining:
                continue
            for first, last in ranges(late_msgs):
                if (first, last) not in g.reported:
                    g.reported.add((first, last))
                    self.store.gap(site, gate, "seq", first, last)
                    log.warning("%s/%s messages seq %d..%d missing", site, gate, first, last)
            for first, last in ranges(late_rows):
                for lo in range(first, last + 1, MAX_RESEND):
                    self._ask(site, gate, g, lo, min(last, lo + MAX_RESEND - 1), now)

    def _ask(self, site: str, gate: str, g: Gate, first: int, last: int, now: float) -> None:
        when = g.asked.get((first, last))
        if when is not None and now - when < self.s.resend_every_s:
            return
        g.asked[(first, last)] = now
        log.warning("%s/%s ledger rows %d..%d missing", site, gate, first, last)
        if not self.s.key:
            self.store.gap(site, gate, "ledger_seq", first, last)
            return
        cmd = signed_command(
            self.s.key,
            site,
            gate,
            "resend",
            {"from_seq": first, "to_seq": last},
            self.s.actor,
        )
        self._asked_ids.add(cmd["id"])
        self.client.publish(
            f"{self.s.prefix}/{site}/{gate}/cmd/resend", json.dumps(cmd), qos=1, retain=False
        )
        self.store.gap(site, gate, "ledger_seq", first, last, resend_asked=time.time())
        log.info("asked %s/%s to resend ledger rows %d..%d", site, gate, first, last)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--prefix", default="edged")
    p.add_argument("--site", default="+", help="one site id, or + for all (default)")
    p.add_argument("--key", default="", help="the site's hmac_key; without it, no resends")
    p.add_argument("--db", default="edged-backend.db")
    p.add_argument("--archive", default="attestations", help="folder of attestation archives")
    p.add_argument("--client-id", default="edged-consumer")
    p.add_argument("--grace-s", type=float, default=30.0)
    p.add_argument("--resend-every-s", type=float, default=60.0)
    p.add_argument("--backfill-from", type=int, help="want ledger rows from this seq (e.g. 1)")
    p.add_argument("--username")
    p.add_argument("--password")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    consumer = Consumer(
        Settings(
            a.host,
            a.port,
            a.prefix,
            a.site,
            a.key,
            a.db,
            a.archive,
            a.client_id,
            grace_s=a.grace_s,
            resend_every_s=a.resend_every_s,
            backfill_from=a.backfill_from,
            username=a.username,
            password=a.password,
        )
    )
    consumer.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
