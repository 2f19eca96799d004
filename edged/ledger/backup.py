"""Online backup and verified restore.

Backup uses SQLite's backup API, which copies a consistent snapshot while
the daemon keeps writing; the copy is switched out of WAL mode so it is one
self-contained file. Restore verifies the backup's chains first and refuses
to go backwards (a backup older than the live ledger would silently drop
rows) unless forced; the live database is copied aside before it is
overwritten, and the restore itself is an audit entry.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from pathlib import Path

from edged.ledger.store import LedgerStore
from edged.ledger.verify import VerifyResult, verify_db
from edged.logs import get_logger

log = get_logger("ledger")


class RestoreError(Exception):
    """The restore was refused; the live ledger is unchanged."""


def _copy(src_path: Path, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.partial")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst, pages=4096)
        dst.execute("PRAGMA journal_mode=DELETE")
        dst.commit()
    finally:
        dst.close()
        src.close()
    with tmp.open("rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dest)


def backup(db_path: str | Path, dest: str | Path, actor: str = "backup") -> VerifyResult:
    """Consistent copy of a live ledger into ``dest``; returns the copy's verification."""
    db_path, dest = Path(db_path), Path(dest)
    if not db_path.is_file():
        raise FileNotFoundError(f"--db: ledger {db_path} not found")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _copy(db_path, dest)
    res = verify_db(dest)
    with LedgerStore(db_path) as store:
        store.append_audit(
            actor,
            "backup",
            {
                "file": dest.name,
                "heads": {k: list(v) for k, v in (c_heads(res)).items()},
                "ok": res.ok,
            },
        )
    log.info("backup_done", file=str(dest), ok=res.ok)
    return res


def c_heads(res: VerifyResult) -> dict[str, tuple[int, str]]:
    return {k: c.head for k, c in res.chains.items()}


def restore(
    db_path: str | Path, source: str | Path, force: bool = False, actor: str = "restore"
) -> Path | None:
    """Replace the live ledger with a verified backup. Returns where the old one was kept."""
    db_path, source = Path(db_path), Path(source)
    res = verify_db(source)
    if not res.ok:
        raise RestoreError(f"backup {source} does not verify: {res.problem}; nothing replaced")
    new = c_heads(res)
    kept: Path | None = None
    if db_path.is_file():
        cur = verify_db(db_path)
        old = c_heads(cur) if cur.ok else {}
        if cur.ok and not force:
            for chain in ("passages", "audit"):
                if new[chain][0] < old[chain][0]:
                    raise RestoreError(
                        f"backup ends at {chain} seq {new[chain][0]} "
                        f"but the live ledger has {old[chain][0]}: "
                        "restoring would drop rows (use --force to do it anyway); nothing replaced"
                    )
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        kept = db_path.with_name(f"{db_path.name}.pre-restore-{stamp}")
        _copy(db_path, kept)
    else:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(db_path)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")
    finally:
        dst.close()
        src.close()
    with LedgerStore(db_path) as store:
        store.append_audit(
            actor,
            "restore",
            {
                "file": source.name,
                "heads": {k: list(v) for k, v in new.items()},
                "previous_kept_as": kept.name if kept else None,
                "forced": force,
            },
        )
    log.warning("ledger_restored", source=str(source), kept=str(kept) if kept else None)
    return kept
