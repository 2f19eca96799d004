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

from edged.ledger.attest import Attestation, read_known, sidecar_path
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
    with LedgerStore(db_path) as store:
        before = store.heads()
        store.append_audit(
            actor,
            "backup",
            {"file": dest.name, "passages_head": list(before["passages"])},
        )
    _copy(db_path, dest)
    res = verify_db(dest)
    if not res.ok:
        with LedgerStore(db_path) as store:
            store.append_audit(
                actor, "backup_unverified", {"file": dest.name, "problem": str(res.problem)}
            )
    log.info("backup_done", file=str(dest), ok=res.ok)
    return res


def c_heads(res: VerifyResult) -> dict[str, tuple[int, str]]:
    return {k: c.head for k, c in res.chains.items()}


def last_attestation(db_path: Path) -> Attestation | None:
    """The newest attestation the box knows: beside the ledger, or in the live ledger."""
    known = read_known([sidecar_path(db_path)])
    if db_path.is_file():
        with LedgerStore(db_path) as store:
            last = store.last_attestation()
        if last is not None:
            known.append(Attestation(*last))
    return max(known, key=lambda a: a.n, default=None)


def restore(
    db_path: str | Path, source: str | Path, force: bool = False, actor: str = "restore"
) -> Path | None:
    """Replace the live ledger with a verified backup. Returns where the old one was kept.

    A backup whose chains end before the box's last attestation would roll the
    ledger back past what the box already signed (and a backend archived): that
    needs ``force``, and the audit entry says it was forced and past which one.
    """
    db_path, source = Path(db_path), Path(source)
    res = verify_db(source, public_key=None)
    if not res.ok:
        raise RestoreError(f"backup {source} does not verify: {res.problem}; nothing replaced")
    new = c_heads(res)
    attested = last_attestation(db_path)
    behind = (
        [c for c, (seq, _h) in attested.heads.items() if new.get(c, (0, ""))[0] < seq]
        if attested is not None
        else []
    )
    if behind and not force:
        heads = ", ".join(f"{c} seq {attested.heads[c][0]}" for c in behind)  # type: ignore[union-attr]
        raise RestoreError(
            f"backup {source} is older than the box's last attestation ({attested.n},"  # type: ignore[union-attr]
            f" {attested.body.get('time')}: {heads}): restoring it would roll the ledger back"  # type: ignore[union-attr]
            " past what the box signed; use --force to do it anyway (audited); nothing replaced"
        )
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
    if behind and kept is not None and sidecar_path(db_path).is_file():
        # the restored ledger no longer reaches it: keep it with the ledger it attests
        os.replace(sidecar_path(db_path), sidecar_path(kept))
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
                "rolled_back_past_attestation": attested.n if behind and attested else None,
                "attestation_keys": attestation_keys(db_path),
            },
        )
    log.warning("ledger_restored", source=str(source), kept=str(kept) if kept else None)
    return kept


def attestation_keys(db_path: Path) -> list[str]:
    """The keys that signed the attestations a ledger holds (a restored one: its old box's)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        payloads = [r[0] for r in conn.execute("SELECT payload FROM attestations")]
    except sqlite3.OperationalError:
        payloads = []
    finally:
        conn.close()
    keys: list[str] = []
    for p in payloads:
        key = Attestation(0, p, "").body.get("key")
        if isinstance(key, str) and key not in keys:
            keys.append(key)
    return keys
