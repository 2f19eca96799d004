"""Prove a ledger database unaltered, or name the first row that is not.

Reads rows with plain ``sqlite3`` (no ORM objects: a million rows in a few
seconds) and hashes the stored bytes exactly as the store wrote them. Each
kind of tampering leaves its own trace, which is how the report can say
*what* happened, not only *where*:

- edited: the row's stored hash no longer matches its content;
- edited and re-hashed: the row matches itself, but the next row's
  ``prev_hash`` points at a different hash;
- deleted: a seq is missing and the next row's ``prev_hash`` is not the
  previous row's hash;
- inserted: a row whose neighbours link past it (the next row's
  ``prev_hash`` is the hash of the row before it);
- reordered: a row's hash matches its content only under another seq
  (seq is part of the hash, so a moved row says where it came from).

Beyond the chains, a database can lie in ways the hashes alone do not show,
and each has its own check:

- schema: every table, index and trigger must be the ledger's own
  (``store._DDL``); a ``passages`` table rebuilt with plain columns lets
  queries and reports show values the hashed text does not hold;
- columns: every queryable column must equal what the hashed text says;
- purges: an image may be missing only if a *chained* audit entry
  (``images_purged``) removed it, and an ``age`` purge only once the image was
  older than the retention period;
- attestations: every signed attestation (in the database, beside it, or from
  a backend's archive) must still match the chain at the seqs it signed
  (else the chain was rebuilt), and the chain must not end before the last
  one (else it was rolled back).

Rows appended at the end by someone who re-implements the chain, or rows cut
off the end, can only be seen against a head published earlier: pass it with
``expect_heads``, or let the attestations do it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from edged.ledger.attest import Attestation
from edged.ledger.chain import GENESIS_HASH, hash_bytes
from edged.ledger.record import safe_relative_path
from edged.ledger.store import _DDL, CORE_TABLES, PURGE_ACTION

Row = tuple[int, str, str, bytes]  # seq, prev_hash, hash, fields bytes

_MOVE_SEARCH = 64


@dataclass(frozen=True)
class Problem:
    """The first thing that does not hold, in words for an inspector."""

    chain: str
    seq: int
    # edited | deleted | inserted | reordered | image_missing | image_mismatch
    # | truncated | head_mismatch | unreadable | schema | column_mismatch
    # | purge_unrecorded | purge_too_young | rebuilt | rollback | attestation_invalid
    # | clip_missing | clip_mismatch
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.chain} seq {self.seq}: {self.kind}: {self.message}"


@dataclass
class ChainResult:
    rows: int = 0
    head: tuple[int, str] = (0, GENESIS_HASH)
    problem: Problem | None = None


@dataclass
class VerifyResult:
    chains: dict[str, ChainResult] = field(default_factory=dict)
    images_checked: int = 0
    images_purged: int = 0
    images_skipped: bool = True
    images_purged_early: int = 0  # removed for disk space before their retention ended
    attestations: int = 0  # attestations checked against the chains
    clips_checked: int = 0
    clips_removed: int = 0  # gone by retention or a chained purge
    clips_skipped: bool = True
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Peek:
    def __init__(self, rows: Iterable[Row]) -> None:
        self._it: Iterator[Row] = iter(rows)
        self._next: Row | None = None

    def __iter__(self) -> _Peek:
        return self

    def __next__(self) -> Row:
        if self._next is not None:
            row, self._next = self._next, None
            return row
        return next(self._it)

    def peek(self) -> Row | None:
        if self._next is None:
            self._next = next(self._it, None)
        return self._next


def _written_as(prev: str, seq: int, data: bytes, stored: str) -> int | None:
    """The seq under which this content was hashed, if it was moved from nearby."""
    for delta in range(1, _MOVE_SEARCH + 1):
        for cand in (seq - delta, seq + delta):
            if cand > 0 and hash_bytes(prev, cand, data) == stored:
                return cand
    return None


def verify_rows(rows: Iterable[Row], chain: str = "passages") -> ChainResult:
    """Walk one chain in seq order. Pure: the rows can come from anywhere."""
    res = ChainResult()
    prev_seq, prev_hash = 0, GENESIS_HASH
    before_prev: str | None = None
    it = _Peek(rows)
    for seq, stored_prev, stored_hash, data in it:
        expected = prev_seq + 1
        if hash_bytes(stored_prev, seq, data) != stored_hash:
            moved = _written_as(stored_prev, seq, data, stored_hash)
            if moved == seq - 1 and before_prev is not None and stored_prev == before_prev:
                res.problem = Problem(
                    chain,
                    prev_seq,
                    "inserted",
                    f"row {prev_seq} was inserted: the row now at seq {seq} was "
                    f"written as seq {moved} and links to row {prev_seq - 1}",
                )
            elif moved is not None:
                res.problem = Problem(
                    chain,
                    seq,
                    "reordered",
                    f"the row at seq {seq} was written as seq {moved}: rows were moved or swapped",
                )
            else:
                nxt = it.peek()
                if nxt is not None and seq == expected and nxt[1] == prev_hash:
                    res.problem = Problem(
                        chain,
                        seq,
                        "inserted",
                        f"row {seq} is not part of the chain: row "
                        f"{nxt[0]} links directly to row {prev_seq}",
                    )
                else:
                    res.problem = Problem(
                        chain,
                        seq,
                        "edited",
                        "content or hash changed after it was "
                        "written (stored hash does not match the row)",
                    )
            return res
        if seq != expected:
            if stored_prev == prev_hash:
                res.problem = Problem(
                    chain,
                    seq,
                    "inserted",
                    f"row {seq} links to row {prev_seq} but skips "
                    f"seq {expected}: not written by the ledger",
                )
            else:
                res.problem = Problem(
                    chain,
                    expected,
                    "deleted",
                    f"rows {expected}..{seq - 1} are missing "
                    f"(deleted); row {seq} follows row {prev_seq}",
                )
            return res
        if stored_prev != prev_hash:
            if before_prev is not None and stored_prev == before_prev:
                res.problem = Problem(
                    chain,
                    prev_seq,
                    "inserted",
                    f"row {prev_seq} was inserted: row {seq} links to row {prev_seq - 1}",
                )
            else:
                res.problem = Problem(
                    chain,
                    prev_seq,
                    "edited",
                    f"row {prev_seq} was edited and re-hashed: row {seq} links to a different hash",
                )
            return res
        before_prev, prev_seq, prev_hash = prev_hash, seq, stored_hash
        res.rows += 1
    res.head = (prev_seq, prev_hash)
    return res


def _rows(conn: sqlite3.Connection, table: str) -> Iterator[Row]:
    cur = conn.execute(
        f"SELECT seq, prev_hash, hash, CAST(fields AS BLOB) FROM {table} ORDER BY seq"
    )
    cur.arraysize = 2000
    while True:
        chunk = cur.fetchmany()
        if not chunk:
            return
        yield from chunk


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- schema and plain columns ---------------------------------------------------------------

_QUERY_COLUMNS = {
    "passages": {
        "ts": "round((julianday(json_extract(fields, '$.time')) - 2440587.5) * 86400.0, 3)",
        "plate": "json_extract(fields, '$.plate')",
        "direction": "json_extract(fields, '$.direction')",
        "decision": "json_extract(fields, '$.decision')",
        "emission_stage": "json_extract(fields, '$.emission_stage')",
        "fuel": "json_extract(fields, '$.fuel')",
        "gate": "json_extract(fields, '$.gate')",
        "correction_of": "json_extract(fields, '$.correction_of')",
    },
    "audit": {
        "ts": "round((julianday(json_extract(fields, '$.time')) - 2440587.5) * 86400.0, 3)",
        "actor": "json_extract(fields, '$.actor')",
        "action": "json_extract(fields, '$.action')",
    },
}


def _norm_sql(sql: str | None) -> str:
    text = " ".join((sql or "").split())
    return text.replace(" IF NOT EXISTS", "").replace("( ", "(").replace(" )", ")")


def expected_schema() -> dict[str, tuple[str, str]]:
    """(type, normalised SQL) of every object the code creates, by name."""
    ref = sqlite3.connect(":memory:")
    try:
        for stmt in _DDL:
            ref.execute(stmt)
        return {
            name: (kind, _norm_sql(sql))
            for kind, name, sql in ref.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            )
        }
    finally:
        ref.close()


def check_schema(conn: sqlite3.Connection) -> Problem | None:
    """Every table, index, view and trigger must be exactly the ledger's own."""
    want = expected_schema()
    have = {
        name: (kind, _norm_sql(sql))
        for kind, name, sql in conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        )
    }
    for name, (kind, sql) in sorted(have.items()):
        if name not in want:
            return Problem(
                "schema",
                0,
                "schema",
                f"{kind} {name!r} is not part of the ledger (added by hand: a {kind} can"
                " change what is written or read)",
            )
        if (kind, sql) != want[name]:
            detail = ""
            if kind == "table" and name in _QUERY_COLUMNS:
                hidden = {r[1]: r[6] for r in conn.execute(f"PRAGMA table_xinfo({name})")}
                stored = [c for c in _QUERY_COLUMNS[name] if hidden.get(c) == 0]
                if stored:
                    detail = (
                        f": columns {', '.join(stored)} are stored, not computed from the"
                        " hashed text"
                    )
            return Problem(
                "schema",
                0,
                "schema",
                f"{kind} {name!r} differs from the ledger's definition (rebuilt by hand){detail}",
            )
    for name in CORE_TABLES:
        if name not in have:
            return Problem("schema", 0, "schema", f"table {name!r} is missing")
    return None


