"""A ledger that proves itself: each way to lie with a shell on the box, and verify naming it.

Every case is done as someone with a shell would do it (plain sqlite3 on the file,
``rm`` on an image, an older backup put back) and judged by the real
``edged ledger verify`` / ``edged restore`` commands.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from edged.cli.main import main
from edged.devicekey import create, key_path, load, verify
from edged.ledger import LedgerStore
from edged.ledger.attest import Attestation, attest, message, sidecar_path
from edged.ledger.chain import canonical, hash_bytes
from edged.ledger.verify import verify_db
from tests.ledger.conftest import T0, make_record, write_image


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """A data directory as the daemon leaves it: ledger, images, device key, an attestation."""
    data = tmp_path / "data"
    images = data / "images"
    key, made = create(key_path(data))
    assert made
    with LedgerStore(data / "ledger.db") as s:
        for i in range(6):
            snap = write_image(images, f"2024/05/01/{i}.jpg", f"jpeg-{i}".encode())
            s.append_passage(make_record(i, snapshots=(snap,), decision="deny"))
        s.append_audit("admin", "whitelist_add", {"plate": "冀B00001"})
        attest(s, key, "hbsteel", "east")
    return data


def _verify(data: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    rc = main(
        [
            "ledger",
            "verify",
            "--db",
            str(data / "ledger.db"),
            "--images",
            str(data / "images"),
            *extra,
        ]
    )
    return rc, capsys.readouterr().out


def _sql(db: Path, *stmts: str) -> None:
    conn = sqlite3.connect(db)
    for stmt in stmts:
        conn.executescript(stmt)
    conn.commit()
    conn.close()


def test_untouched_box_verifies_with_its_attestation(
    box: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out = _verify(box, capsys)
    assert rc == 0, out
    assert "attestations: 1 checked against device key" in out
    assert "snapshots: 6 verified" in out


def test_device_key_is_private_idempotent_and_signs(box: Path) -> None:
    path = key_path(box)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    key = load(path)
    again, made = create(path)
    assert not made and again.public_hex == key.public_hex, "create never replaces a key"
    sig = key.sign(b"heads")
    assert verify(key.public_hex, b"heads", sig) and not verify(key.public_hex, b"heady", sig)
    os.chmod(path, 0o644)
    with pytest.raises(Exception, match="readable by others"):
        load(path)


def test_key_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d"
    assert main(["key", "create", "--data-dir", str(data)]) == 0
    first = capsys.readouterr().out
    assert first.startswith("created ") and "public key " in first
    assert main(["key", "create", "--data-dir", str(data)]) == 0
    assert capsys.readouterr().out.startswith("exists: ")
    assert main(["key", "show", "--data-dir", str(data)]) == 0
    shown = capsys.readouterr().out
    assert shown.strip() == first.splitlines()[1]


def test_schema_swap_with_plain_columns_is_named(
    box: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The finding: passages rebuilt with plain columns, decision='allow' on a row whose
    hashed text says deny, verified OK while queries and reports lied."""
    db = box / "ledger.db"
    _sql(
        db,
        """
        CREATE TABLE p2 (seq INTEGER PRIMARY KEY, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
            fields TEXT NOT NULL, ts REAL, plate TEXT, direction TEXT, decision TEXT,
            emission_stage TEXT, fuel TEXT, gate TEXT, correction_of INTEGER);
        INSERT INTO p2 SELECT seq, prev_hash, hash, fields, ts, plate, direction, decision,
            emission_stage, fuel, gate, correction_of FROM passages;
        DROP TABLE passages;
        ALTER TABLE p2 RENAME TO passages;
        UPDATE passages SET decision = 'allow' WHERE seq = 3;
        """,
    )
    with LedgerStore(db) as s:  # queries now lie
        assert [r.seq for r in s.passages(decision="allow")] == [3]
    rc, out = _verify(box, capsys)
    assert rc == 1
    assert "passages seq 3: column_mismatch" in out
    assert "decision 'allow' but the hashed text says 'deny'" in out
    assert "columns ts, plate, direction, decision" in out and "are stored" in out


