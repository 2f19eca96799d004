"""The text-line fallback: plates proposed where the plate detector found none."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edged.lpr.config import LprConfig
from edged.lpr.pipeline import PlateRecognizer
from edged.lpr.synth import render_scene
from edged.lpr.textlines import TextLine, order_corners, pair_double_rows, yellow_regions
from tests.lpr.test_views_detect import _counting


def _blind(recognizer: PlateRecognizer, **changes: object) -> PlateRecognizer:
    """The pipeline with a plate detector that accepts nothing (no score passes 1.0):
    a plate it misses, as it misses a bus's double-row plate."""
    other = PlateRecognizer.__new__(PlateRecognizer)
    other.__dict__.update(recognizer.__dict__)
    other.config = replace(
        recognizer.config, det_score=1.0, candidate_score=1.0, second_pass_score=1.0, **changes
    )
    return other


def _line(cx: float, cy: float, w: float, h: float, score: float = 0.9) -> TextLine:
    return TextLine((cx, cy), (w, h), 0.0, score)


def test_a_short_line_centred_over_a_long_one_is_a_double_row_plate() -> None:
    top, bottom = _line(100, 40, 50, 20), _line(100, 75, 150, 34)
    (corners, score), *rest = pair_double_rows([bottom, top])
    assert rest == [] and score == 0.9
    assert corners[0][1] == pytest.approx(30) and corners[3][1] == pytest.approx(92)
    assert corners[0][0] == pytest.approx(25) and corners[1][0] == pytest.approx(175)


@pytest.mark.parametrize(
    "top",
    [
        _line(160, 40, 50, 20),  # not centred over the long line
        _line(100, 0, 50, 20),  # too far above it
        _line(100, 40, 140, 34),  # as long as it: two single-row lines
        _line(100, 90, 50, 20),  # below it
    ],
)
def test_lines_that_do_not_form_a_double_row_plate_are_not_paired(top: TextLine) -> None:
    assert pair_double_rows([top, _line(100, 75, 150, 34)]) == []


def test_corners_are_ordered_whatever_the_input_order() -> None:
    pts = np.array([[10, 12], [0, 10], [1, 0], [11, 2]], np.float32)
    assert order_corners(pts).tolist() == [[1, 0], [11, 2], [10, 12], [0, 10]]


def test_yellow_regions_are_where_a_yellow_plate_can_be() -> None:
    frame = render_scene("冀E12345", "yellow", size=(1280, 720), seed=0, plate_width=200)
    (x0, y0, x1, y1), *_ = yellow_regions(frame)
    assert x0 < 540 < 740 < x1 and y0 < 480 < 560 < y1
    assert yellow_regions(render_scene("京A12345", "blue", seed=0)) == []


@pytest.mark.parametrize(("text", "seed"), [("冀E12345", 0), ("晋K5678挂", 1)])
def test_a_missed_yellow_double_row_plate_is_read_from_text_lines(
    recognizer, text: str, seed: int
) -> None:
    frame = render_scene(
        text, "yellow", size=(1280, 720), seed=seed, plate_width=160, tilt=0.03, double_row=True
    )
    blind = _blind(recognizer)
    reads = blind.read(frame)
    assert [(r.text, r.double_row, r.proposal) for r in reads] == [(text, True, "text_lines")]
    assert reads[0].colour == "yellow" and reads[0].vehicle_class == "large"
    off = _blind(recognizer, text_line_fallback="off")
    assert off.read(frame) == []


def test_yellow_mode_leaves_a_blue_frame_alone_and_frame_mode_does_not(recognizer) -> None:
    frame = render_scene("京A12345", "blue", size=(1280, 720), seed=1, plate_width=200)
    with _counting(recognizer.text_lines) as calls:
        assert _blind(recognizer).read(frame) == []
    assert calls == []  # no yellow anywhere: the text-line model never ran
    reads = _blind(recognizer, text_line_fallback="frame").read(frame)
    assert [(r.text, r.proposal) for r in reads] == [("京A12345", "text_lines")]


def test_fallback_runs_only_when_the_detector_found_nothing(recognizer) -> None:
    frame = render_scene("冀E12345", "yellow", size=(1280, 720), seed=0, double_row=True)
    with _counting(recognizer.text_lines) as calls:
        reads = recognizer.read(frame)
    assert [(r.text, r.proposal) for r in reads] == [("冀E12345", "detector")]
    assert calls == []


@pytest.mark.parametrize(
    ("key", "value"), [("text_line_fallback", "always"), ("text_line_max_side", 64)]
)
def test_config_rejects_bad_fallback_values(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=key):
        LprConfig(**{key: value})


def test_lettering_on_a_yellow_lorry_is_no_plate(recognizer) -> None:
    import cv2

    frame = np.full((720, 1280, 3), 90, np.uint8)
    frame[180:540, 420:860] = (20, 190, 240)
    for i, word in enumerate(("GANG TIE 88", "YUN SHU 2024")):
        cv2.putText(frame, word, (450, 300 + 80 * i), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (20,) * 3, 4)
    with _counting(recognizer.text_lines) as calls:
        assert recognizer.read(frame) == []
    assert calls  # the fallback looked, found lines of text, and read no plate in them
