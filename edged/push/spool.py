"""Every push on disk before the camera is answered; duplicates found and counted.

A camera resends: Zhenshi replays its offline reads (up to thousands) when
the server comes back, and may send one read twice when a live read cuts
an offline one short; any camera may read one truck twice. The spool keeps
one row per push in ``pushes.db`` (SQLite, ``synchronous=FULL``) with the
raw request in a file beside it, written and fsynced before the row
commits. A push whose record id was seen with the same plate is a
duplicate by id (a camera whose counter restarted reuses ids); one of the
same plate within the camera's window of another is a duplicate by
window. Both are counted and answered as stored, so the camera moves on.
Old files go first when the spool is over its age or budget; rows (a few
hundred bytes) stay a year so old resends are still recognised.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.camera.push import Push
from edged import sitetime
from edged.logs import get_logger

log = get_logger("push")

ROW_DAYS = 366

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pushes (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    vendor TEXT NOT NULL,
    record_id TEXT,
    plate TEXT,
    shot_at REAL,
    received REAL NOT NULL,
    offline INTEGER NOT NULL,
    status TEXT NOT NULL,
    path TEXT,
    size INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS pushes_record ON pushes(camera, record_id);
CREATE INDEX IF NOT EXISTS pushes_plate ON pushes(camera, plate, shot_at);
CREATE INDEX IF NOT EXISTS pushes_received ON pushes(received);
"""


@dataclass(frozen=True)
class Stored:
    """Where a push went: new (id and file), or a duplicate (by id or by window)."""

    status: str  # new | duplicate_id | duplicate_window
    push_id: int | None
    path: Path | None = None
    prior: str | None = None  # a duplicate by id: what became of the push it repeats


class Spool:
    """``pushes.db`` and the raw files under ``root``; thread-safe (one writer at a time)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(root / "pushes.db", check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.bytes = self._total_bytes()

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def _total_bytes(self) -> int:
        row = self.db.execute("SELECT COALESCE(SUM(size), 0) FROM pushes WHERE path IS NOT NULL")
        return int(row.fetchone()[0])

    def store(self, camera: str, push: Push, raw: bytes, window_s: float) -> Stored:
        """Keep ``raw`` and a row for ``push`` unless it is a duplicate; on disk on return."""
        now = time.time()
        shot = push.shot_at.timestamp() if push.shot_at is not None else now
        with self._lock:
            if push.record_id is not None:
                # Same id and same plate: a camera whose counter restarted reuses ids.
                dup = self.db.execute(
                    "SELECT id, status FROM pushes WHERE camera = ? AND record_id = ? AND plate IS ?"
                    " ORDER BY id LIMIT 1",
                    (camera, push.record_id, push.plate),
                ).fetchone()
                if dup:
                    return Stored("duplicate_id", int(dup[0]), prior=str(dup[1]))
            status = "new"
            if push.plate and window_s > 0:
                near = self.db.execute(
                    "SELECT id FROM pushes WHERE camera = ? AND plate = ? AND shot_at BETWEEN ? AND ?"
                    " LIMIT 1",
                    (camera, push.plate, shot - window_s, shot + window_s),
                ).fetchone()
                if near:
                    status = "duplicate_window"
            path = None
            if status == "new":
                day = sitetime.now().strftime("%Y/%m/%d")
                path = self.root / day / f"{camera}-{int(now * 1000)}-{os.getpid()}-{id(raw):x}.bin"
                _write_synced(path, raw)
            cur = self.db.execute(
                "INSERT INTO pushes(camera, vendor, record_id, plate, shot_at, received, offline,"
                " status, path, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    camera,
                    push.vendor,
                    push.record_id,
                    push.plate,
                    shot,
                    now,
                    int(push.offline),
                    status,
                    None if path is None else str(path.relative_to(self.root)),
                    len(raw) if path is not None else 0,
                ),
            )
            if path is not None:
                self.bytes += len(raw)
            return Stored(status, int(cur.lastrowid or 0), path)

    def note(self, push_id: int, status: str) -> None:
        """What became of a stored push (passage, joining, joined, dropped, offline_record,
        offline_joined, offline_failed, unjoined_record, unjoined_joined)."""
        with self._lock:
            self.db.execute("UPDATE pushes SET status = ? WHERE id = ?", (status, push_id))

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self.db.execute("SELECT status, COUNT(*) FROM pushes GROUP BY status").fetchall()
        return {str(k): int(v) for k, v in rows}

    def sweep(self, days: int, budget_mb: int, now: float | None = None) -> int:
        """Remove raw files past ``days`` or over the budget, oldest first; rows after a year."""
        now = time.time() if now is None else now
        removed = 0
        with self._lock:
            rows = self.db.execute(
                "SELECT id, path, size, received FROM pushes WHERE path IS NOT NULL ORDER BY id"
            ).fetchall()
            total = sum(int(r[2]) for r in rows)
            for push_id, rel, size, received in rows:
                if received >= now - days * 86400 and total <= budget_mb * 1024 * 1024:
                    break
                try:
                    (self.root / rel).unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("push_delete_failed", path=rel, error=str(exc))
                    continue
                self.db.execute("UPDATE pushes SET path = NULL WHERE id = ?", (push_id,))
                total -= int(size)
                removed += 1
            self.db.execute("DELETE FROM pushes WHERE received < ?", (now - ROW_DAYS * 86400,))
            self.bytes = total
        return removed


def _write_synced(path: Path, data: bytes) -> None:
    """Write, fsync, rename into place and fsync the folder: on disk when this returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def describe(stored: Stored) -> dict[str, Any]:
    return {"status": stored.status, "push_id": stored.push_id}
