"""A lane without a camera (RFID or guard only) runs ``edged run`` with no plate models.

Also the hand-over from ledger to outbox: a row committed just before a
kill (the relay pulse sits between the two commits) must still be sent.
"""

from __future__ import annotations

from pathlib import Path

from edged.ledger.record import PassageRecord
from edged.ledger.store import LedgerStore
from tests.broker import Mosquitto
from tests.reliability.daemon import Collector, Instance, event_ids


def test_camera_none_starts_without_models_and_records_passages(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    gate = Instance(tmp_path / "gate", mosquitto.port)  # camera none, model_dir has no models
    assert not (tmp_path / "gate" / "no-models").exists()
    collector = Collector(mosquitto.port).start()
    try:
        gate.start()
        status = gate.status()
        assert "camera" not in status["components"] and "recognizer" not in status["components"]
        assert all(c["state"] == "running" for c in status["components"].values()), status
        reply = gate.passage("冀B12345")
        assert reply["ok"] and reply["seq"] == 1 and reply["decision"] == "allow", reply
        unread = gate.passage(None)  # no plate and no tag: the guard decides
        assert unread["ok"] and unread["plate"] is None and unread["decision"] == "hold"
        missing = collector.wait_for({(gate.site, gate.gate): event_ids(gate.ledger_rows())}, 20)
        assert gate.stop() == 0, gate.log_tail()
    finally:
        if gate.running:
            gate.kill()
        collector.stop()
    assert not missing
    assert "no-models" not in gate.log_text()


def test_row_committed_before_a_kill_is_sent_at_next_start(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    gate = Instance(tmp_path / "gate", mosquitto.port)
    collector = Collector(mosquitto.port).start()
    try:
        gate.start()
        assert gate.passage("冀B12345")["ok"]
        gate.kill()
        # What a kill between the ledger commit and the outbox leaves: a row no
        # message carries. (The store extends the chain like any second writer.)
        with LedgerStore(gate.ledger_path) as store:
            seq, _ = store.append_passage(
                PassageRecord(
                    time="2026-01-05T08:00:00.000+08:00",
                    site=gate.site,
                    gate=gate.gate,
                    direction="in",
                    decision="allow",
                    reason_code="stage_ok",
                    plate="冀A8K302",
                )
            )
        assert seq == 2
        gate.start()
        ids = event_ids(gate.ledger_rows())
        missing = collector.wait_for({(gate.site, gate.gate): ids}, 20)
        assert gate.stop() == 0, gate.log_tail()
    finally:
        if gate.running:
            gate.kill()
        collector.stop()
    assert len(ids) == 2 and not missing, missing
    assert "event=mqtt_passages_requeued" in gate.log_text()
