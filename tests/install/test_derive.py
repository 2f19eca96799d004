"""models/derive.py and the derived files of models/fetch.py, with the real models."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
FETCH = REPO / "models" / "fetch.py"
SOURCES = REPO / "models" / "onnx"

spec = importlib.util.spec_from_file_location("edged_models_fetch_derive", FETCH)
assert spec and spec.loader
fetch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fetch)

DERIVED = {d["name"]: d for d in fetch.load_derived()}
PLATE = DERIVED["ch_PP-OCRv4_rec_plate.onnx"]


def sources_or_skip() -> list[dict]:
    """The [[model]] entries, or skip when this clone has not fetched them."""
    models = fetch.load_manifest()
    if any(not (SOURCES / m["name"]).is_file() for m in models):
        pytest.skip("models not fetched: run python models/fetch.py")
    return models


def folder_with_sources(path: Path) -> Path:
    """A model folder holding the fetched [[model]] files and no derived one."""
    path.mkdir()
    for entry in sources_or_skip():
        shutil.copyfile(SOURCES / entry["name"], path / entry["name"])
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_derive_is_deterministic_and_reproduces_the_manifest_hash(tmp_path: Path) -> None:
    sources_or_skip()
    derive = fetch.load_derive(PLATE["onnx"])
    source = SOURCES / PLATE["from"]
    stats = derive.derive_file(source, tmp_path / "a.onnx")
    derive.derive_file(source, tmp_path / "b.onnx")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    assert sha256(tmp_path / "a.onnx") == PLATE["sha256"]
    assert (PLATE["recipe"], PLATE["recipe_version"]) == (derive.RECIPE, derive.RECIPE_VERSION)
    assert (stats.conv_affine, stats.hardswish, stats.affine_conv) == (28, 28, 12)
    assert not list(tmp_path.glob("*.part"))


def test_the_text_line_detector_is_derived_by_the_same_recipe(tmp_path: Path) -> None:
    """The fallback's detector had every weight in a Constant node and the same
    spelt-out HardSwish: the rewrite reproduces the manifest's bytes from it too."""
    sources_or_skip()
    lines = DERIVED["ch_PP-OCRv4_det_lines.onnx"]
    derive = fetch.load_derive(lines["onnx"])
    stats = derive.derive_file(SOURCES / lines["from"], tmp_path / "lines.onnx")
    assert sha256(tmp_path / "lines.onnx") == lines["sha256"]
    assert (lines["recipe"], lines["recipe_version"]) == (derive.RECIPE, derive.RECIPE_VERSION)
    assert stats.hardswish > 0 and stats.initializers > 100


def test_derived_model_keeps_opset_and_metadata(tmp_path: Path) -> None:
    sources_or_skip()
    import onnx

    derive = fetch.load_derive(PLATE["onnx"])
    source = onnx.load(SOURCES / PLATE["from"])
    model, _ = derive.derive_model(source)
    assert [(o.domain, o.version) for o in model.opset_import] == [
        (o.domain, o.version) for o in source.opset_import
    ]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["character"] == {p.key: p.value for p in source.metadata_props}["character"]
    ops = [n.op_type for n in model.graph.node]
    assert "Clip" not in ops and "Div" in ops  # the layer norms keep their Div
    assert ops.count("HardSigmoid") == 2 + 28
    # the weights are initializers, not Constant nodes ONNX Runtime would copy
    assert "Constant" not in ops and len(model.graph.initializer) > 200


