"""The reference consumer (contrib/edged_consumer.py) against a real gate and a real broker."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contrib.edged_consumer import Consumer, SeqTracker, Settings, ranges, signed_command
from edged.cli.main import main
from edged.mqtt.commands import make_command
from tests.box_rig import passage, running_box
from tests.broker import Mosquitto
from tests.mqtt.helpers import PersistentMosquitto, wait_until

KEY = "consumer-site-key-0123456789"


def _gate_toml(port: int) -> str:
    return (
        '[camera]\ntype = "none"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nhmac_key = "{KEY}"\n'
        "reconnect_min_s = 1\nreconnect_max_s = 1\n"
    )


def _consumer(tmp_path: Path, port: int, **kw: Any) -> Consumer:
    settings = Settings(
        port=port,
        site="p1",
        key=KEY,
        db=str(tmp_path / "backend.db"),
        archive=str(tmp_path / "archive"),
        **{"grace_s": 2.0, "resend_every_s": 5.0, **kw},
    )
    consumer = Consumer(settings)
    consumer.start()
    return consumer


def _rows(tmp_path: Path) -> list[tuple[int, str]]:
    db = sqlite3.connect(tmp_path / "backend.db")
    try:
        return db.execute("SELECT ledger_seq, hash FROM passages ORDER BY ledger_seq").fetchall()
    finally:
        db.close()


@pytest.fixture
def persistent_broker(tmp_path: Path) -> Iterator[PersistentMosquitto]:
    broker = PersistentMosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.cleanup()


def test_every_passage_exactly_once_through_a_broker_restart_and_no_gap(
    tmp_path: Path, persistent_broker: PersistentMosquitto
) -> None:
    consumer = _consumer(tmp_path, persistent_broker.port)
    try:
        assert wait_until(lambda: consumer.client.is_connected(), 10)
        with running_box(tmp_path, _gate_toml(persistent_broker.port)) as box:
            assert wait_until(lambda: box.mqtt.listening, 10)
            plates = [f"冀B{10000 + i}" for i in range(15)]
            for plate in plates[:5]:
                passage(box, plate=plate)
            persistent_broker.stop()  # the broker goes away with messages on the way
            for plate in plates[5:10]:
                passage(box, plate=plate)  # they wait in the gate's outbox
            persistent_broker.start()
            for plate in plates[10:]:
                passage(box, plate=plate)
            box.publish_heads()
            box.attest()
            held = [(r.seq, r.hash) for r in box.ledger.passages()]
            assert wait_until(lambda: _rows(tmp_path) == held, 30), _rows(tmp_path)
            assert wait_until(lambda: (tmp_path / "archive" / "p1-g1.jsonl").is_file(), 10)
            # every hole past its grace would be a gap by now
            consumer.tick()
            assert wait_until(lambda: not consumer.gates[("p1", "g1")].messages.holes(), 10)
        assert len(held) == 15
        assert consumer.store.gaps() == [], "a gap was reported"
        g = consumer.gates[("p1", "g1")]
        assert g.rows.floor == 15 and not g.rows.holes()
    finally:
        consumer.stop()
    # the archive is what edged ledger verify reads
    db = tmp_path / "data" / "ledger.db"
    archive = tmp_path / "archive" / "p1-g1.jsonl"
    assert main(["ledger", "verify", "--db", str(db), "--attestation", str(archive)]) == 0


def test_missing_rows_are_asked_for_with_a_signed_resend_and_arrive(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """Rows published while no backend listened (a broker without persistence drops them)
    are found from the retained ledger head, asked for, and stored; the gap closes."""
    with running_box(tmp_path, _gate_toml(mosquitto.port)) as box:
        assert wait_until(lambda: box.mqtt.listening, 10)
        for plate in ("冀B10001", "冀B10002", "冀B10003"):
            passage(box, plate=plate)
        box.publish_heads()
        assert wait_until(lambda: box.mqtt.status()["backlog"] == 0, 10)
        consumer = _consumer(tmp_path, mosquitto.port, backfill_from=1, grace_s=0.5)
        try:
            held = [(r.seq, r.hash) for r in box.ledger.passages()]
            assert wait_until(lambda: _rows(tmp_path) == held, 20), consumer.store.gaps()
            # the gate sends the rows before its reply to the command that asked for them
            assert wait_until(lambda: consumer.replies, 10), "no reply to the resend command"
            assert consumer.replies[0]["ok"] is True
            assert consumer.replies[0]["result"] == {"resent": 3}
            assert wait_until(lambda: not consumer.store.gaps(open_only=True), 5)
            (gap,) = consumer.store.gaps()
            assert (gap["kind"], gap["first"], gap["last"]) == ("ledger_seq", 1, 3)
            assert gap["resend_asked"] is not None and gap["closed"] is not None
            audit = [json.loads(f) for _s, _h, _p, f in box.ledger.audit_rows()]
            assert any(
                a["action"] == "mqtt_command_accepted" and a["actor"] == "edged-consumer"
                for a in audit
            ), "the resend was not signed as the consumer"
        finally:
            consumer.stop()


def test_signed_commands_are_the_gates_own() -> None:
    params = {"from_seq": 1, "to_seq": 3}
    ours = signed_command(
        KEY, "p1", "g1", "resend", params, "ops", ts=1, nonce="n" * 16, cmd_id="c"
    )
    theirs = make_command(KEY, "p1", "g1", "resend", params, actor="ops", ts=1, nonce="n" * 16)
    assert ours == {**theirs, "id": "c"}


def test_holes_wait_out_their_grace_and_dropped_telemetry_is_no_hole() -> None:
    t = SeqTracker(grace_s=10)
    assert t.see(5, now=0) and t.floor == 5  # the first number seen starts the count
    assert t.see(8, now=1) and t.holes() == [6, 7] and t.overdue(5) == []
    assert not t.see(8, now=2) and not t.see(3, now=2)  # duplicate; before the count
    assert t.overdue(11) == [6, 7]
    t.see(6, now=12)
    t.explain(7, 7)  # the gate said it dropped it
    assert t.holes() == [] and t.floor == 8
    t.expect_up_to(10, now=20)  # a ledger head past what arrived
    assert t.holes() == [9, 10] and ranges(t.holes()) == [(9, 10)]
    assert ranges([1, 2, 3, 7, 9, 10]) == [(1, 3), (7, 7), (9, 10)]
    fresh = SeqTracker(grace_s=1)
    fresh.expect_up_to(100, now=0)  # a head before any row: nothing is wanted yet
    assert fresh.holes() == []
