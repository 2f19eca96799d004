"""Persistent outbox: a message exists on disk before it exists on the wire.

Plant gates lose their uplink often and lose power sometimes, so the link
never holds an unsent message only in memory. ``enqueue`` commits the message
(and the gate's sequence number it got) to SQLite before anything is sent; a
row is deleted only after the broker's PUBACK. After a broker outage, a
``kill -9`` or a reboot, whatever is still in the table is sent again, in
``seq`` order.

Durability choice: WAL journal with ``synchronous=FULL`` by default. In WAL
mode NORMAL already survives a process crash (kill -9), but after a power cut
it may lose the last commits — and with them sequence numbers that were
already published, which would then be handed out twice. Gates lose power
for real, and enqueue rates are low (one passage per truck, telemetry every
few seconds), so an fsync per enqueue is cheap insurance. Deletes after
PUBACK are batched, so draining a backlog costs a few fsyncs per second, not
one per message. ``NORMAL`` stays available for boards with slow SD cards.

Bounds: count, bytes and age limits apply to telemetry (``durable=False``)
only. Ledger-derived messages are never dropped: they are the legal record,
and the ledger can re-derive them anyway, so running over the limit only
logs a warning.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edged.logs import get_logger

log = get_logger("mqtt")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL,
    durable INTEGER NOT NULL,
    created REAL NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_telemetry ON outbox (durable, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, seen REAL NOT NULL);
"""


@dataclass(frozen=True)
class Row:
    """One queued message, as the sender needs it."""

    seq: int
    topic: str
    payload: bytes
    retain: bool


@dataclass(frozen=True)
class DropReport:
    """Telemetry dropped since the last report, for the ``events`` message."""

    count: int
    first_seq: int
    last_seq: int
    reason: str