def check_columns(conn: sqlite3.Connection) -> Problem | None:
    """Every queryable column must equal what the row's hashed text says."""
    for table, cols in _QUERY_COLUMNS.items():
        present = {r[1] for r in conn.execute(f"PRAGMA table_xinfo({table})")}
        use = {c: e for c, e in cols.items() if c in present}
        if not use:
            continue
        cond = " OR ".join(f"{c} IS NOT {e}" for c, e in use.items())
        row = conn.execute(
            f"SELECT seq, {', '.join(f'{c}, {e}' for c, e in use.items())} FROM {table}"
            f" WHERE {cond} ORDER BY seq LIMIT 1"
        ).fetchone()
        if row is None:
            continue
        (n,) = conn.execute(f"SELECT count(*) FROM {table} WHERE {cond}").fetchone()
        vals = row[1:]
        diffs = [
            f"{c} {vals[2 * i]!r} but the hashed text says {vals[2 * i + 1]!r}"
            for i, c in enumerate(use)
            if vals[2 * i] != vals[2 * i + 1]
        ]
        return Problem(
            table,
            int(row[0]),
            "column_mismatch",
            f"{n} rows show columns that differ from their hashed text (queries and reports"
            f" would lie); first: {'; '.join(diffs)}",
        )
    return None


