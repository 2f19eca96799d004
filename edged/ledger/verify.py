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

Rows appended at the end by someone who re-implements the chain, or rows cut
off the end, can only be seen against a head published earlier: pass it with
``expect_heads``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from edged.ledger.chain import GENESIS_HASH, hash_bytes
from edged.ledger.record import safe_relative_path

Row = tuple[int, str, str, bytes]  # seq, prev_hash, hash, fields bytes

_MOVE_SEARCH = 64


@dataclass(frozen=True)
class Problem:
    """The first thing that does not hold, in words for an inspector."""

    chain: str
    seq: int
    # edited | deleted | inserted | reordered | image_missing | image_mismatch
    # | truncated | head_mismatch | unreadable
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


def check_images(conn: sqlite3.Connection, images_dir: Path, res: VerifyResult) -> Problem | None:
    """Every snapshot named in a row must exist with its hash, unless retention recorded removing
    it.
    """
    purged = {r[0] for r in conn.execute("SELECT path FROM purged_images")}
    res.images_skipped = False
    cur = conn.execute(
        "SELECT seq, json_extract(fields, '$.snapshots') FROM passages "
        "WHERE json_array_length(fields, '$.snapshots') > 0 ORDER BY seq"
    )
    for seq, snaps in cur:
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
                if rel in purged:
                    res.images_purged += 1
                    continue
                return Problem(
                    "passages",
                    seq,
                    "image_missing",
                    f"snapshot {rel} is missing and no retention sweep removed it",
                )
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


def verify_db(
    db_path: str | Path,
    images_dir: str | Path | None = None,
    expect_heads: Mapping[str, tuple[int, str]] | None = None,
) -> VerifyResult:
    """Check both chains, then snapshot files (when ``images_dir`` is given), then known heads."""
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
        if res.problem is None and images_dir is not None:
            res.problem = check_images(conn, Path(images_dir), res)
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
