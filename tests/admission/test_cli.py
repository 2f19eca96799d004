"""The list commands work on the daemon's own files through the config, and align Chinese."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from edged.cli.main import main
from tests.cli.tables import aligned

CSV = (
    "车牌号码,车牌颜色,燃料类型,排放阶段,运输单位\n"
    "冀A12345,黄色,柴油,国五,唐山市丰润区鑫达运输有限公司\n"
    "冀B77777,黄,柴油,国六b,X\n"
)


def _config(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    cfg = tmp_path / "edged.toml"
    cfg.write_text(f'[site]\nid = "p1"\ngate_id = "g1"\n[daemon]\ndata_dir = "{data}"\n')
    return cfg


def test_every_list_command_honours_config_and_audits_changes_in_the_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EDGED_REGISTRY_DB", raising=False)
    cfg = _config(tmp_path)
    csv = tmp_path / "v.csv"
    csv.write_text(CSV, encoding="utf-8")
    # --config before or after the subcommand: the registry under daemon.data_dir
    assert main(["--config", str(cfg), "registry", "import", str(csv), "--mode", "upsert"]) == 0
    assert main(["blacklist", "add", "冀B77777", "--reason", "超标排放", "--config", str(cfg)]) == 0
    argv = ["approval", "add", "冀A12345", "--reason", "抢修设备运输", "--applicant", "张三"]
    assert main([*argv, "--approver", "李四", "--config", str(cfg)]) == 0
    assert main(["alert", "set", "orange", "--actor", "环保专员", "--config", str(cfg)]) == 0
    capsys.readouterr()
    assert (tmp_path / "data" / "registry.db").is_file()
    assert main(["registry", "list", "--config", str(cfg), "--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["plate"] for r in rows] == ["冀A12345", "冀B77777"]
    assert rows[0]["fleet"] == "唐山市丰润区鑫达运输有限公司" and rows[0]["emission_stage"] == "国5"
    assert main(["alert", "show", "--config", str(cfg)]) == 0
    assert "orange" in capsys.readouterr().out
    # each change is an audit row in the ledger beside the registry, as an MQTT change is
    db = sqlite3.connect(tmp_path / "data" / "ledger.db")
    actions = [json.loads(f)["action"] for (f,) in db.execute("SELECT fields FROM audit")]
    db.close()
    assert len(actions) == 4, actions
    assert main(["ledger", "verify", "--config", str(cfg)]) == 0


def test_without_config_or_db_the_error_says_what_to_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EDGED_REGISTRY_DB", raising=False)
    missing = tmp_path / "nope.toml"
    assert main(["registry", "list", "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "file not found" in err and "/etc/edged/edged.example.toml" in err
    assert "edged config example" in err and "config/edged.example.toml" not in err


def test_tables_align_chinese_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "r.db")
    csv = tmp_path / "v.csv"
    csv.write_text(CSV, encoding="utf-8")
    assert main(["registry", "import", str(csv), "--mode", "upsert", "--db", db]) == 0
    argv = ["blacklist", "add", "冀B77777", "--reason", "超标排放", "--source", "生态环境局"]
    assert main([*argv, "--db", db]) == 0
    assert main(["blacklist", "add", "冀A12345", "--reason", "遥感监测超标", "--db", db]) == 0
    capsys.readouterr()
    for argv in (["registry", "list"], ["blacklist", "list"]):
        assert main([*argv, "--db", db]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) >= 2
        assert aligned(lines), "\n".join(lines)