# -- images and purges ------------------------------------------------------------------------


def chained_purges(conn: sqlite3.Connection) -> dict[str, tuple[str, str]]:
    """path -> (purge time, reason) from the chained audit entries of retention purges."""
    out: dict[str, tuple[str, str]] = {}
    cur = conn.execute(
        "SELECT json_extract(fields, '$.time'), json_extract(fields, '$.details') FROM audit"
        " WHERE json_extract(fields, '$.action') = ? ORDER BY seq",
        (PURGE_ACTION,),
    )
    for when, details in cur:
        d = json.loads(details or "{}")
        for item in d.get("images", []):
            at = item[2] if len(item) > 2 and item[2] else when
            why = item[3] if len(item) > 3 and item[3] else d.get("reason", "")
            out[str(item[0])] = (at, why)
    return out


def check_images(
    conn: sqlite3.Connection,
    images_dir: Path,
    res: VerifyResult,
    image_retention_days: int = 183,
) -> Problem | None:
    """Every snapshot named in a row must exist with its hash, unless a chained retention
    purge removed it (and, for an age purge, only once it was old enough)."""
    purged = chained_purges(conn)
    listed = {r[0] for r in conn.execute("SELECT path FROM purged_images")}
    res.images_skipped = False
    cur = conn.execute(
        "SELECT seq, json_extract(fields, '$.time'), json_extract(fields, '$.snapshots')"
        " FROM passages WHERE json_array_length(fields, '$.snapshots') > 0 ORDER BY seq"
    )
    for seq, taken, snaps in cur:
        for snap in json.loads(snaps):
            rel = snap.get("path", "")
            if not safe_relative_path(rel):
                return Problem(
                    "passages",
                    seq,
                    "image_mismatch",
                    f"snapshot path {rel!r} points outside the images folder",
                )
            path = images_dir / rel
            if not path.is_file():
                if rel not in purged:
                    if rel in listed:
                        return Problem(
                            "passages",
                            seq,
                            "purge_unrecorded",
                            f"snapshot {rel} is missing; purged_images lists it but no chained"
                            " audit entry records its removal (a forged purge)",
                        )
                    return Problem(
                        "passages",
                        seq,
                        "image_missing",
                        f"snapshot {rel} is missing and no retention sweep removed it",
                    )
                at, why = purged[rel]
                age = _days_between(taken, at)
                if why == "age" and age is not None and age < image_retention_days:
                    return Problem(
                        "passages",
                        seq,
                        "purge_too_young",
                        f"snapshot {rel} was removed 'for age' {age:.1f} days after the"
                        f" passage, before the {image_retention_days}-day retention ended",
                    )
                if why in ("budget", "disk_low"):
                    res.images_purged_early += 1
                res.images_purged += 1
                continue
            if _file_sha256(path) != snap.get("sha256"):
                return Problem(
                    "passages",
                    seq,
                    "image_mismatch",
                    f"snapshot {rel} does not match its recorded "
                    "SHA-256 (image replaced or edited)",
                )
            res.images_checked += 1
    return None


