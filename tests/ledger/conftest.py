"""Ledger fixtures: a store in a temp dir and a factory of realistic passages."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from edged.ledger import Approval, LedgerStore, PassageRecord, Snapshot

CST = timezone(timedelta(hours=8))
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=CST)


def make_record(i: int = 0, **kw: object) -> PassageRecord:
    base: dict[str, object] = {
        "time": (T0 + timedelta(minutes=i)).isoformat(),
        "site": "hbsteel",
        "gate": "east",
        "direction": "in" if i % 2 == 0 else "out",
        "decision": "allow",
        "reason_code": "ok",
        "reason_zh": "准入",
        "reason_en": "admitted",
        "plate": f"冀B{10000 + i % 50:05d}",
        "plate_colour": "yellow",
        "vehicle_type": "重型半挂牵引车",
        "vin": f"LZZ1CLSB0KA{i:06d}",
        "fuel": "diesel",
        "emission_stage": "国五",
        "rfid_tag": f"E200{i:08X}",
        "weight_kg": 30000 + i,
        "cargo": "焦炭",
        "id_source": "plate+rfid",
        "id_confidence": 0.97,
    }
    base.update(kw)
    return PassageRecord(**base)  # type: ignore[arg-type]


def write_image(images: Path, rel: str, content: bytes) -> Snapshot:
    p = images / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content)
    return Snapshot(rel, hashlib.sha256(content).hexdigest())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LedgerStore]:
    s = LedgerStore(tmp_path / "ledger.db")
    yield s
    s.close()


__all__ = ["CST", "T0", "Approval", "make_record", "write_image"]
