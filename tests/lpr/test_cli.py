"""``edged lpr read --json`` writes JSON Lines on stdout and nothing else, so it pipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edged.lpr.models import check_models
from tests.conftest import shared_data
from tests.lpr.conftest import MODEL_DIR, REPO


def test_lpr_read_json_pipes_into_a_json_lines_reader(tmp_path: Path) -> None:
    if check_models(MODEL_DIR):
        pytest.skip("models not fetched: run python models/fetch.py")
    scenes = sorted((shared_data("plates-dev") / "scene").glob("*.jpg"))[:2]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    images = [*map(str, scenes), str(broken)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "EDGED_CONFIG": str(tmp_path / "none.toml")}
    read = [sys.executable, "-m", "edged", "lpr", "read", "--json", "--model-dir", str(MODEL_DIR)]
    # the integrator's pipe, exactly: edged lpr read --json IMG… | python -m json.tool --json-lines
    proc = subprocess.run(
        [
            "bash",
            "-o",
            "pipefail",
            "-c",
            '"$@" | ' + f"{sys.executable} -m json.tool --json-lines --compact",
            "edged",
            *read,
            *images,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # exit 1: one file was not an image; the pipe itself must not fail on a stray line
    assert proc.returncode == 1, proc.stderr
    assert "Expecting value" not in proc.stderr and "Extra data" not in proc.stderr
    objects = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["file"] for o in objects] == images
    assert all(o["plates"] for o in objects[:2]) and objects[2]["error"] == "not a readable image"
