"""The ledger database: SQLite through peewee, WAL, every acknowledged row on disk.

Durability: ``journal_mode=WAL`` with ``synchronous=FULL``. In WAL mode
``NORMAL`` only syncs at checkpoints, so a power cut can roll back the last
commits even though ``append_passage`` had returned; ``FULL`` fsyncs the WAL
on every commit, so a row whose append returned survives a power cut. The
cost is one fsync per row (a few ms on an SD card), which a gate that sees
a truck every few seconds can afford.

One writer: this object owns its connection and serialises appends with a
lock; each append runs in ``BEGIN IMMEDIATE`` and reads the chain head inside
that transaction, so a short-lived second process (``edged export``, an
operator's correction) that opens its own store still extends the chain
correctly — SQLite's lock orders them.

The columns that queries filter on (time, plate, direction, ...) are
*generated* from the hashed JSON, never stored beside it: editing what a
query shows means editing the hashed text, which ``verify`` catches.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import peewee

from edged import sitetime
from edged.ledger.chain import GENESIS_HASH, canonical, hash_bytes
from edged.ledger.corrections import effective
from edged.ledger.record import PassageRecord
from edged.logs import get_logger

log = get_logger("ledger")

SCHEMA_VERSION = 2
PURGE_ACTION = "images_purged"  # audit action of a retention purge (verify relies on it)
PURGE_CHUNK = 500  # images per purge audit entry
EVENTS_KEEP_MIN = 100
CHAINS = ("passages", "audit")
SEVERITIES = ("info", "warning", "error", "critical")

_DDL = [
    """CREATE TABLE IF NOT EXISTS passages (
        seq INTEGER PRIMARY KEY,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        fields TEXT NOT NULL,
        ts REAL GENERATED ALWAYS AS
            (round((julianday(json_extract(fields, '$.time')) - 2440587.5) * 86400.0, 3)) VIRTUAL,
        plate TEXT GENERATED ALWAYS AS (json_extract(fields, '$.plate')) VIRTUAL,
        direction TEXT GENERATED ALWAYS AS (json_extract(fields, '$.direction')) VIRTUAL,
        decision TEXT GENERATED ALWAYS AS (json_extract(fields, '$.decision')) VIRTUAL,
        emission_stage TEXT GENERATED ALWAYS AS (json_extract(fields, '$.emission_stage')) VIRTUAL,
        fuel TEXT GENERATED ALWAYS AS (json_extract(fields, '$.fuel')) VIRTUAL,
        gate TEXT GENERATED ALWAYS AS (json_extract(fields, '$.gate')) VIRTUAL,
        correction_of INTEGER GENERATED ALWAYS AS (json_extract(fields, '$.correction_of')) VIRTUAL
    )""",
    "CREATE INDEX IF NOT EXISTS passages_ts ON passages(ts)",
    "CREATE INDEX IF NOT EXISTS passages_plate ON passages(plate, ts)",
    "CREATE INDEX IF NOT EXISTS passages_correction ON "
    "passages(correction_of) WHERE correction_of IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        fields TEXT NOT NULL,
        ts REAL GENERATED ALWAYS AS
            (round((julianday(json_extract(fields, '$.time')) - 2440587.5) * 86400.0, 3)) VIRTUAL,
        actor TEXT GENERATED ALWAYS AS (json_extract(fields, '$.actor')) VIRTUAL,
        action TEXT GENERATED ALWAYS AS (json_extract(fields, '$.action')) VIRTUAL
    )""",
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time TEXT NOT NULL,
        kind TEXT NOT NULL,
        severity TEXT NOT NULL,
        message TEXT NOT NULL,
        details TEXT NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS export_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS purged_images (
        path TEXT PRIMARY KEY,
        sha256 TEXT,
        purged_at TEXT NOT NULL,
        reason TEXT NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS attestations (
        n INTEGER PRIMARY KEY,
        payload TEXT NOT NULL,
        sig TEXT NOT NULL
    )""",
]
#: Tables every ledger has had from its first version; verify requires them.
CORE_TABLES = ("passages", "audit", "events", "export_state", "purged_images", "meta")


class LedgerError(Exception):
    """A ledger operation that could not be done; the message says why."""


class LedgerFullError(LedgerError):
    """The disk (or the database's size limit) is full: the row was NOT written.

    The caller must report it (event, MQTT alarm) and keep the barrier logic
    working; images should already have been stopped by the retention policy.
    """


class StoredPassage(NamedTuple):
    seq: int
    hash: str
    prev_hash: str
    record: PassageRecord


class Event(NamedTuple):
    id: int
    time: str
    kind: str
    severity: str
    message: str
    details: dict[str, Any]


def now_iso() -> str:
    """Site time with its UTC offset, as every ledger time is written."""
    return sitetime.now_iso()


class LedgerStore:
    """The one owner of the ledger database file."""

    def __init__(
        self, path: str | Path, events_keep: int = 1000, busy_timeout_ms: int = 5000
    ) -> None:
        self.path = Path(path)
        if events_keep < EVENTS_KEEP_MIN:
            raise ValueError(
                f"events_keep: expected at least {EVENTS_KEEP_MIN}, found {events_keep}"
            )
        self.events_keep = events_keep
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = peewee.SqliteDatabase(
            str(self.path),
            pragmas={
                "journal_mode": "wal",
                "synchronous": "full",
                "busy_timeout": busy_timeout_ms,
                "foreign_keys": 1,
            },
            check_same_thread=False,
        )
        self._lock = threading.RLock()
        self.db.connect(reuse_if_open=True)
        with self._write():
            for stmt in _DDL:
                self.db.execute_sql(stmt)
            row = self.db.execute_sql(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
            if row is not None and int(row[0]) < 2:
                self._adopt_purges()
            self.db.execute_sql(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )

    def _adopt_purges(self) -> None:
        """Upgrade from a ledger whose purges were not chained: chain them now, saying so.

        Before schema 2 a removed image was noted only in ``purged_images``, which
        anyone could write; verify now wants a chained entry. The entry made here is
        honest about its origin (``adopted_at_upgrade``) and its time.
        """
        rows = self.db.execute_sql(
            "SELECT path, sha256, purged_at, reason FROM purged_images ORDER BY purged_at, path"
        ).fetchall()
        for i in range(0, len(rows), PURGE_CHUNK):
            chunk = rows[i : i + PURGE_CHUNK]
            self._append(
                "audit",
                self._audit_fields(
                    "retention",
                    PURGE_ACTION,
                    {
                        "reason": "adopted_at_upgrade",
                        "images": [[p, h, at, why] for p, h, at, why in chunk],
                    },
                ),
            )

    # -- plumbing ---------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> LedgerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction; disk-full becomes :class:`LedgerFullError`."""
        with self._lock:
            conn = self.db.connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield
                    conn.execute("COMMIT")
                except BaseException:
                    # SQLite may already have rolled back (SQLITE_FULL does).
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except (peewee.OperationalError, sqlite3.OperationalError) as exc:
                if "database or disk is full" in str(exc):
                    log.error(
                        "ledger_disk_full",
                        db=str(self.path),
                        hint="free space on the data partition; images "
                        "stop first, then rows are refused",
                    )
                    raise LedgerFullError(
                        f"ledger {self.path}: database or disk is full; row not written"
                    ) from exc
                raise

    def _head(self, table: str) -> tuple[int, str]:
        row = self.db.execute_sql(
            f"SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return (int(row[0]), row[1]) if row else (0, GENESIS_HASH)

    def _append(self, table: str, fields: Mapping[str, Any]) -> tuple[int, str]:
        encoded = canonical(fields)
        seq, prev = self._head(table)
        seq += 1
        digest = hash_bytes(prev, seq, encoded)
        self.db.execute_sql(
            f"INSERT INTO {table}(seq, prev_hash, hash, fields) VALUES (?, ?, ?, ?)",
            (seq, prev, digest, encoded.decode("utf-8")),
        )
        return seq, digest

    # -- chains -----------------------------------------------------------

    def append_passage(self, rec: PassageRecord) -> tuple[int, str]:
        """Append one passage; returns (seq, hash) once it is on disk."""
        with self._write():
            return self._append("passages", rec.to_fields())

    def append_correction(
        self, original_seq: int, rec: PassageRecord, operator: str, reason: str
    ) -> tuple[int, str]:
        """A guard's fix as a new row pointing at the original, plus its audit entry, atomically."""
        if not operator:
            raise LedgerError("operator: a correction needs the operator's name")
        with self._write():
            row = self.db.execute_sql(
                "SELECT fields FROM passages WHERE seq = ?", (original_seq,)
            ).fetchone()
            if row is None:
                raise LedgerError(f"correction_of: no passage with seq {original_seq}")
            original = json.loads(row[0])
            fields = rec.to_fields()
            fields["correction_of"] = original_seq
            fields["operator"] = operator
            PassageRecord.from_fields(fields)  # same checks as a fresh record
            seq, digest = self._append("passages", fields)
            changed = {
                k: [original.get(k), v]
                for k, v in fields.items()
                if k not in ("event_id", "correction_of", "operator") and original.get(k) != v
            }
            self._append(
                "audit",
                self._audit_fields(
                    operator,
                    "correction",
                    {
                        "original_seq": original_seq,
                        "new_seq": seq,
                        "reason": reason,
                        "changed": changed,
                    },
                ),
            )
        log.info("ledger_correction", original_seq=original_seq, seq=seq, operator=operator)
        return seq, digest

    @staticmethod
    def _audit_fields(actor: str, action: str, details: Mapping[str, Any]) -> dict[str, Any]:
        return {"time": now_iso(), "actor": actor, "action": action, "details": dict(details)}

    def append_audit(
        self, actor: str, action: str, details: Mapping[str, Any] | None = None
    ) -> tuple[int, str]:
        """Operator actions (list changes, approvals, manual opens, exports, ...), chained like
        passages.
        """
        if not actor or not action:
            raise LedgerError("actor/action: an audit entry needs both")
        with self._write():
            return self._append("audit", self._audit_fields(actor, action, details or {}))

    def heads(self) -> dict[str, tuple[int, str]]:
        """Head (seq, hash) of each chain: what is published upstream so later tampering shows."""
        with self._lock:
            return {t: self._head(t) for t in CHAINS}

    # -- events -----------------------------------------------------------

    def append_event(self, kind: str, severity: str, message: str, **details: Any) -> int:
        """Daemon events (start, stop, fault, recovery, limit violation). Keeps the newest
        ``events_keep``.
        """
        if severity not in SEVERITIES:
            severity = "warning"
        with self._write():
            cur = self.db.execute_sql(
                "INSERT INTO events(time, kind, severity, message, details) VALUES (?, ?, ?, ?, ?)",
                (
                    now_iso(),
                    kind,
                    severity,
                    message,
                    json.dumps(details, ensure_ascii=False, default=str),
                ),
            )
            event_id = int(cur.lastrowid)
            if event_id % 50 == 0:
                self.db.execute_sql(
                    "DELETE FROM events WHERE id <= ?", (event_id - self.events_keep,)
                )
        return event_id

    def recent_events(self, n: int = 100) -> list[Event]:
        rows = self.db.execute_sql(
            "SELECT id, time, kind, severity, message, "
            "details FROM events ORDER BY id DESC LIMIT ?",
            (n,),
        ).fetchall()
        return [Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    # -- reads ------------------------------------------------------------

    def passages(
        self,
        since_seq: int = 0,
        *,
        until_seq: int | None = None,
        start: float | None = None,
        end: float | None = None,
        plate: str | None = None,
        direction: str | None = None,
        decision: str | None = None,
        emission_stage: str | tuple[str, ...] | None = None,
        fuel: str | None = None,
        gate: str | None = None,
        lane: str | None = None,
        flag: str | None = None,
        correction_of: int | None = None,
        limit: int | None = None,
    ) -> Iterator[StoredPassage]:
        """Rows in seq order, streamed. ``start``/``end`` are UNIX times (end exclusive)."""
        for seq, digest, prev, fields in self.passage_rows(
            since_seq,
            until_seq=until_seq,
            start=start,
            end=end,
            plate=plate,
            direction=direction,
            decision=decision,
            emission_stage=emission_stage,
            fuel=fuel,
            gate=gate,
            lane=lane,
            flag=flag,
            correction_of=correction_of,
            limit=limit,
        ):
            yield StoredPassage(seq, digest, prev, PassageRecord.from_fields(json.loads(fields)))

    def passage_rows(
        self, since_seq: int = 0, **filters: Any
    ) -> Iterator[tuple[int, str, str, str]]:
        """Raw (seq, hash, prev_hash, fields JSON) rows: for exports that copy the hashed text as
        is.
        """
        sql, params = _filter_sql("passages", since_seq, **filters)
        cur = self.db.cursor()
        cur.execute(sql, params)
        while True:
            chunk = cur.fetchmany(1000)
            if not chunk:
                break
            yield from chunk

    def last_direction(self, plate: str) -> str | None:
        """Direction of the plate's latest passage (a two-way lane's ``presence`` rule)."""
        row = self.db.execute_sql(
            "SELECT direction FROM passages WHERE plate = ? ORDER BY ts DESC, seq DESC LIMIT 1",
            (plate,),
        ).fetchone()
        return row[0] if row else None

    def audit_rows(self, since_seq: int = 0) -> Iterator[tuple[int, str, str, str]]:
        cur = self.db.cursor()
        cur.execute(
            "SELECT seq, hash, prev_hash, fields FROM audit WHERE seq > ? ORDER BY seq",
            (since_seq,),
        )
        while True:
            chunk = cur.fetchmany(1000)
            if not chunk:
                break
            yield from chunk

    def corrected_seqs(self) -> set[int]:
        """Seqs that a later row corrects: reports count the correction, not the original."""
        return set(self.latest_corrections())

    def latest_corrections(self) -> dict[int, int]:
        """Original seq -> the seq of its latest correction."""
        rows = self.db.execute_sql(
            "SELECT correction_of, max(seq) FROM passages WHERE correction_of IS NOT NULL"
            " GROUP BY correction_of"
        )
        return {int(a): int(b) for a, b in rows}

    def current(self, seq: int) -> StoredPassage | None:
        """Row ``seq`` as it stands: its latest correction, or itself (None: no such original)."""
        original = next(self.passages(since_seq=seq - 1, until_seq=seq), None)
        if original is None or original.record.correction_of is not None:
            return None
        latest = self.latest_corrections().get(seq)
        if latest is None:
            return original
        return next(self.passages(since_seq=latest - 1, until_seq=latest), original)

    def effective_passages(self, since_seq: int = 0, **filters: Any) -> Iterator[StoredPassage]:
        """Rows as they stand after corrections (see :mod:`edged.ledger.corrections`): a
        corrected row is replaced by its latest correction, which says ``correction_of``."""
        rows = self.passages(since_seq, **filters)
        for row, _ in effective(rows, self.latest_corrections()):
            yield row

    # -- small state ------------------------------------------------------

    def get_state(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute_sql("SELECT value FROM export_state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_state(self, key: str, value: str) -> None:
        with self._write():
            self.db.execute_sql(
                "INSERT INTO export_state(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def record_purged_images(self, items: list[tuple[str, str | None]], reason: str) -> None:
        """Record images retention removed (path, sha256): chained audit entries (what verify
        trusts) and the ``purged_images`` index, in one transaction."""
        if not items:
            return
        when = now_iso()
        with self._write():
            self.db.connection().executemany(
                "INSERT OR REPLACE INTO purged_images(path, "
                "sha256, purged_at, reason) VALUES (?, ?, ?, ?)",
                [(p, h, when, reason) for p, h in items],
            )
            for i in range(0, len(items), PURGE_CHUNK):
                self._append(
                    "audit",
                    self._audit_fields(
                        "retention",
                        PURGE_ACTION,
                        {"reason": reason, "images": [list(x) for x in items[i : i + PURGE_CHUNK]]},
                    ),
                )

    def record_purged_image(self, path: str, sha256: str | None, reason: str) -> None:
        self.record_purged_images([(path, sha256)], reason)

    # -- attestations -----------------------------------------------------

    def append_attestation(self, payload: str, sig: str) -> int:
        """Store a signed attestation (see :mod:`edged.ledger.attest`); returns its number."""
        with self._write():
            row = self.db.execute_sql("SELECT max(n) FROM attestations").fetchone()
            n = int(row[0] or 0) + 1
            self.db.execute_sql(
                "INSERT INTO attestations(n, payload, sig) VALUES (?, ?, ?)", (n, payload, sig)
            )
        return n

    def attestations(self, since_n: int = 0) -> list[tuple[int, str, str]]:
        return [
            (int(n), p, s)
            for n, p, s in self.db.execute_sql(
                "SELECT n, payload, sig FROM attestations WHERE n > ? ORDER BY n", (since_n,)
            )
        ]

    def last_attestation(self) -> tuple[int, str, str] | None:
        row = self.db.execute_sql(
            "SELECT n, payload, sig FROM attestations ORDER BY n DESC LIMIT 1"
        ).fetchone()
        return (int(row[0]), row[1], row[2]) if row else None

    def raw_connection(self) -> sqlite3.Connection:
        """The underlying sqlite3 connection (backup API); hold no lock across long work."""
        return self.db.connection()


def _filter_sql(table: str, since_seq: int = 0, **f: Any) -> tuple[str, list[Any]]:
    where = ["seq > ?"]
    params: list[Any] = [since_seq]
    if f.get("until_seq") is not None:
        where.append("seq <= ?")
        params.append(f["until_seq"])
    if f.get("start") is not None:
        where.append("ts >= ?")
        params.append(f["start"])
    if f.get("end") is not None:
        where.append("ts < ?")
        params.append(f["end"])
    for col in (
        "plate",
        "direction",
        "decision",
        "emission_stage",
        "fuel",
        "gate",
        "correction_of",
    ):
        value = f.get(col)
        if isinstance(value, tuple | list | set | frozenset):  # any of these values
            where.append(f"{col} IN ({', '.join('?' * len(value))})")
            params.extend(sorted(value))
        elif value is not None:
            where.append(f"{col} = ?")
            params.append(value)
    if f.get("lane") is not None:
        where.append("json_extract(fields, '$.lane') = ?")
        params.append(f["lane"])
    if f.get("flag") is not None:
        where.append("EXISTS (SELECT 1 FROM json_each(fields, '$.flags') WHERE value = ?)")
        params.append(f["flag"])
    sql = (
        f"SELECT seq, hash, prev_hash, fields FROM {table} WHERE {' AND '.join(where)} ORDER BY seq"
    )
    if f.get("limit") is not None:
        sql += " LIMIT ?"
        params.append(int(f["limit"]))
    return sql, params


def seq_range(store: LedgerStore, table: str, start: float, end: float) -> tuple[int, int] | None:
    """First and last seq of ``table`` (passages or audit) with a time in [start, end)."""
    if table not in CHAINS:
        raise LedgerError(f"table: expected one of {', '.join(CHAINS)}, found {table!r}")
    row = store.db.execute_sql(
        f"SELECT min(seq), max(seq) FROM {table} WHERE ts >= ? AND ts < ?", (start, end)
    ).fetchone()
    return (int(row[0]), int(row[1])) if row and row[0] is not None else None


def audit_fields(store: LedgerStore, action: str) -> Iterator[dict[str, Any]]:
    """The fields of every audit entry of one action (corrections, restores, exports)."""
    cur = store.db.cursor()
    cur.execute("SELECT fields FROM audit WHERE action = ? ORDER BY seq", (action,))
    for (fields,) in cur:
        yield json.loads(fields)
