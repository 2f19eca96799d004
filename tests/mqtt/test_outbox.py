from __future__ import annotations

from pathlib import Path

from edged.mqtt.outbox import Outbox


def _b(text: str):
    return lambda seq: f"{seq}:{text}".encode()


def test_fifo_ack_and_seq_survive_reopen(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    seqs = [ob.enqueue("t/p", _b(f"m{i}")) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    rows = ob.fetch(0, None, 3, skip={1})
    assert [r.seq for r in rows] == [2, 3, 4]
    assert rows[0].payload == b"2:m1"
    ob.ack([1, 2])
    assert len(ob) == 3
    ob.close()
    ob = Outbox(tmp_path / "o.db")
    assert [r.seq for r in ob.fetch(0, None, 10, set())] == [3, 4, 5]
    ob.ack([3, 4, 5])
    ob.close()
    ob = Outbox(tmp_path / "o.db")
    assert len(ob) == 0
    assert ob.enqueue("t/p", _b("next")) == 6, "seq must never be handed out twice"
    assert ob.stats()["backlog_bytes"] == len(b"6:next")


def test_size_limit_drops_oldest_telemetry_only(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", max_messages=100)
    for i in range(60):
        ob.enqueue("t/p", _b(f"ledger{i}"), durable=True)
    for i in range(60):
        ob.enqueue("t/s", _b(f"tele{i}"), durable=False)
    assert len(ob) == 100
    rows = ob.fetch(0, None, 1000, set())
    durable = [r for r in rows if r.topic == "t/p"]
    assert len(durable) == 60
    tele = [r.seq for r in rows if r.topic == "t/s"]
    assert tele == list(range(81, 121)), "the oldest telemetry goes first"
    rep = ob.take_drop_report()
    assert rep is not None and rep.count == 20 and rep.first_seq == 61 and rep.last_seq == 80
    assert ob.take_drop_report() is None
    assert ob.dropped_total == 20
    # only ledger messages left: over the limit, but nothing is dropped
    for i in range(50):
        ob.enqueue("t/p", _b(f"more{i}"), durable=True)
    assert sum(1 for r in ob.fetch(0, None, 10_000, set()) if r.topic == "t/p") == 110


def test_age_limit_drops_old_telemetry_and_persists_counter(tmp_path: Path) -> None:
    now = [1000.0]
    ob = Outbox(tmp_path / "o.db", max_age_s=60, clock=lambda: now[0])
    ob.enqueue("t/s", _b("old"), durable=False)
    ob.enqueue("t/p", _b("old ledger"), durable=True)
    now[0] = 1050.0
    ob.enqueue("t/s", _b("new"), durable=False)
    now[0] = 1070.0
    assert ob.prune_age() == 1
    assert [r.payload for r in ob.fetch(0, None, 10, set())] == [b"2:old ledger", b"3:new"]
    ob.close()
    assert Outbox(tmp_path / "o.db").dropped_total == 1


def test_nonce_cache_is_persistent_and_pruned(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    assert ob.nonce_seen_or_add("abc", 100.0) is False
    assert ob.nonce_seen_or_add("abc", 101.0) is True
    ob.close()
    ob = Outbox(tmp_path / "o.db")
    assert ob.nonce_seen_or_add("abc", 102.0) is True
    assert ob.prune_nonces(older_than=200.0) == 1
    assert ob.nonce_seen_or_add("abc", 300.0) is False
