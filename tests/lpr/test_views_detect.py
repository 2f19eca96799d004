"""Views voted per plate, the zoomed looks and the second pass, on the real models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pytest

from edged.lpr.config import LprConfig
from edged.lpr.detect import Detection
from edged.lpr.pipeline import PlateRecognizer, vote_views
from edged.lpr.recognize import TextRead
from edged.lpr.rectify import Views
from edged.lpr.synth import render_scene


def _read(text: str, confs: list[float]) -> TextRead:
    return TextRead(text, tuple(confs), 0.0, "standard")


def _view(double: bool = False) -> tuple[np.ndarray, bool]:
    return np.zeros((48, 160, 3), np.uint8), double


def test_vote_prefers_the_reading_views_agree_on() -> None:
    views = [_view(), _view(), _view()]
    texts = [
        _read("川A572F4", [0.9] * 7),
        _read("皖A572F4", [0.95] * 7),
        _read("川A572F4", [0.8] * 7),
    ]
    _crop, double, tr = vote_views(views, texts)
    assert tr.text == "川A572F4" and not double
    # the disputed province is reported as unsure, the agreed characters keep their 0.9
    assert tr.char_confidences[0] == pytest.approx(0.9 * 1.7 / 2.65)
    assert tr.char_confidences[1:] == (0.9,) * 6


def test_unanimous_views_keep_their_confidence() -> None:
    views = [_view(), _view()]
    texts = [_read("京A12345", [0.7] * 7), _read("京A12345", [0.9] * 7)]
    _, _, tr = vote_views(views, texts)
    assert tr.char_confidences == (0.9,) * 7


def test_vote_lets_one_unreadable_character_sink_a_repeated_guess() -> None:
    # a double-row plate read as one row: the same forced province each time, at ~0
    views = [_view(), _view(), _view(), _view(double=True)]
    guess = [0.0001, 0.0001, 1.0, 1.0, 1.0, 1.0, 1.0]
    texts = [_read("皖S5678挂", guess)] * 3 + [_read("晋K5678挂", [0.9] * 7)]
    _, double, tr = vote_views(views, texts)
    assert tr.text == "晋K5678挂" and double


def test_vote_with_nothing_read_gives_none() -> None:
    assert vote_views([_view()], [None]) is None


def _det(w: float, h: float, x: float = 500.0, y: float = 400.0) -> Detection:
    corners = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)
    return Detection(0.9, (x, y, x + w, y + h), corners)


def test_blue_plate_of_short_aspect_is_never_read_as_double_row(recognizer) -> None:
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[400:480, 500:680] = (180, 60, 20)  # blue (BGR), aspect 2.25
    views, colour = recognizer.views(frame, _det(180, 80))
    assert colour == "blue"
    assert [double for _, double in views] == [False, False, False]


def test_yellow_plate_of_short_aspect_gets_a_double_row_view(recognizer) -> None:
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[400:480, 500:680] = (20, 200, 230)  # yellow
    views, colour = recognizer.views(frame, _det(180, 80))
    assert colour == "yellow"
    assert [double for _, double in views] == [False, False, False, True]
    assert views[3][0].shape[:2] == (144, 288)


def test_read_views_setting_limits_the_views(recognizer) -> None:
    one = PlateRecognizer.__new__(PlateRecognizer)
    one.__dict__.update(recognizer.__dict__)
    one.config = replace(recognizer.config, read_views=1)
    frame = np.zeros((720, 1280, 3), np.uint8)
    views, _ = one.views(frame, _det(300, 90))
    assert len(views) == 1


def test_zoomed_second_look_confirms_a_weak_candidate(recognizer) -> None:
    frame = render_scene("苏E12345", "blue", size=(1920, 1080), seed=3, plate_width=200)
    weak = recognizer.detector.detect(frame, 640, 0.3)
    assert len(weak) == 1 and weak[0].score < 0.6, "a weak candidate only, in the frame pass"
    refined = recognizer.detector.refine(frame, weak[0], 128, 0.6)
    assert refined is not None and refined.score >= 0.6
    x1, _y1, x2, _y2 = refined.box
    assert 170 < x2 - x1 < 240  # the plate is 200 px wide in the frame
    assert [r.text for r in recognizer.read(frame)] == ["苏E12345"]


def test_zoomed_look_at_empty_road_finds_nothing(recognizer) -> None:
    frame = np.full((1080, 1920, 3), 90, np.uint8)
    assert recognizer.detector.refine(frame, _det(150, 45, 900, 700), 128, 0.6) is None


def test_tiled_pass_finds_a_plate_too_small_for_the_frame_pass(recognizer) -> None:
    frame = render_scene("浙B8K123", "blue", size=(1920, 1080), seed=5, plate_width=84)
    assert recognizer.detector.detect(frame, 640, 0.3) == []
    tiled = recognizer.detector.detect_tiled(frame, 1280, 640, 0.4)
    assert len(tiled) == 1
    assert 60 < tiled[0].box[2] - tiled[0].box[0] < 110


@contextmanager
def _counting(model: object) -> Iterator[list[tuple[int, ...]]]:
    """Record the input shape of every call to a real model's ``run``."""
    calls: list[tuple[int, ...]] = []
    inner = model.run  # type: ignore[attr-defined]

    def run(blob: np.ndarray) -> object:
        calls.append(blob.shape)
        return inner(blob)

    model.run = run  # type: ignore[attr-defined]
    try:
        yield calls
    finally:
        del model.run  # type: ignore[attr-defined]


