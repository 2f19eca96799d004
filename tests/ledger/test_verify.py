"""Tamper a COPY of a real ledger with plain sqlite3 and check verify names the first bad row."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from edged.ledger import LedgerStore
from edged.ledger.chain import hash_bytes
from edged.ledger.verify import verify_db
from tests.ledger.conftest import make_record, write_image


@pytest.fixture
def ledger(tmp_path: Path) -> tuple[Path, Path]:
    db, images = tmp_path / "orig" / "ledger.db", tmp_path / "images"
    with LedgerStore(db) as s:
        for i in range(10):
            snap = write_image(images, f"2024/05/01/{i}.jpg", f"jpeg-{i}".encode())
            s.append_passage(make_record(i, snapshots=(snap,)))
        for i in range(4):
            s.append_audit("admin", "whitelist_add", {"plate": f"冀B{i}"})
    return db, images


def tamper(db: Path, tmp_path: Path, *sql: str, params: tuple = ()) -> Path:
    copy = tmp_path / "copy.db"
    src = sqlite3.connect(db)
    dst = sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    for stmt in sql:
        dst.execute(stmt, params if "?" in stmt else ())
    dst.commit()
    dst.close()
    return copy


def test_untouched_ledger_verifies_with_images(ledger: tuple[Path, Path]) -> None:
    db, images = ledger
    res = verify_db(db, images)
    assert res.ok, res.problem
    assert res.chains["passages"].rows == 10 and res.chains["audit"].rows == 4
    assert res.images_checked == 10


def test_edited_field(ledger, tmp_path) -> None:
    copy = tamper(
        ledger[0],
        tmp_path,
        "UPDATE passages SET fields = replace(fields, '国五', '国六') WHERE seq = 4",
    )
    p = verify_db(copy).problem
    assert (p.chain, p.seq, p.kind) == ("passages", 4, "edited")


def test_edited_and_rehashed_is_caught_at_the_link(ledger, tmp_path) -> None:
    conn = sqlite3.connect(ledger[0])
    prev, fields = conn.execute("SELECT prev_hash, fields FROM passages WHERE seq = 4").fetchone()
    conn.close()
    new_fields = fields.replace("国五", "国六")
    new_hash = hash_bytes(prev, 4, new_fields.encode())
    copy = tamper(
        ledger[0],
        tmp_path,
        "UPDATE passages SET fields = ?, hash = ? WHERE seq = 4",
        params=(new_fields, new_hash),
    )
    p = verify_db(copy).problem
    assert (p.seq, p.kind) == (4, "edited") and "re-hashed" in p.message


def test_deleted_row(ledger, tmp_path) -> None:
    copy = tamper(ledger[0], tmp_path, "DELETE FROM passages WHERE seq = 5")
    p = verify_db(copy).problem
    assert (p.seq, p.kind) == (5, "deleted")


def test_deleted_audit_row(ledger, tmp_path) -> None:
    copy = tamper(ledger[0], tmp_path, "DELETE FROM audit WHERE seq = 2")
    p = verify_db(copy).problem
    assert (p.chain, p.seq, p.kind) == ("audit", 2, "deleted")


def test_inserted_row_with_forged_valid_hash(ledger, tmp_path) -> None:
    """The forger knows the algorithm: shifts rows 5.. up and hashes his row correctly."""
    conn = sqlite3.connect(ledger[0])
    h4, fields = conn.execute("SELECT hash, fields FROM passages WHERE seq = 4").fetchone()
    conn.close()
    forged = fields.replace("冀B", "晋A")
    copy = tamper(
        ledger[0],
        tmp_path,
        "UPDATE passages SET seq = seq + 1000 WHERE seq >= 5",
        "UPDATE passages SET seq = seq - 999 WHERE seq > 1000",
        "INSERT INTO passages(seq, prev_hash, hash, fields) VALUES (5, ?, ?, ?)",
        params=(h4, hash_bytes(h4, 5, forged.encode()), forged),
    )
    p = verify_db(copy).problem
    assert (p.seq, p.kind) == (5, "inserted")


def test_inserted_row_with_junk_hash(ledger, tmp_path) -> None:
    copy = tamper(
        ledger[0],
        tmp_path,
        "UPDATE passages SET seq = seq + 1000 WHERE seq >= 5",
        "UPDATE passages SET seq = seq - 999 WHERE seq > 1000",
        "INSERT INTO passages(seq, prev_hash, hash, fields) SELECT "
        "5, hash, 'f00d', fields FROM passages WHERE seq = 4",
    )
    p = verify_db(copy).problem
    assert (p.seq, p.kind) == (5, "inserted")


def test_reordered_rows(ledger, tmp_path) -> None:
    copy = tamper(
        ledger[0],
        tmp_path,
        "UPDATE passages SET seq = -1 WHERE seq = 6",
        "UPDATE passages SET seq = 6 WHERE seq = 7",
        "UPDATE passages SET seq = 7 WHERE seq = -1",
    )
    p = verify_db(copy).problem
    assert (p.seq, p.kind) == (6, "reordered") and "written as seq 7" in p.message


def test_image_replaced(ledger) -> None:
    db, images = ledger
    (images / "2024/05/01/3.jpg").write_bytes(b"photoshopped")
    p = verify_db(db, images).problem
    assert (p.seq, p.kind) == (4, "image_mismatch")


def test_image_missing_vs_purged(ledger) -> None:
    db, images = ledger
    (images / "2024/05/01/2.jpg").unlink()
    p = verify_db(db, images).problem
    assert (p.seq, p.kind) == (3, "image_missing")
    with LedgerStore(db) as s:
        s.record_purged_image("2024/05/01/2.jpg", None, "age")
    res = verify_db(db, images)
    assert res.ok and res.images_purged == 1


def test_tail_truncation_only_seen_against_published_head(ledger, tmp_path) -> None:
    with LedgerStore(ledger[0]) as s:
        heads = s.heads()
    copy = tamper(ledger[0], tmp_path, "DELETE FROM passages WHERE seq = 10")
    assert verify_db(copy).ok
    p = verify_db(copy, expect_heads={"passages": heads["passages"]}).problem
    assert (p.seq, p.kind) == (10, "truncated")


def test_missing_db_is_a_problem_not_a_crash(tmp_path) -> None:
    assert verify_db(tmp_path / "nope.db").problem.kind == "unreadable"


def test_garbage_file_is_a_problem_not_a_crash(tmp_path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database" * 100)
    assert verify_db(bad).problem.kind == "unreadable"
    shutil.rmtree(tmp_path / "orig", ignore_errors=True)
