"""Every change path of the registry reports who, what, and the before and after."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from edged.admission.model import BlacklistEntry, Nrmm, Vehicle
from edged.admission.registry import Registry
from tests.admission.photos import picture

TZ = timezone(timedelta(hours=8))
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=TZ)


class AuditLog:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, actor: str, action: str, details: dict[str, Any]) -> None:
        json.dumps(details, ensure_ascii=False)  # what the ledger will store must be JSON
        self.rows.append((actor, action, details))

    def last(self) -> tuple[str, str, dict[str, Any]]:
        return self.rows[-1]


@pytest.fixture
def log() -> AuditLog:
    return AuditLog()


@pytest.fixture
def reg(tmp_path: Path, log: AuditLog):
    r = Registry(tmp_path / "r.db", audit=log)
    yield r
    r.close()


def test_each_change_path_names_who_and_what(reg: Registry, log: AuditLog, tmp_path: Path) -> None:
    reg.upsert_vehicles([Vehicle("冀A12345", emission_stage="国5")], actor="a1")
    actor, action, d = log.last()
    assert (actor, action, d["count"], d["mode"]) == ("a1", "vehicles.upsert", 1, "upsert")
    assert d["changes"][0]["before"] is None and d["changes"][0]["after"]["emission_stage"] == "国5"
    reg.upsert_vehicles([Vehicle("冀A12345", emission_stage="国6b")], actor="a2")
    change = log.last()[2]["changes"][0]
    assert (change["before"]["emission_stage"], change["after"]["emission_stage"]) == (
        "国5",
        "国6b",
    )
    reg.apply("plant_vehicles", "upsert", [Vehicle("冀A0C001")], actor="a3")
    assert log.last()[:2] == ("a3", "plant_vehicles.upsert")
    assert log.last()[2]["changes"][0]["after"]["category"] == "in_plant"
    reg.apply("nrmm", "upsert", [Nrmm("HB1", emission_stage="x")], actor="a4")
    assert log.last()[:2] == ("a4", "nrmm.upsert")
    reg.attach_photos("HB1", {"nameplate": picture(tmp_path / "mp.jpg")}, "a5", machine=True)
    actor, action, d = log.last()
    assert (actor, action, d["key"], d["before"]) == ("a5", "machine.documents", "HB1", {})
    assert d["after"]["nameplate"] == hashlib.sha256((tmp_path / "mp.jpg").read_bytes()).hexdigest()
    reg.delete_machine("HB1", actor="a6")
    assert log.last()[:2] == ("a6", "machine.delete") and log.last()[2]["after"] is None
    reg.add_blacklist(BlacklistEntry("冀A12345", "超标排放车辆"), actor="a7")
    assert log.last()[2]["changes"][0]["after"]["reason"] == "超标排放车辆"
    reg.remove_blacklist("冀A12345", actor="a8")
    assert log.last()[:2] == ("a8", "blacklist.remove")
    assert log.last()[2]["before"]["reason"] == "超标排放车辆"
    a = reg.add_approval(
        "冀A12345", "抢修设备运输", "李四", "王五", NOW, NOW + timedelta(hours=1), actor="a9"
    )
    assert log.last()[:2] == ("a9", "approval.add")
    reg.consume_approval(a.id, "P-1", now=NOW)
    actor, action, d = log.last()
    assert (actor, action, d["before"], d["after"]) == (
        "gate",
        "approval.consume",
        {"used": 0, "uses": 1},
        {"used": 1, "uses": 1},
    )
    reg.set_alert_level("red", "a10", "市预警", now=NOW)
    assert log.last()[:2] == ("a10", "alert.set") and log.last()[2]["after"] == "red"
    d = reg.declare_cargo("冀A12345", "焦炭", NOW + timedelta(hours=2), "a11", uses=1, now=NOW)
    assert log.last()[:2] == ("a11", "cargo.declare")
    reg.consume_cargo(d.id, "P-2")
    assert log.last()[:2] == ("gate", "cargo.consume")
    reg.delete_vehicle("冀A12345", actor="a12")
    assert log.last()[:2] == ("a12", "vehicle.delete")
    reg.apply("vehicles", "delete", ["冀A0C001"], actor="a13")  # not a transport vehicle
    assert log.last()[2]["count"] == 0 and reg.get_vehicle("冀A0C001") is not None


def test_a_big_change_gives_counts_and_a_digest_not_every_record(
    reg: Registry, log: AuditLog
) -> None:
    many = [Vehicle(f"冀D{i:05d}") for i in range(21)]
    reg.upsert_vehicles(many[:20], actor="op")
    assert len(log.last()[2]["changes"]) == 20, "twenty are still listed one by one"
    reg.apply("vehicles", "replace", many, actor="op", source="mqtt")
    d = log.last()[2]
    assert "changes" not in d and (d["count"], d["removed"], d["mode"]) == (21, 0, "replace")
    assert len(d["sha256"]) == 64 and d["sha256_of"] == "the records applied, as JSON lines"
    reg.apply("vehicles", "replace", many[:1], actor="op", source="mqtt")
    assert (log.last()[2]["count"], log.last()[2]["removed"]) == (1, 20)
    assert len(json.dumps(log.last()[2])) < 300, "an audit row stays small"


def test_a_failing_audit_is_loud_and_counted(tmp_path: Path) -> None:
    def broken(*_a: Any) -> None:
        raise OSError("disk full")

    with Registry(tmp_path / "r.db", audit=broken) as reg:
        reg.upsert_vehicles([Vehicle("冀A12345")], actor="op")
        assert reg.get_vehicle("冀A12345") is not None, "the change itself is kept"
        assert reg.auditor.failures == ["vehicles.upsert: disk full"]
