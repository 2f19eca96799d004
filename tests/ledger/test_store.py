from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from edged.ledger import LedgerFullError, LedgerStore
from edged.ledger.chain import GENESIS_HASH, canonical, row_hash
from edged.ledger.store import LedgerError
from tests.ledger.conftest import make_record


def test_append_chains_rows_and_reports_heads(store: LedgerStore) -> None:
    assert store.heads()["passages"] == (0, GENESIS_HASH)
    s1, h1 = store.append_passage(make_record(0))
    s2, h2 = store.append_passage(make_record(1))
    assert (s1, s2) == (1, 2)
    assert h1 == row_hash(
        GENESIS_HASH,
        1,
        make_record(0).to_fields() | {"event_id": next(store.passages()).record.event_id},
    )
    assert store.heads()["passages"] == (2, h2)
    rows = list(store.passages())
    assert rows[1].prev_hash == h1


def test_durability_pragmas(store: LedgerStore) -> None:
    conn = store.raw_connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_rows_survive_reopen_and_chain_continues(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    with LedgerStore(db) as s:
        s.append_passage(make_record(0))
        s.append_audit("admin", "whitelist_add", {"plate": "冀B10000"})
    with LedgerStore(db) as s:
        seq, _ = s.append_passage(make_record(1))
        assert seq == 2
        assert s.heads()["audit"][0] == 1


def test_two_stores_on_one_file_keep_one_chain(tmp_path: Path) -> None:
    """The daemon and a short CLI process both append: SQLite's lock orders them."""
    db = tmp_path / "l.db"
    a, b = LedgerStore(db), LedgerStore(db)
    threads = [
        threading.Thread(target=lambda s=s: [s.append_passage(make_record(i)) for i in range(20)])
        for s in (a, b)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = [r.seq for r in a.passages()]
    assert seqs == list(range(1, 41))
    from edged.ledger.verify import verify_db

    assert verify_db(db).ok
    a.close()
    b.close()


def test_correction_is_new_row_plus_audit_entry(store: LedgerStore) -> None:
    store.append_passage(make_record(0, plate="冀B8888O"))
    store.append_correction(
        1, make_record(0, plate="冀B88880"), operator="guard-li", reason="misread O/0"
    )
    rows = list(store.passages())
    assert len(rows) == 2 and rows[0].record.plate == "冀B8888O"
    assert rows[1].record.correction_of == 1 and rows[1].record.operator == "guard-li"
    audit = list(store.audit_rows())
    assert len(audit) == 1 and '"action":"correction"' in audit[0][3] and "冀B88880" in audit[0][3]
    assert store.corrected_seqs() == {1}
    with pytest.raises(LedgerError, match="no passage with seq 99"):
        store.append_correction(99, make_record(0), operator="guard-li", reason="x")


def test_filters(store: LedgerStore) -> None:
    for i in range(10):
        store.append_passage(
            make_record(
                i, decision="deny" if i == 3 else "allow", fuel="electric" if i == 4 else "diesel"
            )
        )
    assert [r.seq for r in store.passages(decision="deny")] == [4]
    assert [r.seq for r in store.passages(fuel="electric")] == [5]
    assert [r.seq for r in store.passages(direction="out")] == [2, 4, 6, 8, 10]
    t = make_record(5).time
    from datetime import datetime

    start = datetime.fromisoformat(t).timestamp()
    assert [r.seq for r in store.passages(start=start, end=start + 120)] == [6, 7]


def test_events_keep_newest(tmp_path: Path) -> None:
    with LedgerStore(tmp_path / "l.db", events_keep=100) as s:
        for i in range(260):
            s.append_event("fault", "warning", f"fault {i}", port="/dev/ttyS1")
        ev = s.recent_events(500)
        assert 100 <= len(ev) <= 150
        assert ev[0].message == "fault 259" and ev[0].details == {"port": "/dev/ttyS1"}
    with pytest.raises(ValueError, match=r"^events_keep: "):
        LedgerStore(tmp_path / "x.db", events_keep=10)


def test_disk_full_raises_specific_error_and_chain_stays_whole(store: LedgerStore) -> None:
    conn = store.raw_connection()
    store.append_passage(make_record(0))
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    big = make_record(1, cargo="x" * 200_000)
    with pytest.raises(LedgerFullError, match="disk is full"):
        store.append_passage(big)
    conn.execute("PRAGMA max_page_count = 1000000")
    seq, _ = store.append_passage(make_record(2))
    assert seq == 2
    from edged.ledger.verify import verify_db

    assert verify_db(store.path).ok


def test_stored_text_is_canonical(store: LedgerStore) -> None:
    rec = make_record(0)
    store.append_passage(rec)
    raw = sqlite3.connect(store.path).execute("SELECT fields FROM passages").fetchone()[0]
    assert raw.encode() == canonical(rec.to_fields())
