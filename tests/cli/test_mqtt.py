"""``edged mqtt schemas`` writes the contract's files and tells a stale folder from a current one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edged.cli.main import main


def test_schemas_are_written_and_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "schemas"
    assert main(["mqtt", "schemas", "--out", str(out)]) == 0
    index = json.loads((out / "topics.json").read_text(encoding="utf-8"))
    for topic in index["topics"]:
        assert (out / topic["schema"]).is_file(), topic
    assert main(["mqtt", "schemas", "--out", str(out), "--check"]) == 0
    capsys.readouterr()
    passage = out / "passage.json"
    passage.write_text(passage.read_text(encoding="utf-8").replace("plate_colour", "plate_color"))
    (out / "sensors.json").write_text("{}")
    assert main(["mqtt", "schemas", "--out", str(out), "--check"]) == 1
    err = capsys.readouterr().err
    assert f"{passage}: differs from this version" in err
    assert "sensors.json: not a schema of this version" in err
    assert f"regenerate with: edged mqtt schemas --out {out}" in err
