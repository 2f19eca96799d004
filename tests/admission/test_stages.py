"""Emission stages as registries write them, and the national table's one-character code."""

from __future__ import annotations

import pytest

from edged.admission.model import Nrmm, Vehicle
from edged.admission.stages import national_stage, parse_machine_stage, parse_stage, stage_rank


@pytest.mark.parametrize(
    "stage,fuel,code",
    [
        ("国0", "diesel", "0"),
        ("国3", "diesel", "3"),
        ("国5", "gas", "5"),
        ("国6a", "diesel", "6"),
        ("国6b", "petrol", "6"),
        ("国6b", "hybrid", "6"),  # a hybrid has an engine and its stage
        (None, "electric", "d"),
        ("国6b", "electric", "d"),
        (None, "hydrogen", "d"),
        ("x", "diesel", "x"),
        (None, "diesel", None),  # unknown stays unknown: the row says so, nothing is guessed
    ],
)
def test_national_stage_code(stage: str | None, fuel: str, code: str | None) -> None:
    assert national_stage(stage, fuel) == code


def test_records_give_their_national_code() -> None:
    assert Vehicle("冀A12345", emission_stage="国6b").national_stage == "6"
    assert Vehicle("京AD12345", fuel="electric").national_stage == "d"
    assert Nrmm("HB1", emission_stage="x").national_stage == "x"
    assert Nrmm("HB1", emission_stage="国3").national_stage == "3"
    assert Nrmm("HB1").national_stage is None


@pytest.mark.parametrize(
    "text,stage",
    [("国三", "国3"), ("国四", "国4"), ("国一", "国1"), ("III", "国3"), ("非道路国二", "国2")]
    + [(t, "x") for t in ("x", "X", "无", "无排放阶段", "-")],
)
def test_machine_stages(text: str, stage: str) -> None:
    assert parse_machine_stage(text) == stage


@pytest.mark.parametrize("text", ["国五", "国6", "国0", "国九", "stage V"])
def test_machine_stages_refuse_road_stages_and_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match=r"国一\.\.国四|x for"):
        parse_machine_stage(text)


def test_no_stage_ranks_below_every_stage() -> None:
    assert stage_rank("x") < stage_rank("国0") < stage_rank("国3") < stage_rank(parse_stage("6b"))
