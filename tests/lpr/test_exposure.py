"""Dark frames are brightened for the detector, and only dark ones."""

from __future__ import annotations

import csv
from dataclasses import replace

import cv2
import numpy as np
import pytest

from edged.lpr.config import LprConfig
from edged.lpr.detect import DARK, EXPOSED, brightest, expose
from edged.lpr.pipeline import PlateRecognizer
from tests.conftest import shared_data


def test_a_frame_of_normal_exposure_is_left_as_it_is() -> None:
    rng = np.random.default_rng(4)
    frame = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    assert expose(frame, 3.0) is frame


def test_a_dark_frame_is_brought_to_the_exposed_level_within_the_gain() -> None:
    rng = np.random.default_rng(4)
    frame = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    dark = cv2.convertScaleAbs(frame, alpha=0.4, beta=0)
    assert brightest(dark) == pytest.approx(np.percentile(dark.max(axis=2), 98), abs=3)
    assert brightest(dark) < DARK
    out = expose(dark, 3.0)
    assert brightest(out) == pytest.approx(EXPOSED, abs=2)
    very_dark = cv2.convertScaleAbs(frame, alpha=0.1, beta=0)
    assert float(expose(very_dark, 3.0).max()) <= 3 * float(very_dark.max()) + 1  # the cap
    assert expose(dark, 1.0) is dark  # 1 = never


def test_dark_dev_scenes_are_found_with_the_gain(recognizer) -> None:
    folder = shared_data("plates-dev")
    rows = [
        r
        for r in csv.DictReader((folder / "labels.csv").open(encoding="utf-8"))
        if r["file"].split("/")[-1].startswith("easypr")
    ][::2]
    plain = PlateRecognizer.__new__(PlateRecognizer)
    plain.__dict__.update(recognizer.__dict__)
    plain.detector = type(recognizer.detector).__new__(type(recognizer.detector))
    plain.detector.__dict__.update(recognizer.detector.__dict__, max_gain=1.0)
    plain.config = replace(recognizer.config, dark_frame_gain=1.0)
    hits = {"gain": 0, "plain": 0}
    for row in rows:
        dark = cv2.convertScaleAbs(cv2.imread(str(folder / row["file"])), alpha=0.4, beta=0)
        hits["gain"] += row["plate"] in [r.text for r in recognizer.read(dark)]
        hits["plain"] += row["plate"] in [r.text for r in plain.read(dark)]
    assert hits["gain"] > hits["plain"], hits


@pytest.mark.parametrize("value", [0.5, 9.0])
def test_config_rejects_a_bad_gain(value: float) -> None:
    with pytest.raises(ValueError, match="dark_frame_gain"):
        LprConfig(dark_frame_gain=value)
