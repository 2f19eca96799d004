"""Small frames: enlarged for the detector, and given the second pass too."""

from __future__ import annotations

import csv
from dataclasses import replace

import cv2
import numpy as np
import pytest

from edged.lpr.config import LprConfig
from edged.lpr.pipeline import PlateRecognizer
from edged.lpr.synth import render_scene
from tests.conftest import shared_data
from tests.lpr.test_views_detect import _counting


def _variant(recognizer: PlateRecognizer, **changes: object) -> PlateRecognizer:
    other = PlateRecognizer.__new__(PlateRecognizer)
    other.__dict__.update(recognizer.__dict__)
    other.config = replace(recognizer.config, **changes)
    return other


def test_prepare_enlarges_only_up_to_the_cap(recognizer) -> None:
    small = np.zeros((180, 320, 3), np.uint8)
    blob, scale = recognizer.detector.prepare(small, 640, 4.0)
    assert blob.shape == (1, 3, 360, 640) and scale == 2.0
    blob, scale = recognizer.detector.prepare(small, 640, 1.5)
    assert blob.shape == (1, 3, 270, 480) and scale == 1.5
    blob, scale = recognizer.detector.prepare(small, 640)  # default: never enlarged
    assert blob.shape == (1, 3, 180, 320) and scale == 1.0
    big = np.zeros((1080, 1920, 3), np.uint8)
    assert recognizer.detector.prepare(big, 640, 4.0)[0].shape == (1, 3, 360, 640)


def test_small_frame_is_detected_at_the_detectors_scale(recognizer) -> None:
    frame = render_scene("苏E88866", "blue", size=(320, 180), seed=1, plate_width=60)
    with _counting(recognizer.detector) as calls:
        reads = recognizer.read(frame)
    assert [r.text for r in reads] == ["苏E88866"]
    assert calls[0][2:] == (360, 640)  # the frame pass saw it enlarged to det_max_side
    # the corners come back in the frame's own pixels
    xs = [x for x, _ in reads[0].corners]
    assert 100 < min(xs) < max(xs) < 230


def test_second_pass_also_runs_for_a_small_frame(recognizer) -> None:
    empty = np.full((270, 480, 3), 90, np.uint8)
    with _counting(recognizer.detector) as calls:
        assert recognizer.read(empty) == []
    assert len(calls) == 1  # nothing hinted at: the frame pass alone
    # a plate too small for the frame pass even enlarged: the second pass zooms in at
    # twice the frame pass's scale (the old rule skipped it for any frame under 640)
    frame = render_scene("浙B8K123", "blue", size=(480, 270), seed=2, plate_width=34)
    plates, frame_pass = recognizer.detector.scan(frame, 640, 0.3, 0.4, 4.0)
    assert plates == [] and frame_pass.hints(4)
    with _counting(recognizer.detector) as calls:
        reads = recognizer.read(frame)
    assert [r.text for r in reads] == ["浙B8K123"]
    # windows of 256x160 at 1280/480 times the frame's size, then the zoomed look
    assert (160, 256) in [shape[2:] for shape in calls[1:]]


def test_half_size_dev_scenes_read_better_enlarged(recognizer) -> None:
    folder = shared_data("plates-dev")
    rows = [
        r
        for r in csv.DictReader((folder / "labels.csv").open(encoding="utf-8"))
        if r["kind"] == "scene" and r["file"].split("/")[-1].startswith("easypr")
    ][::3]
    plain = _variant(recognizer, small_frame_enlarge=1.0, min_plate_width=40)
    hits = {"enlarged": 0, "plain": 0}
    for row in rows:
        image = cv2.imread(str(folder / row["file"]))
        half = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        hits["enlarged"] += row["plate"] in [r.text for r in recognizer.read(half)]
        hits["plain"] += row["plate"] in [r.text for r in plain.read(half)]
    assert hits["enlarged"] > hits["plain"], hits


@pytest.mark.parametrize("value", [0.5, 9.0])
def test_config_rejects_bad_enlargement(value: float) -> None:
    with pytest.raises(ValueError, match="small_frame_enlarge"):
        LprConfig(small_frame_enlarge=value)
