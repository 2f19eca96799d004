"""Backup and restore of the data logger's history (003 §5.1: 数据备份与恢复).

Backup uses SQLite's online backup API, so the logger keeps polling while
the copy is made, and the copy is one self-contained file. Restore (with
the daemon stopped) first checks the file is a logger database that passes
SQLite's integrity check, refuses one whose newest data is older than the
live database's (it would silently drop the minutes since) unless forced,
and keeps the live file aside before replacing it.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from edged.logs import get_logger

log = get_logger("datalogger")

TABLES = ("sample", "minute", "hour", "day", "meta")


class LoggerRestoreError(Exception):
    """The restore was refused; the live database is unchanged."""


@dataclass(frozen=True)
class LoggerCopy:
    """What a logger database holds: rows per table and the newest minute."""

    rows: dict[str, int]
    newest: str | None  # start of the newest minute (or sample) stored

    def describe(self) -> str:
        counts = ", ".join(f"{t} {n}" for t, n in self.rows.items() if t != "meta")
        return f"{counts}; newest {self.newest or 'none'}"


def inspect(path: Path) -> LoggerCopy:
    """Check ``path`` is a sound logger database; raise LoggerRestoreError saying why not."""
    if not path.is_file():
        raise LoggerRestoreError(f"{path}: not found")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise LoggerRestoreError(f"{path}: cannot open ({exc})") from None
    try:
        ok = conn.execute("PRAGMA integrity_check").fetchone()
        if not ok or ok[0] != "ok":
            raise LoggerRestoreError(f"{path}: damaged ({ok[0] if ok else 'no answer'})")
        have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        lacking = [t for t in TABLES if t not in have]
        if lacking:
            raise LoggerRestoreError(
                f"{path}: not a data logger database (no {', '.join(lacking)} table)"
            )
        rows = {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}
        newest = conn.execute(
            "SELECT max(x) FROM (SELECT max(start) AS x FROM minute UNION ALL"
            " SELECT max(ts) FROM sample)"
        ).fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise LoggerRestoreError(f"{path}: not a database ({exc})") from None
    finally:
        conn.close()
    return LoggerCopy(rows, newest)


def _copy(src_path: Path, dest: Path, journal: str) -> None:
    tmp = dest.with_name(f".{dest.name}.partial")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst, pages=4096)
        dst.execute(f"PRAGMA journal_mode={journal}")
        dst.commit()
    finally:
        dst.close()
        src.close()
    with tmp.open("rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dest)


def backup(db_path: str | Path, dest: str | Path) -> LoggerCopy:
    """A consistent copy of the live logger database in ``dest``, checked."""
    db_path, dest = Path(db_path), Path(dest)
    if not db_path.is_file():
        raise FileNotFoundError(f"data logger database {db_path} not found")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _copy(db_path, dest, "DELETE")
    copy = inspect(dest)
    log.info("datalogger_backup_done", file=str(dest), newest=copy.newest)
    return copy


def restore(db_path: str | Path, source: str | Path, force: bool = False) -> Path | None:
    """Replace the live logger database with a checked backup; returns where the old one went."""
    db_path, source = Path(db_path), Path(source)
    new = inspect(source)
    kept: Path | None = None
    if db_path.is_file():
        try:
            cur = inspect(db_path)
        except LoggerRestoreError:
            cur = None  # a damaged live database is what a restore is for
        if cur is not None and not force and (cur.newest or "") > (new.newest or ""):
            raise LoggerRestoreError(
                f"backup {source} ends at {new.newest or 'nothing'} but the live data goes to"
                f" {cur.newest}: restoring would drop data (use --force to do it anyway);"
                " nothing replaced"
            )
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        kept = db_path.with_name(f"{db_path.name}.pre-restore-{stamp}")
        _copy(db_path, kept, "DELETE")
        for suffix in ("-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    else:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    _copy(source, db_path, "WAL")
    log.warning("datalogger_restored", source=str(source), kept=str(kept) if kept else None)
    return kept
