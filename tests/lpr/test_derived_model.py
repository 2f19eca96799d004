"""The derived recogniser (models/derive.py) reads exactly like the model as shipped."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from edged.lpr.models import EXPECTED_SHA256, REQUIRED, check_models, file_sha256
from edged.lpr.recognize import TextRead, TextRecognizer
from edged.lpr.synth import render_plate
from tests.lpr.conftest import MODEL_DIR, REPO

SOURCE = "ch_PP-OCRv4_rec_infer.onnx"
DERIVED = "ch_PP-OCRv4_rec_plate.onnx"


def same_read(a: TextRead | None, b: TextRead | None) -> None:
    """The same text and form; confidences equal to float32 rounding."""
    assert a is not None and b is not None
    assert (a.text, a.form) == (b.text, b.form)
    assert np.allclose(a.char_confidences, b.char_confidences, atol=1e-4)


@pytest.fixture(scope="module")
def both() -> tuple[TextRecognizer, TextRecognizer]:
    if check_models(MODEL_DIR, (SOURCE, DERIVED)):
        pytest.skip("models not fetched: run python models/fetch.py")
    return TextRecognizer(MODEL_DIR / SOURCE), TextRecognizer(MODEL_DIR / DERIVED)


def test_the_default_recogniser_is_the_derived_file() -> None:
    assert REQUIRED == ("clp_det.onnx", DERIVED, "ch_PP-OCRv4_det_lines.onnx")
    assert DERIVED in EXPECTED_SHA256


def test_the_installed_derived_file_has_the_expected_hash() -> None:
    path = MODEL_DIR / DERIVED
    if not path.is_file():
        pytest.skip("models not fetched: run python models/fetch.py")
    assert file_sha256(path) == EXPECTED_SHA256[DERIVED]


def test_same_output_on_a_plate_crop(both: tuple[TextRecognizer, TextRecognizer]) -> None:
    shipped, derived = both
    batch = TextRecognizer.prepare([render_plate("京A12345", "blue", scale=0.5)])
    assert batch.shape[0] == 1 and batch.shape[2] == 48
    want, got = shipped.run(batch), derived.run(batch)
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-4
    same_read(shipped.decode(want[0]), derived.decode(got[0]))
    assert derived.decode(got[0]).text == "京A12345"


def test_same_output_on_a_padded_batch_of_two(
    both: tuple[TextRecognizer, TextRecognizer],
) -> None:
    shipped, derived = both
    crops = [
        render_plate("粤B8C9D0", "blue", scale=0.5),
        render_plate("沪AD12345", "green", scale=0.3),  # 8 characters: a wider plate
    ]
    batch = TextRecognizer.prepare(crops)
    assert batch.shape[0] == 2
    widths = [round(c.shape[1] * 48 / c.shape[0]) for c in crops]
    assert widths[0] < widths[1]  # the first crop is zero-padded to the second's width
    want, got = shipped.run(batch), derived.run(batch)
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-4
    for i in range(2):
        same_read(shipped.decode(want[i]), derived.decode(got[i]))


def test_the_daemon_does_not_import_onnx() -> None:
    code = "import sys, edged.lpr.pipeline; print('onnx' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_the_derived_text_line_detector_gives_the_shipped_ones_map() -> None:
    """Same DB probability map, so the fallback proposes the same lines."""
    import onnxruntime as ort

    shipped, derived = "ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_det_lines.onnx"
    if check_models(MODEL_DIR, (shipped, derived)):
        pytest.skip("models not fetched: run python models/fetch.py")
    scene = render_plate("鲁B12345", "yellow", scale=0.6)
    image = np.full((192, 256, 3), 120, np.uint8)
    image[40 : 40 + scene.shape[0], 20 : 20 + scene.shape[1]] = scene[:, : 256 - 20]
    blob = (image.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
    maps = []
    for name in (shipped, derived):
        session = ort.InferenceSession(str(MODEL_DIR / name), providers=["CPUExecutionProvider"])
        maps.append(session.run(None, {session.get_inputs()[0].name: blob})[0])
    assert maps[0].shape == maps[1].shape == (1, 1, 192, 256)
    assert maps[0].max() > 0.5, "the plate's text is seen at all"
    assert np.abs(maps[0] - maps[1]).max() < 1e-4