CLIP_ACTION = "clip_recorded"  # audit action: a passage's clip and its SHA-256
CLIP_PURGE_ACTION = "clips_purged"  # audit action: clips removed for budget or disk space


def check_clips(
    conn: sqlite3.Connection,
    clips_dir: Path,
    res: VerifyResult,
    retention_days: int,
    now: datetime | None = None,
) -> Problem | None:
    """Every clip the audit chain records must be on disk with its hash, unless the
    chained ``clips_purged`` entries removed it or its retention has run out.

    The row is written before the barrier opens, seconds before its clip ends, so a
    clip's SHA-256 is chained in the audit log beside the row's event id, not on the row.
    """
    now = now or datetime.now().astimezone()
    purged: set[str] = set()
    for (details,) in conn.execute(
        "SELECT json_extract(fields, '$.details') FROM audit"
        " WHERE json_extract(fields, '$.action') = ?",
        (CLIP_PURGE_ACTION,),
    ):
        purged.update(str(c) for c in json.loads(details or "{}").get("clips", []))
    res.clips_skipped = False
    cur = conn.execute(
        "SELECT seq, json_extract(fields, '$.details') FROM audit"
        " WHERE json_extract(fields, '$.action') = ? ORDER BY seq",
        (CLIP_ACTION,),
    )
    for seq, details in cur:
        d = json.loads(details or "{}")
        rel = str(d.get("clip", ""))
        if not safe_relative_path(rel):
            return Problem("audit", seq, "clip_mismatch", f"clip path {rel!r} points outside")
        path = clips_dir / rel
        if not path.is_file():
            age = _days_between(str(d.get("first", "")), now.isoformat())
            if rel in purged or (age is not None and age >= retention_days):
                res.clips_removed += 1
                continue
            return Problem(
                "audit",
                seq,
                "clip_missing",
                f"clip {rel} (passage {d.get('event_id')}) is missing; no chained purge removed"
                f" it and its {retention_days}-day retention has not ended",
            )
        if _file_sha256(path) != d.get("sha256"):
            return Problem(
                "audit",
                seq,
                "clip_mismatch",
                f"clip {rel} (passage {d.get('event_id')}) does not match its recorded SHA-256"
                " (video replaced or edited)",
            )
        res.clips_checked += 1
    return None


def _days_between(a: str, b: str) -> float | None:
    try:
        return (datetime.fromisoformat(b) - datetime.fromisoformat(a)) / timedelta(days=1)
    except (TypeError, ValueError):
        return None


# -- attestations --------------------------------------------------------------------------


def check_attestations(
    conn: sqlite3.Connection,
    res: VerifyResult,
    known: list[Attestation],
    public_hex: str | None = None,
) -> Problem | None:
    """Every attestation, stored or known from outside, must still hold on these chains."""
    stored: list[Attestation] = []
    try:
        stored = [Attestation(*r) for r in conn.execute("SELECT n, payload, sig FROM attestations")]
    except sqlite3.OperationalError:  # a ledger from before attestations
        stored = []
    by_n = {a.n: a for a in stored}
    handed_over = restored_keys(conn) if public_hex else set()
    for att in [*stored, *(a for a in known if a not in stored)]:
        where = "stored in the ledger" if att in stored else "known from outside"
        if not att.signed_by(public_hex) and not (
            att.body.get("key") in handed_over and att.signed_by()
        ):
            return Problem(
                "attestations",
                att.n,
                "attestation_invalid",
                f"attestation {att.n} ({where}) is not signed by "
                + (f"device key {public_hex[:16]}…" if public_hex else "the key it names"),
            )
        mine = by_n.get(att.n)
        if att not in stored and mine is not None and mine.payload != att.payload:
            return Problem(
                "attestations",
                att.n,
                "rebuilt",
                f"attestation {att.n} in the ledger differs from the one the box published:"
                " the ledger was rebuilt",
            )
        for chain, (seq, digest) in att.heads.items():
            head = res.chains.get(chain)
            top = head.head[0] if head else 0
            if seq > top:
                return Problem(
                    chain,
                    seq,
                    "rollback",
                    f"attestation {att.n} ({where}, {att.body.get('time')}) signed {chain} up"
                    f" to seq {seq}, but the ledger ends at seq {top}: it was rolled back"
                    " (an older copy restored, or rows cut off)",
                )
            if seq == 0:
                continue
            row = conn.execute(f"SELECT hash FROM {chain} WHERE seq = ?", (seq,)).fetchone()
            if row is None or row[0] != digest:
                return Problem(
                    chain,
                    seq,
                    "rebuilt",
                    f"attestation {att.n} ({where}) signed {chain} seq {seq} with hash"
                    f" {digest[:16]}…, the ledger now has {(row[0] if row else 'nothing')[:16]}…:"
                    " the chain was rebuilt",
                )
        res.attestations += 1
    return None