def test_second_pass_zooms_in_where_the_frame_pass_saw_a_hint(recognizer) -> None:
    frame = render_scene("浙B8K123", "blue", size=(1920, 1080), seed=5, plate_width=120)
    plates, frame_pass = recognizer.detector.scan(frame, 640, 0.3, 0.4)
    hints = frame_pass.hints(4)
    assert plates == [] and 1 <= len(hints) <= 4
    with _counting(recognizer.detector) as calls:
        found = recognizer.detector.zoom_in(frame, hints, 1280, 0.4)
    assert len(found) == 1 and 95 < found[0].box[2] - found[0].box[0] < 145
    # windows of 256x160 at the 1280 scale, not the whole enlarged frame
    assert calls and all(shape[2:] == (160, 256) for shape in calls)
    assert len(calls) <= len(hints)
    with _counting(recognizer.detector) as calls:
        assert [r.text for r in recognizer.read(frame)] == ["浙B8K123"]
    # frame pass + at most 4 windows + the zoomed look that sets the corners
    assert 3 <= len(calls) <= 6
    area = sum(shape[2] * shape[3] for shape in calls)
    assert area < 2 * 640 * 360  # the tiled search alone was about six frame passes


def test_empty_frame_gives_no_hints_and_no_second_pass(recognizer) -> None:
    frame = np.full((1080, 1920, 3), 90, np.uint8)
    plates, frame_pass = recognizer.detector.scan(frame, 640, 0.3, 0.4)
    assert plates == [] and frame_pass.hints(4) == []
    with _counting(recognizer.detector) as calls:
        assert recognizer.read(frame) == []
    assert len(calls) == 1


def test_tiled_second_pass_finds_plates_too_small_to_leave_a_hint(recognizer) -> None:
    frame = render_scene("浙B8K123", "blue", size=(1920, 1080), seed=5, plate_width=84)
    # under the windowed pass's floor (docs/LPR.md): the frame pass leaves no hint
    assert recognizer.detector.scan(frame, 640, 0.3, 0.4)[1].hints(4) == []
    tiled = PlateRecognizer.__new__(PlateRecognizer)
    tiled.__dict__.update(recognizer.__dict__)
    tiled.config = replace(recognizer.config, second_pass_windows=0)
    with _counting(recognizer.detector) as calls:
        assert [r.text for r in tiled.read(frame)] == ["浙B8K123"]
    assert sum(1 for shape in calls if shape[2:] == (456, 736)) == 4


