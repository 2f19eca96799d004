"""A box with an RTSP camera reads the plate from a frame the camera sent after the trigger.

ffmpeg streams H.264 (a vehicle at the gate, each picture numbered) into the
loopback RTSP server of tests/rtsp.py; the box's camera is the ``opencv``
type on its rtsp:// URL, as at a gate. The passage's snapshot is the frame
the burst read: its number says when the camera sent it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import pytest

from edged.lpr.models import check_models
from edged.lpr.synth import render_scene
from tests.box_rig import passage, running_box
from tests.rtsp import find_ffmpeg, make_clip, rtsp_camera

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = Path(os.environ.get("EDGED_MODEL_DIR", REPO / "models" / "onnx"))
PLATE = "冀B12345"


def test_passage_reads_a_frame_sent_after_the_trigger(tmp_path: Path) -> None:
    if find_ffmpeg() is None:
        pytest.skip("ffmpeg not installed: scripts/setup.sh --test installs it")
    if check_models(MODEL_DIR):
        pytest.skip("plate models not fetched: run python models/fetch.py")
    scene = tmp_path / "scene.png"
    cv2.imwrite(str(scene), render_scene(PLATE, "blue", size=(1280, 720), seed=3))
    clip = make_clip(
        tmp_path / "gate.mp4", size=(1280, 720), seconds=8, bitrate="2M", picture=scene
    )
    with rtsp_camera(clip) as cam:
        extra = f"""
[camera]
type = "opencv"
device = "{cam.url}"
read_timeout_s = 5.0
[lpr]
model_dir = "{MODEL_DIR}"
[trigger]
burst_frames = 3
burst_interval_ms = 50
"""
        parts = ["ledger", "registry", "recognizer", "main.camera", "main.worker"]
        with running_box(tmp_path, extra, parts) as box:
            lane = box.lane("main")
            deadline = time.monotonic() + 20
            while lane.camera.latest() is None:
                assert time.monotonic() < deadline, lane.camera.status()
                time.sleep(0.1)
            time.sleep(1.0)
            for _ in range(3):
                time.sleep(0.3)
                trigger = time.monotonic()
                out = passage(box, wait=20)
                assert out.plate == PLATE and out.frames == 1, out.record
                # the camera's share of the latency: the wait for a frame taken after
                # the trigger (a 25 fps stream, its decoder holding a frame or two back)
                assert out.frame_wait_ms is not None and 0 < out.frame_wait_ms < 1000
                shots = [s for s in out.record["snapshots"] if s["path"].endswith("_frame.jpg")]
                frame = cv2.imread(str(tmp_path / "data" / "images" / shots[0]["path"]))
                sent = cam.sent_at(frame)
                assert sent is not None, "frame number unreadable in the snapshot"
                # the frame being sent at the very moment of the trigger may be the first
                assert sent > trigger - 0.040, (
                    f"frame sent {trigger - sent:.3f} s before the trigger"
                )
            status = box.health()["lanes"]["main"]["camera"]
            assert status["decode"] == "on_demand" and status["state"] == "ok", status
            assert status["fps"] > 15 and status["decoded_fps"] < 5, status