def test_a_trigger_added_by_hand_is_named(box: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _sql(
        box / "ledger.db",
        "CREATE TRIGGER quiet AFTER INSERT ON audit BEGIN DELETE FROM events; END;",
    )
    rc, out = _verify(box, capsys)
    assert rc == 1 and "schema" in out and "trigger 'quiet' is not part of the ledger" in out


def test_forged_purge_is_named(box: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The finding: delete an image, insert a matching purged_images row: verified OK."""
    (box / "images" / "2024/05/01/2.jpg").unlink()
    _sql(
        box / "ledger.db",
        "INSERT INTO purged_images VALUES ('2024/05/01/2.jpg', NULL,"
        " '2024-12-01T00:00:00+08:00', 'age')",
    )
    rc, out = _verify(box, capsys)
    assert rc == 1
    assert "passages seq 3: purge_unrecorded" in out and "forged purge" in out


def test_purges_by_retention_are_chained_and_checked_for_age(
    box: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = box / "ledger.db"
    (box / "images" / "2024/05/01/0.jpg").unlink()
    (box / "images" / "2024/05/01/1.jpg").unlink()
    with LedgerStore(db) as s:
        s.record_purged_images([("2024/05/01/0.jpg", None)], "budget")
        s.record_purged_images([("2024/05/01/1.jpg", None)], "age")
        actions = [json.loads(f)["action"] for _q, _h, _p, f in s.audit_rows()]
    assert actions.count("images_purged") == 2, "each purge is a chained audit entry"
    # the age purge ran "now", years after the passage: fine; the budget one is early
    rc, out = _verify(box, capsys)
    assert rc == 0, out
    assert "2 removed by retention (1 early, for disk space)" in out
    # an 'age' purge of an image younger than the retention period is tampering
    (box / "images" / "2024/05/01/4.jpg").unlink()
    with LedgerStore(db) as s:
        s.append_audit(
            "retention",
            "images_purged",
            {
                "reason": "age",
                "images": [["2024/05/01/4.jpg", None, (T0 + timedelta(days=10)).isoformat()]],
            },
        )
    rc, out = _verify(box, capsys)
    assert rc == 1 and "passages seq 5: purge_too_young" in out and "183-day" in out


def _rebuild_chain(db: Path, seq: int, change: dict) -> None:
    """Edit a row and re-hash the whole chain after it, as someone who read docs/LEDGER.md."""
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT seq, fields FROM passages ORDER BY seq").fetchall()
    prev = "0" * 64
    for s, fields in rows:
        data = json.loads(fields)
        if s == seq:
            data.update(change)
        enc = canonical(data)
        digest = hash_bytes(prev, s, enc)
        conn.execute(
            "UPDATE passages SET prev_hash = ?, hash = ?, fields = ? WHERE seq = ?",
            (prev, digest, enc.decode(), s),
        )
        prev = digest
    conn.commit()
    conn.close()


def test_rebuilt_chain_is_named_by_the_attestation(
    box: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = box / "ledger.db"
    archived = box.parent / "archive.jsonl"  # what a backend kept from MQTT
    key = load(key_path(box))
    with LedgerStore(db) as s:
        archived.write_text(json.dumps(message(Attestation(*s.last_attestation()), key.public_hex)))
    _rebuild_chain(db, 2, {"decision": "allow"})
    assert verify_db(db).ok is False  # the attestation in the ledger catches it
    # ... and if the attestations are removed too, the one beside the ledger does
    _sql(db, "DELETE FROM attestations")
    rc, out = _verify(box, capsys)
    assert rc == 1 and "rebuilt" in out and "known from outside" in out
    # ... and if that is removed as well, the backend's archive does
    sidecar_path(db).unlink()
    rc, out = _verify(box, capsys, "--attestation", str(archived))
    assert rc == 1 and "passages seq 6: rebuilt" in out and "the chain was rebuilt" in out
    # without any attestation the rebuilt chain cannot be seen from the box alone
    rc, out = _verify(box, capsys)
    assert rc == 0


def test_restored_older_backup_is_refused_and_verify_names_the_rollback(
    box: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = box / "ledger.db"
    old = tmp_path / "old-backup.db"
    assert main(["backup", str(old), "--db", str(db)]) == 0
    key = load(key_path(box))
    with LedgerStore(db) as s:
        for i in range(6, 9):
            s.append_passage(make_record(i))
        attest(s, key, "hbsteel", "east")
    capsys.readouterr()
    # a technician (or an attacker) puts the older copy back over the ledger
    assert main(["restore", str(old), "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert "older than the box's last attestation" in err and "--force" in err
    # done by hand instead of by the command: verify names it
    shutil.copy(old, db)
    for extra in ("-wal", "-shm"):
        Path(str(db) + extra).unlink(missing_ok=True)
    rc, out = _verify(box, capsys)
    assert rc == 1 and "rollback" in out and "ends at seq" in out
    # forced through the command: done, and audited as a rollback past attestation 2
    shutil.copy(old, tmp_path / "again.db")
    assert main(["restore", str(tmp_path / "again.db"), "--db", str(db), "--force"]) == 0
    with LedgerStore(db) as s:
        last = json.loads(list(s.audit_rows())[-1][3])
    assert last["action"] == "restore" and last["details"]["forced"] is True


def test_exports_are_attested_and_checkable_from_the_stick_alone(
    box: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stick = tmp_path / "stick"
    stick.mkdir()
    assert main(["export", "--db", str(box / "ledger.db"), "--dest", str(stick)]) == 0
    (folder,) = (stick / "edged-export").iterdir()
    manifest = json.loads((folder / "MANIFEST.json").read_text(encoding="utf-8"))
    att = Attestation.from_json(json.loads((folder / "ATTESTATION.json").read_text()))
    assert manifest["attestation"] == att.to_json() and att.n == 2
    public = load(key_path(box)).public_hex
    assert att.signed_by(public), "the stick's attestation checks with the box's public key"
    rows = [json.loads(line) for line in (folder / "passages.jsonl").read_text().splitlines()]
    assert rows[-1]["hash"] == att.heads["passages"][1] and rows[-1]["seq"] == 6
    # by hand, and it comes out as the message the daemon publishes
    assert main(["ledger", "attest", "--db", str(box / "ledger.db")]) == 0
    published = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert published["n"] == 3 and published["public_key"] == public
    assert verify(public, published["payload"].encode(), published["sig"])
