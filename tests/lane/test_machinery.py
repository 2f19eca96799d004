"""Machinery and in-plant vehicles at the gate: known by tag or code, recorded with their own fields.

A loader without a plate is known by its windscreen tag; the row says it is
machinery, names it by its registry code and says why it has no plate. A
cargo declaration good for one passage is used by the first allowed one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from edged.admission.model import Nrmm, Vehicle
from edged.ledger.trips import Trips
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
        # in the plant now, under its registry code, also for an index rebuilt at start
        inside = box.ctx.trips.status()["vehicles"]
        assert [v["plate"] for v in inside] == ["HB130203001"]
        rebuilt = Trips()
        assert rebuilt.load(box.ctx.ledger_service.store) == 1
        assert rebuilt.open_entry("HB130203001").seq == out.seq
        leaving = passage(box, None, tags=(LOADER_TAG,), direction="out").record
        assert leaving["entry_seq"] == out.seq and leaving["dwell_s"] is not None
        assert box.ctx.trips.status()["count"] == 0
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


def test_a_waybill_card_seen_in_the_rfid_window_names_the_cargo(tmp_path: Path) -> None:
    """The logistics system hands the driver a card (运单卡) for this load: the passage that
    sees it carries its cargo, before the plate's own declaration; the card is no
    vehicle tag, so it neither identifies the truck nor makes the row's tags look wrong."""
    truck_tag, card = "E2801160600002084F35A1F3", "E200C0FFEE000001"
    until = datetime.now().astimezone() + timedelta(hours=1)
    with running_box(tmp_path, BOX) as box:
        box.registry.upsert_vehicles(
            [Vehicle("冀B12345", emission_stage="国6b", cargo="焦煤", rfid_tags=(truck_tag,))]
        )
        box.registry.declare_cargo("冀B12345", "焦炭", until, "物流系统")
        box.registry.declare_cargo("", "铁矿石", until, "物流系统", tag=card, uses=1)
        first = passage(box, "冀B12345", tags=(truck_tag, card)).record
        second = passage(box, "冀B12345", tags=(truck_tag, card)).record
        (used,) = box.registry.list_cargo(tag=card)
    assert first["cargo"] == "铁矿石", "the card's cargo, before the plate's declaration"
    assert first["rfid_tag"] == truck_tag and first["id_source"] == "plate+rfid"
    assert "unknown_tag" not in first["flags"] and "multiple_tags" not in first["flags"]
    assert (used.used, used.uses) == (1, 1)
    # the card was good for one passage: the same card again is an unknown tag, and the
    # plate's own declaration names the cargo
    assert second["cargo"] == "焦炭" and "unknown_tag" in second["flags"]
