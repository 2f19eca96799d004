"""Backup on a running box, restore on that box (stopped) and on a fresh one: verified, audited."""

from __future__ import annotations

import json
from pathlib import Path

from edged.cli.main import main
from edged.devicekey import key_path, load
from edged.ledger import LedgerStore
from edged.ledger.backup import attestation_keys
from tests.box_rig import base_toml, passage, running_box

PARTS = ["ledger", "registry", "main.gpio", "main.worker"]


def config(tmp_path: Path, name: str) -> Path:
    """A config file for the CLI that names the same data directory as the box under test."""
    path = tmp_path / name
    path.write_text(base_toml(tmp_path if name == "box.toml" else tmp_path / "fresh"))
    return path


def audit(db: Path) -> list[dict]:
    with LedgerStore(db) as s:
        return [json.loads(r[3]) for r in s.audit_rows()]


def test_backup_of_a_running_box_restores_there_and_on_a_fresh_box(tmp_path: Path, capsys) -> None:
    cfg = config(tmp_path, "box.toml")
    bak = tmp_path / "bak" / "ledger.bak"
    with running_box(tmp_path, "", PARTS) as box:
        for plate in ("冀B12345", "冀B22222", None):
            passage(box, plate)
        box.attest()
        key = box.ctx.ledger_service.device_key.public_hex
        assert main(["--config", str(cfg), "backup", str(bak)]) == 0
    db = tmp_path / "data" / "ledger.db"
    assert audit(db)[-1]["action"] == "backup"  # the backup holds its own audit entry

    # the same box, stopped: the backup is where the ledger stands, so it restores
    assert main(["--config", str(cfg), "restore", str(bak)]) == 0, capsys.readouterr().err
    assert audit(db)[-1]["action"] == "restore"
    assert main(["--config", str(cfg), "ledger", "verify"]) == 0
    out = capsys.readouterr().out
    assert "OK: ledger unaltered" in out and f"device key {key[:16]}" in out
    with LedgerStore(db) as s:
        assert s.heads()["passages"][0] == 3

    # a fresh box (a replacement board, its own key) takes the old box's ledger
    fresh_cfg = config(tmp_path, "fresh.toml")
    fresh = tmp_path / "fresh" / "data"
    assert main(["key", "create", "--data-dir", str(fresh)]) == 0
    new_key = load(key_path(fresh)).public_hex
    assert new_key != key
    assert main(["--config", str(fresh_cfg), "restore", str(bak)]) == 0
    entry = audit(fresh / "ledger.db")[-1]
    assert entry["action"] == "restore" and entry["details"]["attestation_keys"] == [key]
    capsys.readouterr()
    assert main(["--config", str(fresh_cfg), "ledger", "verify"]) == 0
    assert "OK: ledger unaltered" in capsys.readouterr().out
    # and it carries on: a passage on the fresh box, attested with its own key
    with running_box(tmp_path / "fresh", "", PARTS) as box:
        passage(box, "冀B33333")
        box.attest()
    assert main(["--config", str(fresh_cfg), "ledger", "verify"]) == 0
    assert attestation_keys(fresh / "ledger.db") == [key, new_key]


def test_an_attestation_by_a_key_nobody_handed_over_still_fails(tmp_path: Path, capsys) -> None:
    cfg = config(tmp_path, "box.toml")
    with running_box(tmp_path, "", PARTS) as box:
        passage(box, "冀B12345")
        box.attest()
    other = tmp_path / "other"
    assert main(["key", "create", "--data-dir", str(other)]) == 0
    capsys.readouterr()
    argv = ["--config", str(cfg), "ledger", "verify", "--public-key"]
    assert main([*argv, load(key_path(other)).public_hex]) == 1
    assert "attestation_invalid" in capsys.readouterr().out
