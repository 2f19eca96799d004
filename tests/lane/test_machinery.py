"""Machinery and in-plant vehicles at the gate: known by tag or code, recorded with their own fields.

A loader without a plate is known by its windscreen tag; the row says it is
machinery, names it by its registry code and says why it has no plate. A
cargo declaration good for one passage is used by the first allowed one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from edged.admission.model import Nrmm, Vehicle
from tests.box_rig import passage, running_box

LOADER_TAG = "E2003412B802011566660004"
BOX = """
[camera]
type = "none"
[mqtt]
enabled = false
"""


def test_a_machine_without_a_plate_is_known_by_its_tag_and_recorded_as_machinery(
    tmp_path: Path,
) -> None:
    with running_box(tmp_path, BOX) as box:
        box.registry.apply(
            "nrmm",
            "upsert",
            [
                Nrmm(
                    "HB130203001",
                    machine_type="装载机",
                    emission_stage="国3",
                    owner="演示钢铁有限公司",
                    env_code="130203CX2019000123456789",
                    made_on="2019-05-06",
                    rfid_tags=(LOADER_TAG,),
                )
            ],
            actor="test",
        )
        out = passage(box, None, tags=(LOADER_TAG,))
    row = out.record
    assert (row["category"], row["plate"], row["id_source"]) == ("machinery", None, "rfid")
    assert row["machinery"]["registry_no"] == "HB130203001"
    assert (row["emission_stage"], row["stage_code"], row["vehicle_type"]) == ("国3", "3", "装载机")
    assert "unknown_tag" not in row["flags"] and row["rfid_tag"] == LOADER_TAG
    assert row["missing"]["plate"] == "a machine without a plate: see its registry code"
    assert row["missing"]["vin"] == "not a field of the machinery table"
    assert out.decision == "allow" and row["reason_zh"] == "非道路移动机械，放行"


def test_an_in_plant_vehicle_uses_its_cargo_declaration_once(tmp_path: Path) -> None:
    now = datetime.now().astimezone()
    with running_box(tmp_path, BOX) as box:
        box.registry.apply(
            "plant_vehicles",
            "upsert",
            [Vehicle("冀B0C001", emission_stage="国6b", fleet="厂内运输队", cargo="铁水渣")],
            actor="test",
        )
        box.registry.declare_cargo("冀B0C001", "焦炭", now + timedelta(hours=1), "物流系统", uses=1)
        first = passage(box, "冀B0C001").record
        second = passage(box, "冀B0C001").record
    assert (first["category"], first["fleet"]) == ("in_plant", "厂内运输队")
    assert first["cargo"] == "焦炭"  # declared for one passage
    assert second["cargo"] == "铁水渣"  # then the vehicle's usual cargo again
