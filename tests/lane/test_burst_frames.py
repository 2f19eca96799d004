"""A burst of camera frames keeps only the frame of its best read (the snapshot's)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edged.lpr.models import check_models
from edged.lpr.synth import render_scene
from tests.gate_rig import running_gate

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = Path(os.environ.get("EDGED_MODEL_DIR", REPO / "models" / "onnx"))


@pytest.mark.skipif(bool(check_models(MODEL_DIR)), reason="models not fetched: models/fetch.py")
def test_burst_drops_every_frame_but_the_best(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "0.png"), render_scene("冀B12345", "blue", seed=2))
    for i in range(1, 4):  # the road after the vehicle: nothing to read
        cv2.imwrite(str(frames / f"{i}.png"), np.full((720, 1280, 3), 60 * i, np.uint8))
    extra = f"""
[camera]
source = "folder"
folder = "{frames}"
fps = 25
[lpr]
model_dir = "{MODEL_DIR}"
[trigger]
burst_frames = 4
burst_interval_ms = 60
min_plate_confidence = 1.0
[mqtt]
enabled = false
"""
    parts = ["ledger", "registry", "gpio", "recognizer", "camera", "gate"]
    with running_gate(tmp_path, extra, parts) as gate:
        for _ in range(100):  # until a burst begins on the plate frame
            time.sleep(0.03)
            kept, result = gate._burst()
            if result.plate == "冀B12345" and result.best_frame == 0 and len(kept) > 1:
                break
        else:
            pytest.fail("no burst began on the plate frame")
    assert len(kept) >= 2  # unsure (min_plate_confidence 1.0): the burst went on
    assert [i for i, f in enumerate(kept) if f is not None] == [result.best_frame]
    assert kept[0].shape == (720, 1280, 3)