def restored_keys(conn: sqlite3.Connection) -> set[str]:
    """Keys of another box whose attestations came with a restored ledger: the chained
    ``restore`` audit entry names them (a replacement box takes over the old one's ledger)."""
    out: set[str] = set()
    try:
        rows = conn.execute("SELECT fields FROM audit WHERE action = 'restore'").fetchall()
    except sqlite3.OperationalError:
        return out
    for (fields,) in rows:
        try:
            keys = json.loads(fields).get("details", {}).get("attestation_keys") or []
        except (ValueError, AttributeError):
            continue
        out.update(k for k in keys if isinstance(k, str))
    return out


def verify_db(
    db_path: str | Path,
    images_dir: str | Path | None = None,
    expect_heads: Mapping[str, tuple[int, str]] | None = None,
    *,
    image_retention_days: int = 183,
    attestations: list[Attestation] | None = None,
    public_key: str | None = None,
    clips_dir: str | Path | None = None,
    clip_retention_days: int = 183,
) -> VerifyResult:
    """Check the schema, both chains, the columns, snapshot files (when ``images_dir`` is
    given), clips (when ``clips_dir`` is), known heads and attestations; ``problem`` is
    the first thing that fails."""
    res = VerifyResult()
    path = Path(db_path)
    if not path.is_file():
        res.problem = Problem("passages", 0, "unreadable", f"database {path} not found")
        return res
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for chain in ("passages", "audit"):
            try:
                cres = verify_rows(_rows(conn, chain), chain)
            except sqlite3.DatabaseError as exc:
                cres = ChainResult(
                    problem=Problem(chain, 0, "unreadable", f"cannot read table: {exc}")
                )
            res.chains[chain] = cres
            if cres.problem and res.problem is None:
                res.problem = cres.problem
        if res.problem is None:
            # The rows that lie are what an inspector needs first; the schema says how.
            # With the schema as the code makes it, every queryable column is computed
            # from the hashed text when read and cannot differ from it: the row-by-row
            # comparison (half of a verify's time) only runs once the schema is off.
            schema = check_schema(conn)
            columns = check_columns(conn) if schema is not None else None
            if columns is not None and schema is not None:
                columns = Problem(
                    columns.chain,
                    columns.seq,
                    columns.kind,
                    f"{columns.message}; {schema.message}",
                )
            res.problem = columns or schema
        if res.problem is None:
            res.problem = check_attestations(conn, res, list(attestations or ()), public_key)
        if res.problem is None and images_dir is not None:
            res.problem = check_images(conn, Path(images_dir), res, image_retention_days)
        if res.problem is None and clips_dir is not None:
            res.problem = check_clips(conn, Path(clips_dir), res, clip_retention_days)
        if res.problem is None and expect_heads:
            for chain, (seq, digest) in expect_heads.items():
                row = conn.execute(f"SELECT hash FROM {chain} WHERE seq = ?", (seq,)).fetchone()
                if row is None:
                    res.problem = Problem(
                        chain,
                        seq,
                        "truncated",
                        f"published head seq {seq} is not in the "
                        "database: rows were cut off the end",
                    )
                    break
                if row[0] != digest:
                    res.problem = Problem(
                        chain,
                        seq,
                        "head_mismatch",
                        "hash differs from the published head: the chain was rewritten",
                    )
                    break
    finally:
        conn.close()
    return res