class Outbox:
    """SQLite-backed FIFO of outgoing messages, plus the command nonce cache.

    Thread-safe: the daemon enqueues from its threads while the link's sender
    and paho's network thread fetch and acknowledge.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_messages: int = 1_000_000,
        max_bytes: int = 256 * 1024 * 1024,
        max_age_s: float = 30 * 86400,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False, timeout=30
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
        self._db.executescript(_SCHEMA)
        count, total, max_seq = self._db.execute(
            "SELECT count(*), coalesce(sum(size), 0), coalesce(max(seq), 0) FROM outbox"
        ).fetchone()
        self._count = int(count)
        self._bytes = int(total)
        self._next_seq = max(self._meta("next_seq", 1), int(max_seq) + 1)
        self.dropped_total = self._meta("dropped_total", 0)
        self._drops: list[DropReport] = []
        self._last_full_warning = 0.0
        if self._count:
            log.info(
                "outbox_opened", path=str(self.path), backlog=self._count, next_seq=self._next_seq
            )

    def _rollback(self) -> None:
        # SQLite has already rolled back after some errors (SQLITE_FULL on COMMIT);
        # a second ROLLBACK would raise and hide the real error ("disk is full").
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    # -- meta ---------------------------------------------------------------
    def _meta(self, key: str, default: int) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return int(row[0]) if row else default

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    # -- enqueue ------------------------------------------------------------
    def enqueue(
        self,
        topic: str,
        build: Callable[[int], bytes],
        *,
        retain: bool = False,
        durable: bool = True,
    ) -> int:
        """Store one message; ``build(seq)`` renders it once its seq is known."""
        return self.enqueue_many([(topic, build, retain, durable)])[0]

    def enqueue_many(
        self, items: Iterable[tuple[str, Callable[[int], bytes], bool, bool]]
    ) -> list[int]:
        """Store several messages in one transaction (one fsync)."""
        now = self._clock()
        seqs: list[int] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = self._next_seq
                rows = []
                for topic, build, retain, durable in items:
                    payload = build(seq)
                    rows.append((seq, topic, payload, int(retain), int(durable), now, len(payload)))
                    seqs.append(seq)
                    self._count += 1
                    self._bytes += len(payload)
                    seq += 1
                self._db.executemany("INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                self._set_meta("next_seq", seq)
                if self._count > self.max_messages or self._bytes > self.max_bytes:
                    self._enforce_size()
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                self._reload_totals()
                raise
            self._next_seq = seq
        return seqs

    def _reload_totals(self) -> None:
        count, total = self._db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM outbox"
        ).fetchone()
        self._count, self._bytes = int(count), int(total)

    def _drop(self, where: str, params: tuple[object, ...], reason: str) -> int:
        row = self._db.execute(
            f"SELECT count(*), coalesce(sum(size), 0), min(seq), max(seq) FROM outbox "
            f"WHERE {where}",
            params,
        ).fetchone()
        n = int(row[0])
        if not n:
            return 0
        self._db.execute(f"DELETE FROM outbox WHERE {where}", params)
        self._count -= n
        self._bytes -= int(row[1])
        self.dropped_total += n
        self._set_meta("dropped_total", self.dropped_total)
        self._drops.append(DropReport(n, int(row[2]), int(row[3]), reason))
        return n

    def _enforce_size(self) -> None:
        """Drop the oldest telemetry until the outbox is back under its limits."""
        while self._count > self.max_messages or self._bytes > self.max_bytes:
            excess = max(self._count - self.max_messages, 1)
            if self._bytes > self.max_bytes:
                excess = max(excess, 100)
            cut = self._db.execute(
                "SELECT seq FROM outbox WHERE durable=0 ORDER BY seq LIMIT 1 OFFSET ?",
                (excess - 1,),
            ).fetchone()
            if cut is None:
                cut = self._db.execute("SELECT max(seq) FROM outbox WHERE durable=0").fetchone()
                if cut is None or cut[0] is None:
                    self._warn_full()
                    return
            self._drop("durable=0 AND seq<=?", (int(cut[0]),), "outbox_full")

    def _warn_full(self) -> None:
        now = self._clock()
        if now - self._last_full_warning >= 60:
            self._last_full_warning = now
            log.warning(
                "outbox_over_limit_durable",
                messages=self._count,
                bytes=self._bytes,
                max_messages=self.max_messages,
                max_bytes=self.max_bytes,
                hint="only ledger messages left, none dropped; check the broker link"
                " or raise outbox_max_messages / outbox_max_mb",
            )

    # -- maintenance --------------------------------------------------------
    def prune_age(self) -> int:
        """Drop telemetry older than ``max_age_s``; returns how many went."""
        cutoff = self._clock() - self.max_age_s
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                n = self._drop("durable=0 AND created<?", (cutoff,), "too_old")
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        return n

    def take_drop_report(self) -> DropReport | None:
        """Everything dropped since the last call, merged into one report."""
        with self._lock:
            drops, self._drops = self._drops, []
        if not drops:
            return None
        return DropReport(
            count=sum(d.count for d in drops),
            first_seq=min(d.first_seq for d in drops),
            last_seq=max(d.last_seq for d in drops),
            reason=",".join(sorted({d.reason for d in drops})),
        )

    # -- sending --------------------------------------------------------------
    def fetch(self, lo: int, hi: int | None, limit: int, skip: set[int]) -> list[Row]:
        """Oldest rows with ``lo <= seq < hi`` that are not in ``skip`` (in flight)."""
        if limit <= 0:
            return []
        hi_ = hi if hi is not None else 2**62
        with self._lock:
            cur = self._db.execute(
                "SELECT seq, topic, payload, retain FROM outbox WHERE seq>=? AND seq<? "
                "ORDER BY seq LIMIT ?",
                (lo, hi_, limit + len(skip)),
            )
            out = []
            for seq, topic, payload, retain in cur:
                if seq in skip:
                    continue
                out.append(Row(int(seq), topic, bytes(payload), bool(retain)))
                if len(out) >= limit:
                    break
            return out

    def ack(self, seqs: Iterable[int]) -> None:
        """Forget messages the broker acknowledged (one transaction per call)."""
        keys = list(seqs)
        if not keys:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for i in range(0, len(keys), 500):
                    chunk = keys[i : i + 500]
                    marks = ",".join("?" * len(chunk))
                    n, size = self._db.execute(
                        "SELECT count(*), coalesce(sum(size), 0) FROM outbox"
                        f" WHERE seq IN ({marks})",
                        chunk,
                    ).fetchone()
                    self._db.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", chunk)
                    self._count -= int(n)
                    self._bytes -= int(size)
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                self._reload_totals()
                raise

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "backlog": self._count,
                "backlog_bytes": self._bytes,
                "dropped": self.dropped_total,
                "next_seq": self._next_seq,
            }

    def __len__(self) -> int:
        return self._count

    # -- nonce cache (command replay protection) ------------------------------
    # Nonces are kept by the *signed* timestamp of their command, and forgotten
    # only once they lie more than ``horizon_s`` before the newest signed
    # timestamp ever accepted (``meta.nonce_high_ts``, persisted with them).
    # A command older than that mark is refused as too old. So "forgotten"
    # and "refusable" move together, on timestamps only the key holder can
    # write: stepping the gate's clock forward, pruning, and stepping it back
    # cannot make a used nonce acceptable again (it could when the cache was
    # pruned by the gate's wall clock).
    def claim_nonce(self, nonce: str, ts: int, horizon_s: float) -> str:
        """``"new"`` (remembered, durably), ``"seen"`` (replay) or ``"too_old"``."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                high = self._meta("nonce_high_ts", 0)
                if ts < high - horizon_s:
                    self._db.execute("COMMIT")
                    return "too_old"
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO nonces(nonce, seen) VALUES(?, ?)", (nonce, ts)
                )
                if cur.rowcount == 0:
                    self._db.execute("COMMIT")
                    return "seen"
                if ts > high:
                    self._set_meta("nonce_high_ts", int(ts))
                    self._db.execute("DELETE FROM nonces WHERE seen<?", (ts - horizon_s,))
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            return "new"

    def nonce_status(self, nonce: str, ts: int, horizon_s: float) -> str:
        """What ``claim_nonce`` would answer, without claiming: a read, for the arrival check."""
        with self._lock:
            if ts < self._meta("nonce_high_ts", 0) - horizon_s:
                return "too_old"
            row = self._db.execute("SELECT 1 FROM nonces WHERE nonce=?", (nonce,)).fetchone()
            return "seen" if row else "new"

    def nonce_high_ts(self) -> int:
        """The newest signed timestamp of an accepted command (0: none yet)."""
        with self._lock:
            return self._meta("nonce_high_ts", 0)

    def nonces_kept(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM nonces").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