def test_a_sure_plate_is_read_from_one_view(recognizer) -> None:
    frame = render_scene("京A12345", "blue", seed=1)
    sure = PlateRecognizer.__new__(PlateRecognizer)
    sure.__dict__.update(recognizer.__dict__)
    sure.config = replace(recognizer.config, vote_below=0.0)
    with _counting(recognizer.recognizer) as calls:
        assert [r.text for r in sure.read(frame)] == ["京A12345"]
    assert [shape[0] for shape in calls] == [1]


def test_an_unsure_plate_gets_a_second_view_and_a_third_only_on_disagreement(recognizer) -> None:
    frame = render_scene("京A12345", "blue", seed=1)
    unsure = PlateRecognizer.__new__(PlateRecognizer)
    unsure.__dict__.update(recognizer.__dict__)
    unsure.config = replace(recognizer.config, vote_below=1.0)  # every plate is in doubt
    dets = unsure.detect(frame)
    per_det = [unsure.views(frame, d) for d in dets]
    texts = unsure._read_views(per_det)
    assert len(texts) == 1 and len(texts[0]) == 3
    first, second, third = texts[0]
    assert first is not None and second is not None and first.text == second.text == "京A12345"
    assert third is None  # two views agreed: the third was not needed
    # two that disagree (here: views of two different plates) get the third view read
    other = render_scene("沪B67890", "blue", seed=4, tilt=0.05)
    other_views, _ = unsure.views(other, unsure.detect(other)[0])
    crop = per_det[0][0]
    texts = unsure._read_views([(Views.ready([crop[0], other_views[0], crop[1]]), "blue")])
    assert [t.text if t else None for t in texts[0]] == ["京A12345", "沪B67890", "京A12345"]


def test_a_plate_read_beyond_doubt_warps_its_first_view_only(recognizer) -> None:
    frame = render_scene("京A12345", "blue", seed=1)
    dets = recognizer.detect(frame)
    per_det = [recognizer.views(frame, d) for d in dets]
    texts = recognizer._read_views(per_det)
    views = per_det[0][0]
    assert texts[0][0] is not None and min(texts[0][0].char_confidences) >= 0.95
    assert len(views) == 3 and views.made == 1  # the other two were never needed
    doubtful = PlateRecognizer.__new__(PlateRecognizer)
    doubtful.__dict__.update(recognizer.__dict__)
    doubtful.config = replace(recognizer.config, vote_below=1.0)  # every plate is in doubt
    per_det = [doubtful.views(frame, d) for d in dets]
    doubtful._read_views(per_det)
    assert per_det[0][0].made == 2  # two views agreed: the third never made


def test_a_false_detection_is_read_from_one_view(recognizer) -> None:
    unsure = PlateRecognizer.__new__(PlateRecognizer)
    unsure.__dict__.update(recognizer.__dict__)
    unsure.config = replace(recognizer.config, vote_below=1.0)  # every plate is in doubt
    rng = np.random.default_rng(7)
    grille = [(rng.integers(0, 256, (48, 200, 3), dtype=np.uint8), False) for _ in range(3)]
    with _counting(recognizer.recognizer) as calls:
        texts = unsure._read_views([(Views.ready(grille), "unknown")])
    assert len(calls) == 1 and texts[0][1:] == [None, None]
    # with a double-row view the layout is the vote's to decide: all views are read
    double = [*grille[:2], (rng.integers(0, 256, (144, 288, 3), dtype=np.uint8), True)]
    texts = unsure._read_views([(Views.ready(double), "yellow")])
    assert texts[0][1] is not None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("read_views", 0),
        ("read_views", 4),
        ("refine_plate_px", 20),
        ("candidate_score", 1.5),
        ("second_pass_windows", -1),
        ("second_pass_windows", 17),
    ],
)
def test_lpr_config_rejects_bad_values(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=key):
        LprConfig(**{key: value})


def test_detector_input_equals_opencv_blob_also_for_a_tile_view() -> None:
    import cv2

    from edged.lpr.detect import to_blob

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (77, 131, 3), dtype=np.uint8)
    for part in (image, image[5:60, 7:100]):
        expected = cv2.dnn.blobFromImage(part, 1.0, None, (104.0, 117.0, 123.0), False, False)
        assert np.array_equal(to_blob(part), expected)
