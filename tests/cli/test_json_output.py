"""Every JSON output mode writes JSON on stdout and nothing else, in a real process.

An integrator pipes these into jq or a JSON Lines reader: one log line on
stdout breaks the pipe. Logs go to stderr; each command below logs there
while it runs (a registry change, a ledger opened).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.ledger.conftest import make_record

REPO = Path(__file__).resolve().parents[2]


def _edged(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "EDGED_CONFIG": str(cwd / "edged.toml")}
    return subprocess.run(
        [sys.executable, "-m", "edged", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _json_lines(out: str) -> list[object]:
    lines = out.splitlines()
    assert lines, "no output"
    return [json.loads(line) for line in lines]  # fails on any line that is not JSON


def test_json_modes_print_only_json(tmp_path: Path) -> None:
    from edged.ledger import LedgerStore

    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "edged.toml").write_text(
        f'[site]\nid = "p1"\ngate_id = "g1"\n[daemon]\ndata_dir = "{data}"\n'
        '[camera]\ntype = "none"\n',
        encoding="utf-8",
    )
    with LedgerStore(data / "ledger.db") as store:
        for i in range(3):
            store.append_passage(make_record(i, emission_stage="国5"))
    csv = tmp_path / "v.csv"
    csv.write_text("车牌号码,燃料类型\n冀B12345,柴油\n冀B54321,天然气\n", encoding="utf-8")
    argv = ["registry", "import", str(csv), "--mode", "upsert", "--operator", "张工"]
    imported = _edged(*argv, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert "registry_change" in imported.stderr, "the command logs, and to stderr"

    listed = _edged("registry", "list", "--format", "json", cwd=tmp_path)
    assert [r["plate"] for r in _json_lines(listed.stdout)] == ["冀B12345", "冀B54321"]
    query = _edged("ledger", "query", "--stage", "国五", "--format", "json", cwd=tmp_path)
    assert len(_json_lines(query.stdout)) == 3, query.stderr
    head = _edged("ledger", "head", cwd=tmp_path)
    assert _json_lines(head.stdout)[0]["passages"]["seq"] == 3
    status = _edged("status", "--json", "--socket", str(tmp_path / "none.sock"), cwd=tmp_path)
    assert status.returncode == 1 and status.stdout == "" and "no daemon answers" in status.stderr
