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


def test_nonce_cache_is_persistent_and_forgets_only_behind_its_high_water_mark(
    tmp_path: Path,
) -> None:
    ob = Outbox(tmp_path / "o.db")
    assert ob.claim_nonce("abc", 1000, 300) == "new"
    assert ob.claim_nonce("abc", 1000, 300) == "seen"
    ob.close()
    ob = Outbox(tmp_path / "o.db")
    assert ob.claim_nonce("abc", 1000, 300) == "seen", "the cache survives a restart"
    assert ob.nonce_high_ts() == 1000
    # a newer command moves the mark: "abc" is forgotten, and its ts is refused as too old
    assert ob.claim_nonce("def", 1400, 300) == "new"
    assert ob.nonces_kept() == 1
    assert ob.claim_nonce("abc", 1000, 300) == "too_old"
    # inside the horizon, nonces stay: an older-but-recent command is still caught
    assert ob.claim_nonce("ghi", 1200, 300) == "new"
    assert ob.claim_nonce("ghi", 1200, 300) == "seen"
    assert ob.nonce_high_ts() == 1400, "an older command never moves the mark back"
    ob.close()
