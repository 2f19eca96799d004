"""docs/REGISTRY.md says what the code does: its CSV examples, headings and commands."""

from __future__ import annotations

import re
import shlex
from datetime import UTC
from pathlib import Path

import pytest

from edged.admission.csv_import import parse_csv, parse_items
from edged.cli.main import main

DOC = (Path(__file__).resolve().parents[2] / "docs" / "REGISTRY.md").read_text(encoding="utf-8")
KINDS = {"plant_vehicles": "plant_vehicles", "machinery": "nrmm", "vehicles": "vehicles"}


def test_the_csv_examples_import_cleanly() -> None:
    blocks = re.findall(r"```csv (\w+)\n(.*?)```", DOC, re.S)
    assert [k for k, _ in blocks] == ["plant_vehicles", "machinery"]
    for kind, text in blocks:
        res = parse_csv(text.encode("gbk"), KINDS[kind])  # type: ignore[arg-type]
        assert res.ok and res.records, (kind, res.errors)


def test_every_heading_in_the_table_is_accepted() -> None:
    table = DOC.split("these are accepted")[1].split("\n\n", 2)[1]
    rows = re.findall(r"^\| (\w+) \| ([^|]+) \|$", table, re.M)[1:]  # less the heading row
    assert len(rows) == 11
    machine = {"registry_no", "env_code", "made_on", "nameplate"}
    for field, headings in rows:
        kind = "nrmm" if field in machine else "vehicles"
        key = {"registry_no": "HB1"} if kind == "nrmm" else {"plate": "冀A12345"}
        for heading in (h.strip() for h in headings.split(",")):
            item = {**key, heading: "x"} if heading not in ("plate", "registry_no") else key
            _records, errors = parse_items(kind, "upsert", [item], UTC)  # type: ignore[arg-type]
            unknown = [str(e) for e in errors if e.message == "unknown field"]
            assert not unknown, (field, heading, unknown)
            # and the heading lands in its field, not another one
            assert all(e.field in (field, "fuel") for e in errors), (heading, errors)


def test_the_alert_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (command,) = re.findall(r"`(edged alert set orange [^`]+)`", DOC)
    argv = [*shlex.split(command)[1:], "--db", str(tmp_path / "registry.db")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert (
        "alert level orange from 2030-12-01T20:00:00+08:00 until 2030-12-04T00:00:00+08:00" in out
    )


def test_the_field_guide_commands_parse() -> None:
    """Every list command docs/FIELD.md shows has the options the commands take."""
    from edged.cli.main import build_parser

    field = (Path(__file__).resolve().parents[2] / "docs" / "FIELD.md").read_text("utf-8")
    block = field.split("## Lists: registry")[1].split("```sh\n")[1].split("```")[0]
    lines = [line.split("#")[0] for line in block.splitlines() if line.startswith("edged ")]
    assert len(lines) >= 7
    parser = build_parser()
    for line in lines:
        args = parser.parse_args(shlex.split(line)[1:])  # exits on a wrong or missing option
        assert callable(args.func), line
        if "--operator" in line:
            assert args.operator == "张三"
