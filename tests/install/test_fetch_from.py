"""models/fetch.py --from DIR: offline model install, still checked against the manifest."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FETCH = REPO / "models" / "fetch.py"

spec = importlib.util.spec_from_file_location("edged_models_fetch", FETCH)
assert spec and spec.loader
fetch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fetch)


def entry(name: str, data: bytes) -> dict:
    return {"name": name, "sha256": hashlib.sha256(data).hexdigest()}


def test_copy_from_installs_files_whose_hash_matches(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    (src / "a.onnx").write_bytes(b"model a")
    lines = fetch.copy_from(src, dest, [entry("a.onnx", b"model a")])
    assert (dest / "a.onnx").read_bytes() == b"model a"
    assert lines[0].startswith("copied   a.onnx")


def test_copy_from_refuses_an_altered_file_and_installs_nothing(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    (src / "a.onnx").write_bytes(b"model a, altered")
    with pytest.raises(fetch.FetchError, match="does not match the manifest"):
        fetch.copy_from(src, dest, [entry("a.onnx", b"model a")])
    assert list(dest.iterdir()) == []


def test_copy_from_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(fetch.FetchError, match=r"b\.onnx is not in"):
        fetch.copy_from(tmp_path, tmp_path / "dest", [entry("b.onnx", b"x")])
    with pytest.raises(fetch.FetchError, match="no such folder"):
        fetch.copy_from(tmp_path / "nope", tmp_path / "dest", [entry("b.onnx", b"x")])


def test_cli_from_the_fetched_models_then_again_is_a_no_op(tmp_path: Path) -> None:
    manifest = fetch.load_manifest() + fetch.load_derived()
    source = REPO / "models" / "onnx"
    if any(not (source / e["name"]).is_file() for e in manifest):
        pytest.skip("models not fetched: run python models/fetch.py")
    dest = tmp_path / "models"
    cmd = [sys.executable, str(FETCH), "--from", str(source), "--dest", str(dest)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("copied ") == len(manifest)
    assert (dest / "manifest.toml").is_file()
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and second.stdout.count("already installed") == len(manifest)
