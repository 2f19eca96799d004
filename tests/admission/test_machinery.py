"""Non-road machinery at the gate: identified by plate, code or tag, judged by its own rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from edged.admission.machinery import MachineryRule
from edged.admission.model import BlacklistEntry, GateRead, Nrmm, Vehicle
from edged.admission.policy import PolicyConfig, decide_read, resolve
from edged.admission.registry import Registry
from edged.config.load import parse

TZ = timezone(timedelta(hours=8))
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=TZ)
LOADER = Nrmm("HB130001", "装载机", "国3", "焦化厂", plate="冀A9999X", rfid_tags=("E3001",))
OLD = Nrmm("HB130002", "叉车", "国2", "焦化厂", rfid_tags=("E3002",))
NONE = Nrmm("HB130003", "叉车", "x", "焦化厂")
EV = Nrmm("HB130004", "叉车", None, "焦化厂", fuel="electric")
UNSTATED = Nrmm("HB130005", "挖掘机", None, "焦化厂")


@pytest.fixture
def reg(tmp_path: Path):
    r = Registry(tmp_path / "r.db")
    r.apply("nrmm", "upsert", [LOADER, OLD, NONE, EV, UNSTATED])
    r.upsert_vehicles([Vehicle("冀B12345", emission_stage="国6b", rfid_tags=("E2001",))])
    yield r
    r.close()


def _at(reg: Registry, level: str) -> None:
    reg.set_alert_level(level, "环保专员", now=NOW - timedelta(hours=1))


def test_a_machine_is_found_by_plate_code_or_tag(reg: Registry) -> None:
    snap = reg.snapshot()
    by_plate = resolve(GateRead("冀A9999X"), snap, NOW)
    by_code = resolve(GateRead("HB130002"), snap, NOW)
    by_tag = resolve(GateRead(None, rfid_tags=("E3002",)), snap, NOW)
    assert by_plate.machine == replace(LOADER, updated_at=by_plate.machine.updated_at)
    assert (by_plate.vehicle, by_plate.is_machine) == (None, True)
    assert by_code.machine.registry_no == "HB130002" and by_code.flags == ()
    assert by_tag.machine.registry_no == "HB130002" and by_tag.flags == ("identified_by_tag",)
    vehicle = resolve(GateRead("冀B12345"), snap, NOW)
    assert (vehicle.vehicle.plate, vehicle.machine, vehicle.is_machine) == ("冀B12345", None, False)
    swapped = resolve(GateRead("冀B12345", rfid_tags=("E3001",)), snap, NOW)
    assert swapped.flags == ("tag_plate_mismatch",), "a loader's tag on a truck is noticed"


@pytest.mark.parametrize(
    "level,machine,action,reason",
    [
        ("none", OLD, "allow", "no_restriction"),
        ("none", NONE, "allow", "no_restriction"),
        ("yellow", NONE, "allow", "no_restriction"),
        ("orange", LOADER, "allow", "machine_stage_ok"),
        ("orange", OLD, "deny", "machine_stage_below_minimum"),
        ("red", NONE, "deny", "machine_no_stage"),
        ("red", EV, "allow", "new_energy"),
        ("red", UNSTATED, "hold", "stage_missing"),
    ],
)
def test_machinery_rules_per_alert_level(
    reg: Registry, level: str, machine: Nrmm, action: str, reason: str
) -> None:
    _at(reg, level)
    d = decide_read(GateRead(machine.registry_no), reg.snapshot(), NOW, "in", PolicyConfig())
    assert (d.action, d.reason, d.alert_level, d.machine) == (
        action,
        reason,
        level,
        machine.registry_no,
    )
    if action == "deny":
        assert "需国3及以上" in d.text_zh and d.rule == "machinery_alert"


def test_a_machine_identified_by_tag_alone_is_decided_not_held_unread(reg: Registry) -> None:
    _at(reg, "red")
    d = decide_read(GateRead(None, rfid_tags=("E3002",)), reg.snapshot(), NOW, "in", PolicyConfig())
    assert (d.action, d.reason, d.plate, d.machine) == (
        "deny",
        "machine_stage_below_minimum",
        None,
        "HB130002",
    )


def test_approvals_blacklist_and_expiry_apply_to_machines(reg: Registry) -> None:
    _at(reg, "red")
    a = reg.add_approval(
        "HB130003",
        "抢修设备进厂",
        "张三",
        "李四",
        NOW - timedelta(hours=1),
        NOW + timedelta(hours=1),
    )
    d = decide_read(GateRead("HB130003"), reg.snapshot(), NOW, "in", PolicyConfig())
    assert (d.action, d.reason, d.approval_id) == ("allow", "special_approval", a.id)
    reg.add_blacklist(BlacklistEntry("冀A9999X", "冒黑烟被查处"))
    d = decide_read(GateRead("冀A9999X"), reg.snapshot(), NOW, "in", PolicyConfig())
    assert d.reason == "blacklisted"
    reg.apply("nrmm", "upsert", [replace(OLD, valid_until=NOW - timedelta(days=1))])
    _at(reg, "none")
    d = decide_read(GateRead("HB130002"), reg.snapshot(), NOW, "in", PolicyConfig())
    assert (d.action, d.reason) == ("hold", "registration_expired")


def test_machinery_rules_from_the_config() -> None:
    cfg = parse(
        "[policy]\n"
        "[[policy.machinery_rules]]\n"
        'min_stage = "国四"\nalert_levels = ["red"]\nname = "red_needs_4"\n'
        "[[policy.machinery_rules]]\n"
        'min_stage = "国二"\nname = "always_2"\n',
        "t.toml",
    )
    rules = cfg.policy.machinery_rules
    assert [(r.min_stage, r.alert_levels, r.name) for r in rules] == [
        ("国4", ["red"], "red_needs_4"),
        ("国2", [], "always_2"),
    ]
    assert PolicyConfig().machinery_rules == [
        MachineryRule(min_stage="国3", alert_levels=["orange", "red"], name="machinery_alert")
    ]
    with pytest.raises(Exception, match="min_stage") as err:
        parse('[policy]\n[[policy.machinery_rules]]\nmin_stage = "国五"\n', "t.toml")
    assert "t.toml:3" in str(err.value)
    with pytest.raises(Exception, match="x admits every machine"):
        parse('[policy]\n[[policy.machinery_rules]]\nmin_stage = "x"\n', "t.toml")
