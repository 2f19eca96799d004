"""What each platform has acknowledged: the persistent side of 断点续传.

One row per (platform, record). A row stays unacknowledged until the
platform's 9014 reply comes (or, for platforms that want no reply, until the
packet was written to the socket). After an outage the uplink resends the
unacknowledged rows oldest first. The file is the uplink's own, so a schema
change here never touches the data logger's tables; WAL mode keeps writes
cheap on an SD card and survives power loss.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from edged.hj212.codec import Cp

PRIORITY_ALARM = 0
PRIORITY_DATA = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hj212_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    platform TEXT NOT NULL,
    cn TEXT NOT NULL,
    data_time TEXT NOT NULL,
    cp TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 1,
    created TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    acked_at TEXT,
    UNIQUE (platform, cn, data_time)
);
CREATE INDEX IF NOT EXISTS hj212_outbox_pending
    ON hj212_outbox (platform, acked_at, priority, data_time, id);
"""


@dataclass(frozen=True)
class OutboxRow:
    id: int
    platform: str
    cn: str
    data_time: datetime
    cp: Cp
    attempts: int


def _cp_json(cp: Cp) -> str:
    return json.dumps(
        {"p": dict(cp.params), "f": {k: dict(v) for k, v in cp.factors.items()}},
        ensure_ascii=False,
        separators=(",", ":"),
    )


class Outbox:
    """Thread-safe: the daemon publishes from its threads, the uplink reads on its loop."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(
        self,
        platforms: list[str],
        cn: str,
        data_time: datetime,
        cp: Cp,
        priority: int = PRIORITY_DATA,
        now: datetime | None = None,
    ) -> int:
        """Queue one record for each platform; a record already queued is kept as is."""
        created = (now or datetime.now()).isoformat()
        text = _cp_json(cp)
        with self._lock:
            cur = self._db.executemany(
                "INSERT OR IGNORE INTO hj212_outbox"
                " (platform, cn, data_time, cp, priority, created) VALUES (?, ?, ?, ?, ?, ?)",
                [(p, cn, data_time.isoformat(), text, priority, created) for p in platforms],
            )
            return cur.rowcount

    def next_pending(self, platform: str) -> OutboxRow | None:
        """Oldest unacknowledged record, alarms before data."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, platform, cn, data_time, cp, attempts FROM hj212_outbox"
                " WHERE platform = ? AND acked_at IS NULL"
                " ORDER BY priority, data_time, id LIMIT 1",
                (platform,),
            ).fetchone()
        if row is None:
            return None
        data = json.loads(row[4])
        return OutboxRow(
            row[0], row[1], row[2], datetime.fromisoformat(row[3]), Cp(data["p"], data["f"]), row[5]
        )

    def mark_acked(self, row_id: int, when: datetime) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE hj212_outbox SET acked_at = ? WHERE id = ?", (when.isoformat(), row_id)
            )

    def count_attempt(self, row_id: int) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE hj212_outbox SET attempts = attempts + 1 WHERE id = ?", (row_id,)
            )

    def backlog(self, platform: str) -> int:
        with self._lock:
            (n,) = self._db.execute(
                "SELECT COUNT(*) FROM hj212_outbox WHERE platform = ? AND acked_at IS NULL",
                (platform,),
            ).fetchone()
        return int(n)

    def acked(self, platform: str) -> list[tuple[str, datetime]]:
        """(CN, DataTime) of acknowledged records in acknowledgement order: for audits and tests."""
        with self._lock:
            rows = self._db.execute(
                "SELECT cn, data_time FROM hj212_outbox WHERE platform = ? AND acked_at IS NOT NULL"
                " ORDER BY acked_at, id",
                (platform,),
            ).fetchall()
        return [(cn, datetime.fromisoformat(t)) for cn, t in rows]

    def prune(self, before: datetime) -> int:
        """Forget records older than ``before`` (acknowledged or not: past keep_days)."""
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM hj212_outbox WHERE data_time < ?", (before.isoformat(),)
            )
            return cur.rowcount
