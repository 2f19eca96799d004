"""A box whose camera is an IP camera's snapshot URL reads the vehicle that triggered it.

The camera is :class:`drivers.simulators.SnapshotCameraSimulator` (https with
its own certificate, Digest, a JPEG encoded at each request). The lane shows
the previous truck until the trigger; a passage must read the truck at the gate, never the
picture from before it, and between vehicles the box asks for nothing but
its checks.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from drivers.simulators import SnapshotCameraSimulator, self_signed_certificate
from edged.lpr.models import check_models
from edged.lpr.synth import render_scene
from tests.box_rig import passage, running_box

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = Path(os.environ.get("EDGED_MODEL_DIR", REPO / "models" / "onnx"))


def test_passage_reads_the_vehicle_from_a_snapshot_taken_after_the_trigger(
    tmp_path: Path,
) -> None:
    if check_models(MODEL_DIR):
        pytest.skip("plate models not fetched: run python models/fetch.py")
    # over https, checked against the camera's own self-signed certificate
    cert, key = self_signed_certificate(tmp_path, "camera")
    sim = SnapshotCameraSimulator(size=(1280, 720), password="gate-cam", tls=(cert, key))
    sim.start()
    extra = f"""
[camera]
type = "snapshot"
url = "{sim.url}"
username = "admin"
password = "gate-cam"
tls_ca_file = "{cert}"
check_every_s = 2.0
read_timeout_s = 3.0
[lpr]
model_dir = "{MODEL_DIR}"
release_above_mb = 1
[trigger]
burst_frames = 2
burst_interval_ms = 50
"""
    parts = ["ledger", "registry", "recognizer", "main.camera", "main.worker"]
    try:
        with running_box(tmp_path, extra, parts) as box:
            lane = box.lane("main")
            deadline = time.monotonic() + 20
            while lane.camera.status()["state"] != "ok":
                assert time.monotonic() < deadline, lane.camera.status()
                time.sleep(0.1)
            sim.show(render_scene("冀B12345", "yellow", size=(1280, 720), seed=1))
            before = len(sim.requests)
            time.sleep(3.0)  # a truck waits in view, no passage: at most the checks
            assert len(sim.requests) - before <= 2, "snapshots taken with no passage"
            for n, plate in enumerate(("晋C55667", "豫D99881")):
                sim.show(render_scene(plate, "blue", size=(1280, 720), seed=n + 2))
                out = passage(box, wait=20)
                assert out.plate == plate, out.record  # the truck at the gate, not the last
                # the camera's share runs to the picture in hand: an HTTP request, a
                # JPEG encoded by the camera and decoded here, not the instant it was asked
                assert out.frame_wait_ms is not None and out.frame_wait_ms > 3, out
            status = box.health()["lanes"]["main"]["camera"]
            assert status["decode"] == "on_request" and status["state"] == "ok", status
            assert status["source"].startswith("snapshot:https://127.0.0.1:"), status
            assert status["certificate_expires"] > time.strftime("%Y-%m-%d"), status
            assert "gate-cam" not in str(status)
            # over the (tiny) watermark, each burst gave the models' memory back
            memory = box.health()["memory"]
            assert memory["model_memory_releases"] == 2 and memory["resident_mb"] > 50, memory
    finally:
        sim.stop()
