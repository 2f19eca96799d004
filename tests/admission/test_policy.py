"""Every admission rule and their precedence, table-driven."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from edged.admission.model import Approval, BlacklistEntry, GateRead, Vehicle, parse_stage
from edged.admission.policy import EmissionRule, PolicyConfig, decide, manual_open

TZ = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=TZ)
P = "冀A12345"
READ = GateRead(P, "yellow")
V5 = Vehicle(P, fuel="diesel", emission_stage="国5")
V4 = replace(V5, emission_stage="国4")
V6A = replace(V5, emission_stage="国6a")
EV = replace(V5, fuel="electric", emission_stage=None)
HAZ = replace(V5, hazardous=True)
BL = BlacklistEntry(P, "超标排放车辆", "市生态环境局")
BL_OLD = replace(BL, valid_until=NOW - timedelta(days=1))
AP = Approval(
    7, P, "抢修设备运输", "张三", "李四", NOW - timedelta(hours=1), NOW + timedelta(hours=1)
)
AP_USED = replace(AP, used=1, used_at=NOW - timedelta(minutes=5))
AP_LATER = replace(AP, valid_from=NOW + timedelta(hours=2), valid_until=NOW + timedelta(hours=3))
BASE = PolicyConfig()
HAZ_POLICY = PolicyConfig(hazardous_windows=["22:00-06:00"])

CASES = [
    # id, read, vehicle, blacklist, approval, alert, direction, policy, action, reason, approval_id
    ("stage_ok", READ, V5, None, None, "none", "in", BASE, "allow", "stage_ok", None),
    ("stage_below", READ, V4, None, None, "none", "in", BASE, "deny", "stage_below_minimum", None),
    (
        "orange_needs_6",
        READ,
        V5,
        None,
        None,
        "orange",
        "in",
        BASE,
        "deny",
        "stage_below_minimum",
        None,
    ),
    ("red_6a_ok", READ, V6A, None, None, "red", "in", BASE, "allow", "stage_ok", None),
    ("yellow_5_ok", READ, V5, None, None, "yellow", "in", BASE, "allow", "stage_ok", None),
    ("new_energy", READ, EV, None, None, "red", "in", BASE, "allow", "new_energy", None),
    (
        "missing_stage",
        READ,
        replace(V5, emission_stage=None),
        None,
        None,
        "none",
        "in",
        BASE,
        "hold",
        "stage_missing",
        None,
    ),
    ("unknown_hold", READ, None, None, None, "none", "in", BASE, "hold", "unknown_vehicle", None),
    (
        "unknown_deny",
        READ,
        None,
        None,
        None,
        "none",
        "in",
        PolicyConfig(unknown_action="deny"),
        "deny",
        "unknown_vehicle",
        None,
    ),
    (
        "unknown_flag",
        READ,
        None,
        None,
        None,
        "none",
        "in",
        PolicyConfig(unknown_action="allow_flag"),
        "allow",
        "unknown_vehicle",
        None,
    ),
    ("unread", GateRead(None), None, None, None, "none", "in", BASE, "hold", "unread", None),
    (
        "unread_deny",
        GateRead(None),
        None,
        None,
        None,
        "none",
        "in",
        PolicyConfig(unread_action="deny"),
        "deny",
        "unread",
        None,
    ),
    (
        "expired",
        READ,
        replace(V5, valid_until=NOW),
        None,
        None,
        "none",
        "in",
        BASE,
        "hold",
        "registration_expired",
        None,
    ),
    (
        "haz_outside",
        READ,
        HAZ,
        None,
        None,
        "none",
        "in",
        HAZ_POLICY,
        "deny",
        "hazardous_outside_window",
        None,
    ),
    (
        "haz_inside",
        READ,
        HAZ,
        None,
        None,
        "none",
        "in",
        PolicyConfig(hazardous_windows=["08:00-12:00"]),
        "allow",
        "stage_ok",
        None,
    ),
    ("haz_no_windows", READ, HAZ, None, None, "none", "in", BASE, "allow", "stage_ok", None),
    ("blacklist", READ, V6A, BL, None, "none", "in", BASE, "deny", "blacklisted", None),
    ("blacklist_expired", READ, V6A, BL_OLD, None, "none", "in", BASE, "allow", "stage_ok", None),
    # precedence: blacklist > approval (a plant cannot waive a regulator's list) ...
    (
        "blacklist_beats_approval",
        READ,
        V6A,
        BL,
        AP,
        "none",
        "in",
        BASE,
        "deny",
        "blacklisted",
        None,
    ),
    (
        "approval_overrides_bl_if_set",
        READ,
        V6A,
        BL,
        AP,
        "none",
        "in",
        PolicyConfig(approval_overrides_blacklist=True),
        "allow",
        "special_approval",
        7,
    ),
    # ... approval > every other rule, consumed only when it changed the outcome
    ("approval_over_stage", READ, V4, None, AP, "none", "in", BASE, "allow", "special_approval", 7),
    (
        "approval_over_unknown",
        READ,
        None,
        None,
        AP,
        "none",
        "in",
        BASE,
        "allow",
        "special_approval",
        7,
    ),
    (
        "approval_over_haz",
        READ,
        HAZ,
        None,
        AP,
        "none",
        "in",
        HAZ_POLICY,
        "allow",
        "special_approval",
        7,
    ),
    ("approval_not_needed", READ, V5, None, AP, "none", "in", BASE, "allow", "stage_ok", None),
    (
        "approval_used",
        READ,
        V4,
        None,
        AP_USED,
        "none",
        "in",
        BASE,
        "deny",
        "stage_below_minimum",
        None,
    ),
    (
        "approval_not_yet_valid",
        READ,
        V4,
        None,
        AP_LATER,
        "none",
        "in",
        BASE,
        "deny",
        "stage_below_minimum",
        None,
    ),
    (
        "approval_other_plate",
        READ,
        V4,
        None,
        replace(AP, plate="冀B99999"),
        "none",
        "in",
        BASE,
        "deny",
        "stage_below_minimum",
        None,
    ),
    (
        "unread_no_approval",
        GateRead(None),
        None,
        None,
        AP,
        "none",
        "in",
        BASE,
        "hold",
        "unread",
        None,
    ),
    # exit: record and open, even blacklisted; or the entry rules when configured
    ("exit_open", READ, V4, BL, None, "red", "out", BASE, "allow", "exit_open", None),
    (
        "exit_check",
        READ,
        V4,
        None,
        None,
        "none",
        "out",
        PolicyConfig(exit_mode="check"),
        "deny",
        "stage_below_minimum",
        None,
    ),
    # rule order: first match wins
    (
        "first_rule_wins",
        READ,
        V4,
        None,
        None,
        "none",
        "in",
        PolicyConfig(rules=[EmissionRule("国4", ["diesel"]), EmissionRule("国6b", ["diesel"])]),
        "allow",
        "stage_ok",
        None,
    ),
    (
        "class_filter",
        READ,
        replace(V4, vehicle_class="car"),
        None,
        None,
        "none",
        "in",
        PolicyConfig(rules=[EmissionRule("国5", ["diesel"], ["heavy_truck"])]),
        "allow",
        "no_restriction",
        None,
    ),
    (
        "6b_required",
        READ,
        V6A,
        None,
        None,
        "red",
        "in",
        PolicyConfig(rules=[EmissionRule("国6b", ["diesel"], alert_levels=["red"])]),
        "deny",
        "stage_below_minimum",
        None,
    ),
]


@pytest.mark.parametrize(
    "read,vehicle,black,approval,alert,direction,policy,action,reason,approval_id",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decide(
    read, vehicle, black, approval, alert, direction, policy, action, reason, approval_id
) -> None:
    d = decide(read, vehicle, black, approval, alert, NOW, direction, policy)
    assert (d.action, d.reason, d.approval_id) == (action, reason, approval_id)
    assert d.text_zh and d.text_en
    assert d.at == NOW


def test_display_texts() -> None:
    d = decide(READ, V4, None, None, "none", NOW, "in", BASE)
    assert "排放阶段不达标" in d.text_zh and "国5" in d.text_zh
    assert "emission stage below 国5" in d.text_en and "China IV" in d.text_en
    assert d.rule == "base"
    d = decide(READ, V4, None, AP, "none", NOW, "in", BASE)
    assert "特批放行" in d.text_zh and "overrode:stage_below_minimum" in d.flags
    d = decide(READ, V6A, BL, None, "none", NOW, "in", BASE)
    assert "超标排放车辆" in d.text_zh


def test_flags() -> None:
    assert (
        "unknown_vehicle"
        in decide(
            READ, None, None, None, "none", NOW, "in", PolicyConfig(unknown_action="allow_flag")
        ).flags
    )
    assert "blacklisted" in decide(READ, V5, BL, None, "none", NOW, "out", BASE).flags


def test_hazardous_window_crossing_midnight() -> None:
    for hour, action in [(21, "deny"), (22, "allow"), (3, "allow"), (6, "deny")]:
        now = NOW.replace(hour=hour)
        assert decide(READ, HAZ, None, None, "none", now, "in", HAZ_POLICY).action == action


@pytest.mark.parametrize(
    "text,stage",
    [
        ("国五", "国5"),
        ("国V", "国5"),
        ("China VI", "国6a"),
        ("国六b", "国6b"),
        ("6B", "国6b"),
        ("国Ⅳ", "国4"),
        ("0", "国0"),
        ("国6", "国6a"),
    ],
)
def test_parse_stage(text: str, stage: str) -> None:
    assert parse_stage(text) == stage


@pytest.mark.parametrize("text", ["国7", "5b", "", "euro"])
def test_parse_stage_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_stage(text)


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"^min_stage: "):
        EmissionRule("国9")
    with pytest.raises(ValueError, match=r"^fuels: "):
        EmissionRule("国5", ["coal"])
    with pytest.raises(ValueError, match=r"^alert_levels: "):
        EmissionRule("国5", alert_levels=["purple"])
    with pytest.raises(ValueError, match=r"^hazardous_windows: "):
        PolicyConfig(hazardous_windows=["8-18"])
    with pytest.raises(ValueError, match=r"^new_energy_fuels: "):
        PolicyConfig(new_energy_fuels=["wind"])


def test_manual_open_needs_operator_and_reason() -> None:
    d = manual_open("guard王", "消防车进厂", NOW, plate=P, remote=True)
    assert d.opens and d.reason == "remote_open" and d.operator == "guard王" and d.at == NOW
    with pytest.raises(ValueError, match=r"^reason: "):
        manual_open("guard王", "ok", NOW)
    with pytest.raises(ValueError, match=r"^operator: "):
        manual_open(" ", "消防车进厂", NOW)
