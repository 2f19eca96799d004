"""Weights on the passage: gross in, gross out, the load of the trip; a bad scale never holds the gate.

One weighbridge between an entry and an exit lane, an XK3190 indicator
simulated on a pty (the real driver reads its frames), mock GPIO pins.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from gpiozero import Device

from drivers.simulators import ScaleSimulator
from edged.admission.model import Vehicle
from edged.cli.main import main
from tests.box_rig import passage, running_box
from tests.ptys import PtyCable, wait_for


def lanes(scale_port: str, wait_s: float = 3.0) -> str:
    return f"""
[[lanes]]
name = "entry"
direction = "in"
weight_wait_s = {wait_s}
[lanes.camera]
type = "none"
[lanes.scale]
type = "xk3190"
port = "{scale_port}"
stable_s = 0.3
stable_tolerance_kg = 20

[[lanes]]
name = "exit"
direction = "out"
weight_wait_s = {wait_s}
shares = {{ scale = "entry" }}
[lanes.camera]
type = "none"
[lanes.gpio.barrier_open]
pin = 24
[lanes.gpio.alarm]
pin = 25
[lanes.gpio.ground_loop]
pin = 5
[lanes.gpio.ir_beam]
pin = 6

[mqtt]
enabled = false
"""


def _register(box: Any) -> None:
    box.registry.apply(
        "vehicles",
        "upsert",
        [
            Vehicle(
                "冀B12345",
                fuel="diesel",
                emission_stage="国6b",
                vin="LZZ1BLSF6JD123456",
                registered_on="2021-03-15",
                vehicle_type="重型半挂牵引车",
            )
        ],
        actor="test",
        source="test",
    )


def test_entry_and_exit_weights_pair_into_the_load_carried(tmp_path: Path) -> None:
    cable = PtyCable(tmp_path / "ttyScale")
    sim = ScaleSimulator(cable.master, 0, rate_hz=40).start()
    try:
        with running_box(tmp_path, lanes(cable.port)) as box:
            _register(box)
            sim.kg = 18460  # the truck drives on empty
            entry = passage(box, "冀B12345", lane="entry")
            assert entry.direction == "in" and entry.record["weight_kg"] == 18460
            assert entry.record["missing"]["net_t"] == "known when the vehicle leaves"
            assert box.health()["in_plant"]["count"] == 1
            sim.kg = 0
            time.sleep(0.3)
            sim.kg = 49300  # and leaves loaded
            out = passage(box, "冀B12345", lane="exit")
            rec = out.record
            assert rec["weight_kg"] == 49300 and rec["net_t"] == 30.8
            assert rec["entry_seq"] == entry.seq and rec["entry_time"] == entry.record["time"]
            assert rec["dwell_s"] >= 0 and "net_t" not in rec["missing"]
            assert box.health()["in_plant"]["count"] == 0
    finally:
        sim.close()
        cable.close()


def test_a_scale_that_never_settles_flags_the_row_and_opens_within_the_wait(
    tmp_path: Path,
) -> None:
    cable = PtyCable(tmp_path / "ttyScale")
    sim = ScaleSimulator(cable.master, 30000, rate_hz=40).start()
    stop = [False]

    def wobble() -> None:  # a truck rocking on the bridge: never within the band
        kg = 30000
        while not stop[0]:
            kg = 30500 if kg == 30000 else 30000
            sim.kg = kg
            time.sleep(0.05)

    import threading

    threading.Thread(target=wobble, daemon=True).start()
    try:
        with running_box(tmp_path, lanes(cable.port, wait_s=1.0)) as box:
            _register(box)
            t0 = time.monotonic()
            out = passage(box, "冀B12345", lane="entry")
            took = time.monotonic() - t0
            rec = out.record
            assert out.decision == "allow"
            assert rec["weight_kg"] is None and "weight_unsettled" in rec["flags"]
            assert rec["missing"]["weight_kg"] == "weight did not settle within 1 s"
            assert took < 3.0, f"the barrier waited {took:.1f} s for the weighbridge"
            relay = Device.pin_factory.pin(17)
            assert wait_for(lambda: not relay.state, 5)  # the open pulse went out
    finally:
        stop[0] = True
        sim.close()
        cable.close()


def test_a_row_as_ledger_query_prints_it_has_every_national_field(
    tmp_path: Path, capsys: Any
) -> None:
    cable = PtyCable(tmp_path / "ttyScale")
    sim = ScaleSimulator(cable.master, 31000, rate_hz=40).start()
    try:
        with running_box(tmp_path, lanes(cable.port)) as box:
            _register(box)
            passage(box, "冀B12345", lane="entry")
            passage(box, "豫D99881", lane="entry")  # not registered: says why, field by field
            db = box.ctx.ledger_service.path
    finally:
        sim.close()
        cable.close()
    capsys.readouterr()  # what the box logged while it ran
    assert main(["ledger", "query", "--db", str(db), "--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    national = (
        "time",
        "lane",
        "direction",
        "plate",
        "plate_colour",
        "registered_on",
        "vin",
        "engine_no",
        "emission_stage",
        "stage_code",
        "fuel",
        "documents",
        "cargo",
        "weight_kg",
        "net_t",
        "fleet",
        "id_source",
        "alert_level",
        "approval",
        "snapshots",
        "missing",
    )
    for row in rows:
        assert all(k in row for k in national), [k for k in national if k not in row]
        for key in ("plate", "vin", "registered_on", "engine_no", "fleet", "cargo", "weight_kg"):
            if row[key] in (None, "", [], {}):
                assert row["missing"].get(key), (key, row["missing"])
    registered, unknown = rows
    assert registered["vin"] == "LZZ1BLSF6JD123456" and registered["stage_code"] == "6"
    assert registered["registered_on"] == "2021-03-15" and registered["weight_kg"] == 31000
    assert registered["alert_level"] == "none" and registered["category"] == "transport"
    assert unknown["missing"]["vin"] == "vehicle not in the registry"