def test_rules_on_a_small_graph() -> None:
    """Each rule where it applies, and no fold into a padded 3x3 conv (inexact there)."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    derive = fetch.load_derive(PLATE["onnx"])
    rng = np.random.default_rng(1)
    consts: list[onnx.NodeProto] = []

    def const(name: str, value: np.ndarray | float) -> str:
        tensor = numpy_helper.from_array(np.asarray(value, dtype=np.float32).reshape(-1), name)
        consts.append(helper.make_node("Constant", [], [name], value=tensor))
        return name

    def weights(name: str, shape: tuple[int, ...]) -> str:
        tensor = numpy_helper.from_array(rng.normal(0, 0.5, shape).astype(np.float32), name)
        consts.append(helper.make_node("Constant", [], [name], value=tensor))
        return name

    clip_lo = helper.make_node(
        "Constant", [], ["lo"], value=numpy_helper.from_array(np.array(0, np.float32))
    )
    clip_hi = helper.make_node(
        "Constant", [], ["hi"], value=numpy_helper.from_array(np.array(6, np.float32))
    )
    body = [
        helper.make_node("Conv", ["x", weights("w1", (4, 3, 3, 3))], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", [const("s1", 1.7), "c1"], ["m1"]),
        helper.make_node("Add", ["m1", const("b1", 0.3)], ["a1"]),
        helper.make_node("Add", ["a1", const("three", 3.0)], ["h1"]),
        helper.make_node("Clip", ["h1", "lo", "hi"], ["h2"]),
        helper.make_node("Mul", ["a1", "h2"], ["h3"]),
        helper.make_node("Div", ["h3", const("six", 6.0)], ["hs"]),
        # affine -> 1x1 conv: folded
        helper.make_node("Mul", [const("s2", 0.8), "hs"], ["m2"]),
        helper.make_node("Add", ["m2", const("b2", -0.4)], ["a2"]),
        helper.make_node(
            "Conv", ["a2", weights("w2", (5, 4, 1, 1)), const("cb2", [0.1] * 5)], ["c2"]
        ),
        # affine -> padded 3x3 conv: left alone
        helper.make_node("Mul", ["c2", const("s3", 1.3)], ["m3"]),
        helper.make_node("Add", ["m3", const("b3", 0.5)], ["a3"]),
        helper.make_node("Relu", ["a3"], ["r3"]),
        helper.make_node("Mul", ["r3", const("s4", 0.9)], ["m4"]),
        helper.make_node("Add", ["m4", const("b4", 0.7)], ["a4"]),
        helper.make_node("Conv", ["a4", weights("w4", (2, 5, 3, 3))], ["y"], pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        [*consts, clip_lo, clip_hi, *body],
        "small",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 6, 8])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2, 6, 8])],
    )
    source = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    source.ir_version = 8
    model, stats = derive.derive_model(source)
    # conv1 + affine, c2 + (m3, a3); hardswish; (m2, a2) into the 1x1 conv; not (m4, a4)
    assert (stats.conv_affine, stats.hardswish, stats.affine_conv) == (2, 1, 1)
    kept = {n.output[0] for n in model.graph.node}
    assert {"a1", "hs", "a3", "r3", "m4", "a4", "y"} <= kept  # names of what is left stay
    assert not {"c1", "m1", "h1", "h2", "h3", "m2", "a2", "c2", "m3"} & kept

    x = rng.normal(0, 2, (1, 3, 6, 8)).astype(np.float32)

    def run(m: onnx.ModelProto) -> np.ndarray:
        session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": x})[0]

    assert np.abs(run(model) - run(source)).max() < 1e-4


def test_fetch_replaces_a_derived_file_with_wrong_bytes(tmp_path: Path) -> None:
    dest = folder_with_sources(tmp_path / "models")
    (dest / PLATE["name"]).write_bytes(b"not the derived model")
    report = fetch.fetch(dest)
    assert sha256(dest / PLATE["name"]) == PLATE["sha256"]
    assert any(line.startswith(f"derived  {PLATE['name']}") for line in report)
    assert (dest / "manifest.toml").is_file()
    assert not list(dest.glob("*.part"))
    again = fetch.fetch(dest)
    assert all(line.startswith("ok ") for line in again)


def test_cli_from_a_folder_without_the_derived_file_derives_it(tmp_path: Path) -> None:
    source = folder_with_sources(tmp_path / "stick")
    dest = tmp_path / "models"
    cmd = [sys.executable, str(FETCH), "--from", str(source), "--dest", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"derived  {PLATE['name']}" in proc.stdout
    assert sha256(dest / PLATE["name"]) == PLATE["sha256"]
    assert not (source / PLATE["name"]).exists()


def test_from_a_folder_with_an_altered_derived_file_installs_nothing(tmp_path: Path) -> None:
    source = folder_with_sources(tmp_path / "stick")
    (source / PLATE["name"]).write_bytes(b"altered")
    dest = tmp_path / "models"
    with pytest.raises(fetch.FetchError, match="does not match the manifest"):
        fetch.fetch(dest, from_dir=source)
    assert not (dest / PLATE["name"]).exists()


def test_missing_onnx_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = folder_with_sources(tmp_path / "models")
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now fails
    with pytest.raises(fetch.FetchError) as caught:
        fetch.fetch(dest)
    message = str(caught.value)
    assert "needs the Python package onnx" in message
    assert f"-m pip install -c {REPO / 'constraints.txt'} onnx=={PLATE['onnx']}" in message
    assert not (dest / PLATE["name"]).exists()


def test_a_hash_mismatch_names_both_hashes_and_installs_nothing(tmp_path: Path) -> None:
    dest = folder_with_sources(tmp_path / "models")
    wrong = {**PLATE, "sha256": "0" * 64}
    with pytest.raises(fetch.FetchError) as caught:
        fetch.derive_one(wrong, dest / PLATE["from"], dest)
    message = str(caught.value)
    assert "0" * 64 in message and PLATE["sha256"] in message
    assert f"made with onnx {PLATE['onnx']}" in message and "pip install" in message
    assert not (dest / PLATE["name"]).exists()
    assert not list(dest.glob("*.part"))


def test_a_recipe_other_than_derive_py_makes_is_refused(tmp_path: Path) -> None:
    dest = folder_with_sources(tmp_path / "models")
    with pytest.raises(fetch.FetchError, match="different versions of edged"):
        fetch.derive_one({**PLATE, "recipe_version": 999}, dest / PLATE["from"], dest)
