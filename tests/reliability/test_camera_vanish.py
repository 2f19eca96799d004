"""The camera vanishes and comes back while vehicles keep arriving.

A gate with the real recogniser, a replay camera (a folder of rendered gate
scenes, renamed away and back as a camera that loses power would vanish),
the real R2000 driver reading a simulated reader on a pty, and the ground
loop on a mock pin. While the camera is gone, passages must still happen,
identified by the RFID tag, without waiting on the camera; the status says
the camera is lost and an event records it. Once it is back, plates are
read again and the status is ok.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import cv2
import pytest
from gpiozero import Device

from drivers.rfid.simulator import R2000Simulator
from edged.admission.model import Vehicle
from edged.lpr.models import check_models
from edged.lpr.synth import render_scene
from tests.gate_rig import running_gate
from tests.ptys import PtyCable, wait_for
from tests.reliability import summary

pytestmark = pytest.mark.reliability

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = Path(os.environ.get("EDGED_MODEL_DIR", REPO / "models" / "onnx"))
PLATE = "冀B12345"
EPC = "E2003412B802011512345678"
VANISH = 3


def _camera_state(gate: Any) -> str | None:
    cam = gate.health()["camera"]
    return cam.get("state") if isinstance(cam, dict) else cam


def test_camera_vanishes_and_returns_passages_fall_back_to_rfid(tmp_path: Path) -> None:
    if check_models(MODEL_DIR):
        pytest.skip("plate models not fetched: run python models/fetch.py")
    t0 = time.monotonic()
    frames = tmp_path / "camera"
    frames.mkdir()
    for seed in range(2):
        cv2.imwrite(str(frames / f"{seed:03d}.jpg"), render_scene(PLATE, "yellow", seed=seed))
    away = tmp_path / "camera-powered-off"
    reader_cable = PtyCable(tmp_path / "ttyRFID")
    sim = R2000Simulator(reader_cable.master, {EPC: -50}).start()  # the truck's tag is in the field
    extra = f"""
[camera]
source = "folder"
folder = "{frames}"
fps = 5.0
read_timeout_seconds = 3.0
reconnect_max_seconds = 0.3
[lpr]
model_dir = "{MODEL_DIR}"
[trigger]
burst_frames = 2
burst_interval_ms = 50
[rfid]
enabled = true
protocol = "r2000"
port = "{reader_cable.port}"
resend_s = 0.3
window_before_s = 3.0
window_after_s = 0.5
[gpio.ground_loop]
pin = 22
debounce_ms = 0
"""
    parts = ["ledger", "registry", "gpio", "recognizer", "camera", "rfid", "gate"]
    outcomes: list[Any] = []
    try:
        with running_gate(tmp_path, extra, parts) as gate:
            gate.registry.apply(
                "vehicles",
                "upsert",
                [Vehicle(PLATE, fuel="electric", rfid_tags=(EPC,))],
                actor="test",
                source="test",
            )
            gate.on_passage.append(outcomes.append)
            loop = Device.pin_factory.pin(22)

            def vehicle_passes() -> Any:
                """A vehicle drives onto the ground loop; the gate handles it on its own."""
                before = len(outcomes)
                loop.drive_high()
                try:
                    assert wait_for(lambda: len(outcomes) > before, 15), "passage hung"
                finally:
                    loop.drive_low()
                return outcomes[-1]

            assert wait_for(lambda: len(gate.tags) > 0, 10), "RFID reader reads nothing"
            assert wait_for(
                lambda: _camera_state(gate) == "ok" and gate._latest_frame is not None, 10
            )
            first = vehicle_passes()
            assert first.plate == PLATE and first.record["id_source"] == "plate+rfid", first.record
            for _ in range(VANISH):
                frames.rename(away)  # camera powered off / cable cut
                assert wait_for(lambda: _camera_state(gate) == "lost", 10), "loss unnoticed"
                assert wait_for(lambda: gate._latest_frame is None, 5)
                for _ in range(2):
                    out = vehicle_passes()
                    assert out.plate == PLATE and out.record["id_source"] == "rfid", out.record
                    assert out.frames == 0
                away.rename(frames)  # power back
                assert wait_for(lambda: _camera_state(gate) == "ok", 10), "camera not back"
                assert wait_for(lambda: gate._latest_frame is not None, 5)
                out = vehicle_passes()
                assert out.plate == PLATE and out.record["id_source"] == "plate+rfid", out.record
            events = [e.kind for e in reversed(gate.ledger.recent_events(200))]
            rows = gate.ledger.heads()["passages"][0]
            by_source = [o.record["id_source"] for o in outcomes]
    finally:
        sim.close()
        reader_cable.close()
    lost = len(outcomes) - rows
    summary.record(
        "camera vanish",
        faults=VANISH,
        passages=len(outcomes),
        rows=rows,
        lost=lost,
        seconds=time.monotonic() - t0,
        note=f"{by_source.count('rfid')} by RFID while lost, {by_source.count('plate+rfid')} by plate",
    )
    assert lost == 0
    # one event per loss and per return (a slow read under load may add a pair)
    assert events.count("camera_lost") >= VANISH
    assert events.count("camera_restored") == events.count("camera_lost")
