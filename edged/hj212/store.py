"""What each platform has acknowledged: the persistent side of 断点续传.

One row per (platform, record). A row stays unacknowledged until the
platform's 9014 reply comes (or, for platforms that want no reply, until the
packet was written to the socket). After an outage the uplink resends the
unacknowledged rows oldest first. The file is the uplink's own, so a schema
change here never touches the data logger's tables; WAL mode keeps writes
cheap on an SD card and survives power loss.

The same file keeps what platforms told the logger and must outlive a
restart (:meth:`Outbox.state` / :meth:`Outbox.set_state`): the MN a platform
assigned (CN 1002), SM4 keys (CN 1014, the old one kept until the new one is
confirmed), timeouts and retries (CN 1000), whether real-time data is on
(CN 2011/2012) and which hardware identity was acknowledged (CN 1001). The
file holds keys, so it is created readable by its owner only.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
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
CREATE TABLE IF NOT EXISTS hj212_state (
    platform TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated TEXT NOT NULL,
    PRIMARY KEY (platform, key)
);
"""


@dataclass(frozen=True)
class OutboxRow:
    id: int
    platform: str
    cn: str
    data_time: datetime
    cp: Cp
    attempts: int
    created: str = ""


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
        if self.path != ":memory:" and not os.path.exists(self.path):
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
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
        """Queue one record for each platform; a record already queued is kept as is.

        ``data_time`` is the record's DataTime (site wall time); ``now`` the
        system time it was queued at (UTC by default), which pruning trusts.
        """
        created = (now or datetime.now(UTC)).isoformat()
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
                "SELECT id, platform, cn, data_time, cp, attempts, created FROM hj212_outbox"
                " WHERE platform = ? AND acked_at IS NULL"
                " ORDER BY priority, data_time, id LIMIT 1",
                (platform,),
            ).fetchone()
        if row is None:
            return None
        data = json.loads(row[4])
        return OutboxRow(
            row[0],
            row[1],
            row[2],
            datetime.fromisoformat(row[3]),
            Cp(data["p"], data["f"]),
            row[5],
            row[6],
        )

    def last_id(self) -> int:
        """Id of the newest row: rows up to it were queued before now (for RF=1)."""
        with self._lock:
            (n,) = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM hj212_outbox").fetchone()
        return int(n)

    def mark_acked(self, row_id: int, when: datetime) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE hj212_outbox SET acked_at = ? WHERE id = ?", (when.isoformat(), row_id)
            )

    def drop(self, row_id: int) -> None:
        """Forget one record for its platform: it will not be sent (and never was acknowledged)."""
        with self._lock:
            self._db.execute("DELETE FROM hj212_outbox WHERE id = ?", (row_id,))

    def drop_pending(self, platform: str, priority: int, up_to_id: int) -> int:
        """Forget a platform's unacknowledged records of ``priority`` queued up to ``up_to_id``."""
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM hj212_outbox WHERE platform = ? AND acked_at IS NULL"
                " AND priority = ? AND id <= ?",
                (platform, priority, up_to_id),
            )
            return cur.rowcount

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

    def prune(self, before: datetime, queued_before: datetime | None = None) -> int:
        """Forget records whose DataTime is older than ``before``.

        An unacknowledged record goes only when it was also *queued* before
        ``queued_before`` (system time; default ``before`` seen as UTC): a
        platform that set the logger's clock ahead, or a backfill of old
        data, never takes the backlog the platforms still wait for with it.
        """
        queued = (queued_before or before).isoformat()
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM hj212_outbox WHERE data_time < ?"
                " AND (acked_at IS NOT NULL OR created < ?)",
                (before.isoformat(), queued),
            )
            return cur.rowcount

    # -- what platforms told the logger ----------------------------------------------

    def state(self, platform: str, key: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM hj212_state WHERE platform = ? AND key = ?", (platform, key)
            ).fetchone()
        return None if row is None else str(row[0])

    def set_state(self, platform: str, key: str, value: str | None) -> None:
        """Store (or with None forget) one value, durably before returning.

        The commit is synced (synchronous=FULL for this write): the logger
        tells the platform "done" right after, and a power cut must not undo it.
        """
        with self._lock:
            self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._set_state(platform, key, value)
            finally:
                self._db.execute("PRAGMA synchronous=NORMAL")

    def _set_state(self, platform: str, key: str, value: str | None) -> None:
        if value is None:
            self._db.execute(
                "DELETE FROM hj212_state WHERE platform = ? AND key = ?", (platform, key)
            )
            return
        self._db.execute(
            "INSERT INTO hj212_state (platform, key, value, updated) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (platform, key) DO UPDATE SET value = excluded.value,"
            " updated = excluded.updated",
            (platform, key, value, datetime.now(UTC).isoformat()),
        )
