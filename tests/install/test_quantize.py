"""models/quantize.py and the INT8 variants models/fetch.py makes with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.install.test_derive import fetch, folder_with_sources, sha256, sources_or_skip

REPO = Path(__file__).resolve().parents[2]
SOURCES = REPO / "models" / "onnx"
INT8 = {d["name"]: d for d in fetch.load_derived() if d["recipe"] == fetch.QUANTIZE_RECIPE}


def test_every_model_read_by_default_has_an_int8_variant() -> None:
    assert {d["from"] for d in INT8.values()} == {"clp_det.onnx", "ch_PP-OCRv4_rec_plate.onnx"}
    for entry in INT8.values():
        assert entry["optional"] is True
        assert (REPO / "models" / entry["calibration"]).is_file()


def test_only_the_wide_dense_convolutions_are_8_bit() -> None:
    """Depthwise and narrow convolutions in 8 bits lost 13 points of the recogniser's
    exact rate and ran no faster: the recipe leaves them float."""
    entry = INT8["ch_PP-OCRv4_rec_plate_int8.onnx"]
    source = SOURCES / entry["from"]
    if not source.is_file():
        pytest.skip("models not fetched: run python models/fetch.py")
    quantize = fetch.load_quantize(entry)
    model = onnx.load(source)
    wide = quantize.wide_convolutions(model)
    weights = {t.name: t for t in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    depthwise = [n for n in convs if any(a.name == "group" and a.i > 1 for a in n.attribute)]
    assert depthwise and not {n.name for n in depthwise} & set(wide)
    assert all(
        weights[n.input[1]].dims[1] >= quantize.MIN_CHANNELS for n in convs if n.name in wide
    )
    assert convs[0].name not in wide, "the first layer (3 channels) stays float"
    data = quantize.quantize_bytes(
        source.read_bytes(), quantize.load_ranges(REPO / "models" / entry["calibration"])
    )
    ops = [n.op_type for n in onnx.load_from_string(data).graph.node]
    assert ops.count("QLinearConv") == len(wide) > 0
    assert ops.count("Conv") == len(convs) - len(wide)


@pytest.mark.parametrize("name", sorted(INT8))
def test_quantising_reproduces_the_manifest_hash(name: str) -> None:
    entry = INT8[name]
    source = SOURCES / entry["from"]
    if not source.is_file():
        pytest.skip("models not fetched: run python models/fetch.py")
    quantize = fetch.load_quantize(entry)
    ranges = quantize.load_ranges(REPO / "models" / entry["calibration"])
    first = quantize.quantize_bytes(source.read_bytes(), ranges)
    assert first == quantize.quantize_bytes(source.read_bytes(), ranges)
    import hashlib

    assert hashlib.sha256(first).hexdigest() == entry["sha256"]


def test_the_int8_detector_gives_the_float_ones_outputs() -> None:
    entry = INT8["clp_det_int8.onnx"]
    if not (SOURCES / entry["from"]).is_file():
        pytest.skip("models not fetched: run python models/fetch.py")
    import onnxruntime as ort

    quantize = fetch.load_quantize(entry)
    data = quantize.quantize_bytes(
        (SOURCES / entry["from"]).read_bytes(),
        quantize.load_ranges(REPO / "models" / entry["calibration"]),
    )
    blob = np.random.default_rng(2).uniform(-120, 130, (1, 3, 96, 160)).astype(np.float32)
    runs = []
    for model in ((SOURCES / entry["from"]).read_bytes(), data):
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        runs.append(session.run(None, {session.get_inputs()[0].name: blob}))
    for f, q in zip(*runs, strict=True):
        assert f.shape == q.shape
    assert "QLinearConv" in {n.op_type for n in onnx.load_from_string(data).graph.node}
    # the plate scores agree to the rounding of 8 bits
    assert np.abs(runs[0][1] - runs[1][1]).max() < 0.25


def test_ranges_of_another_kind_are_refused(tmp_path: Path) -> None:
    quantize = fetch.load_quantize(INT8["clp_det_int8.onnx"])
    other = tmp_path / "ranges.json"
    other.write_text(json.dumps({"recipe": "something else", "ranges": {}}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a calibration file"):
        quantize.load_ranges(other)


def test_fetch_makes_the_variants_also_from_a_derived_file(tmp_path: Path) -> None:
    dest = folder_with_sources(tmp_path / "models")
    required = fetch.make_derived(dest, sources_or_skip(), include_optional=False)
    assert not [line for line in required if any(name in line for name in INT8)]
    assert not (dest / "clp_det_int8.onnx").exists()
    report = fetch.make_derived(dest, sources_or_skip())
    for name, entry in INT8.items():
        assert sha256(dest / name) == entry["sha256"]
        assert any(line.startswith(f"derived  {name}") for line in report)


def test_a_quantising_recipe_other_than_quantize_py_makes_is_refused(tmp_path: Path) -> None:
    dest = folder_with_sources(tmp_path / "models")
    entry = INT8["clp_det_int8.onnx"]
    with pytest.raises(fetch.FetchError, match="different versions of edged"):
        fetch.derive_one({**entry, "recipe_version": 999}, dest / entry["from"], dest)
    assert not (dest / entry["name"]).exists()
