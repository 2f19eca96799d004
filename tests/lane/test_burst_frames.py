"""A burst of camera frames keeps only the frame of its best read (the snapshot's)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edged.lpr.models import check_models
from edged.lpr.synth import render_scene
from tests.box_rig import running_box

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = Path(os.environ.get("EDGED_MODEL_DIR", REPO / "models" / "onnx"))


@pytest.mark.skipif(bool(check_models(MODEL_DIR)), reason="models not fetched: models/fetch.py")
def test_burst_drops_every_frame_but_the_best(tmp_path: Path) -> None:
    extra = f"""
[camera]
type = "mock"
[lpr]
model_dir = "{MODEL_DIR}"
[trigger]
burst_frames = 4
burst_interval_ms = 60
min_plate_confidence = 1.0
[mqtt]
enabled = false
"""
    parts = ["ledger", "registry", "recognizer", "main.gpio", "main.camera", "main.worker"]
    with running_box(tmp_path, extra, parts) as box:
        lane = box.lane("main")
        camera = lane.camera_source
        camera.show(render_scene("冀B12345", "blue", seed=2))
        recognizer = lane.pipeline.box.recognizer  # the lane context's
        read = recognizer.read

        def then_the_road(frame: np.ndarray) -> list[Any]:
            # the vehicle has passed once its first frame is read: the road after it
            camera.show(np.full((720, 1280, 3), 60, np.uint8))
            return read(frame)

        recognizer.read = then_the_road
        kept, result, _first = lane.pipeline.burst()
    assert result.plate == "冀B12345" and result.best_frame == 0
    assert len(kept) == 4  # unsure (min_plate_confidence 1.0): the burst went on
    assert [i for i, f in enumerate(kept) if f is not None] == [0]
    assert kept[0].shape == (720, 1280, 3)
