"""Simulated passages: off unless allowed; when allowed, marked, attributed, audited, barrier still.

The finding: ``simulate_passage`` on the control socket opened the real
barrier and wrote a row that looked like a camera read (id_source plate,
confidence 1.0, no flag, no operator, no audit row).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gpiozero import Device

from edged.app.control import request
from tests.box_rig import running_box

CONFIG = """
[camera]
type = "none"
[mqtt]
enabled = false
[policy]
unknown_action = "allow_flag"
"""


def _simulate(box: Any, plate: str) -> dict[str, Any]:
    return request(box.control.path, {"cmd": "simulate_passage", "plate": plate})


def _pulses(pin: Any) -> int:
    return sum(
        1 for a, b in zip(pin.states, pin.states[1:], strict=False) if a.state and not b.state
    )


def test_simulation_is_refused_unless_the_box_allows_it(tmp_path: Path) -> None:
    with running_box(tmp_path, CONFIG, daemon="") as box:
        reply = _simulate(box, "冀B12345")
        assert reply["ok"] is False and "allow_simulation = true" in reply["error"]
        assert box.ledger.heads()["passages"][0] == 0


def test_a_simulated_passage_is_marked_attributed_audited_and_leaves_the_barrier(
    tmp_path: Path,
) -> None:
    with running_box(tmp_path, CONFIG) as box:
        relay = Device.pin_factory.pin(17)
        before = _pulses(relay)
        reply = _simulate(box, "冀B12345")
        assert reply["ok"] is True and reply["decision"] == "allow", reply
        row = next(box.ledger.passages()).record
        assert row.id_source == "simulated"
        assert row.operator == f"uid:{os.getuid()}"  # from the socket's peer, not the request
        assert _pulses(relay) == before, "a simulation moved the real barrier"
        actions = [
            (json.loads(f)["actor"], json.loads(f)["action"])
            for (f,) in box.ledger.db.execute_sql("SELECT fields FROM audit").fetchall()
        ]
        assert (f"uid:{os.getuid()}", "simulate_passage") in actions


def test_the_second_switch_lets_a_simulation_drive_the_barrier(tmp_path: Path) -> None:
    daemon = "allow_simulation = true\nsimulation_moves_barrier = true"
    with running_box(tmp_path, CONFIG, daemon=daemon) as box:
        relay = Device.pin_factory.pin(17)
        before = _pulses(relay)
        assert _simulate(box, "冀B12345")["ok"] is True
        assert _pulses(relay) == before + 1
