import tomllib
from pathlib import Path

from edged.lpr.models import EXPECTED_SHA256, REQUIRED, check_models

MANIFEST = Path(__file__).resolve().parents[2] / "models" / "manifest.toml"


def test_manifest_and_runtime_table_agree():
    manifest = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    entries, derived = manifest["model"], manifest["derived"]
    assert {e["name"]: e["sha256"] for e in [*entries, *derived]} == EXPECTED_SHA256
    assert "ch_PP-OCRv4_rec_plate.onnx" in {d["name"] for d in derived}
    made_before = {e["name"] for e in entries}
    for d in derived:  # from a wheel's file or from a derived file listed before it
        assert d["from"] in made_before, d["name"]
        made_before.add(d["name"])
        for key in (
            "recipe",
            "recipe_version",
            "onnx",
            "licence",
            "role",
            "inputs",
            "outputs",
            "preprocessing",
        ):
            assert key in d, (d["name"], key)
    for e in entries:
        for key in (
            "package",
            "version",
            "file_in_wheel",
            "licence",
            "inputs",
            "outputs",
            "preprocessing",
        ):
            assert key in e, (e["name"], key)
    assert set(REQUIRED) <= set(EXPECTED_SHA256)


def test_check_models_missing_folder(tmp_path):
    problems = check_models(tmp_path / "nope")
    assert len(problems) == 1 and "python models/fetch.py --dest" in problems[0]
    assert "/opt/edged/models" in problems[0], "the fix names where the package puts them"


def test_check_models_missing_and_wrong_files(tmp_path):
    (tmp_path / "clp_det.onnx").write_bytes(b"not a model")
    problems = check_models(tmp_path)
    assert len(problems) == 3
    assert any("clp_det.onnx" in p and "SHA-256" in p for p in problems)
    assert any("ch_PP-OCRv4_rec_plate.onnx" in p and "missing" in p for p in problems)
    assert any("ch_PP-OCRv4_det_lines.onnx" in p and "missing" in p for p in problems)
    assert all("python models/fetch.py --dest" in p for p in problems)
