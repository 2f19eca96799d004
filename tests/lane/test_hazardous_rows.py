"""Rows of hazardous-goods vehicles say so, so the reports can list them, admitted or not."""

from __future__ import annotations

from pathlib import Path

from edged.admission.model import Vehicle
from tests.box_rig import passage, running_box

PARTS = ["ledger", "registry", "main.gpio", "main.worker"]


def test_a_hazardous_goods_vehicle_row_carries_the_flag(tmp_path: Path) -> None:
    with running_box(tmp_path, "", PARTS) as box:
        box.registry.upsert_vehicles(
            [
                Vehicle("冀B12345", emission_stage="国6a", hazardous=True),
                Vehicle("冀B22222", emission_stage="国6a"),
            ]
        )
        tanker = passage(box, plate="冀B12345")
        truck = passage(box, plate="冀B22222")
    assert "hazardous" in tanker.record["flags"]
    assert "hazardous" not in truck.record["flags"]
    # a lane without a weighbridge weighs nothing: its rows say why, but flag no failed weighing
    assert truck.record["missing"]["weight_kg"] == "no weighbridge on this lane"
    assert "weight_unsettled" not in truck.record["flags"]
