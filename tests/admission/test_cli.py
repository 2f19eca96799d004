"""The operator's commands: files from the config, --operator required, every change audited."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from edged.cli.main import main
from edged.ledger.store import LedgerStore
from edged.ledger.verify import verify_db
from tests.admission.photos import picture
from tests.cli.tables import aligned

REPO = Path(__file__).resolve().parents[2]
OP = "张工"
VEHICLES = (
    "车牌号码,车牌颜色,燃料类型,排放阶段,发动机号码,车队名称,运输货物名称,注册日期\n"
    "冀A12345,黄色,柴油,国六,WP10.336E53,唐山运达物流,焦炭,2019-05-20\n"
    "冀B54321,黄色,天然气,国五,,唐山运输,,\n"
)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    cfg = tmp_path / "edged.toml"
    (tmp_path / "data").mkdir()
    cfg.write_text(
        f'[site]\nid = "p1"\ngate_id = "g1"\n[daemon]\ndata_dir = "{tmp_path / "data"}"\n',
        encoding="utf-8",
    )
    (tmp_path / "v.csv").write_text(VEHICLES, encoding="utf-8")
    return cfg


def edged(cfg: Path, *argv: str) -> int:
    return main(["--config", str(cfg), *argv])


def audit(cfg: Path) -> list[dict]:
    with LedgerStore(cfg.parent / "data" / "ledger.db") as store:
        return [json.loads(fields) for _s, _h, _p, fields in store.audit_rows()]


def test_every_change_path_is_audited_with_who(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path
    picture(d / "qd.jpg", 1)
    picture(d / "xsz.jpg", 2)
    picture(d / "mp.jpg", 3)
    (d / "plant.csv").write_text("车牌号码,燃料类型,排放阶段\n冀A0C001,柴油,国五\n")
    (d / "m.csv").write_text("登记编码,机械种类,排放阶段,号牌号码\nHB130001,装载机,国三,冀A9999X\n")
    steps = [
        ("registry", "import", str(d / "v.csv"), "--mode", "replace"),
        (
            "registry",
            "import",
            str(d / "plant.csv"),
            "--mode",
            "upsert",
            "--kind",
            "plant_vehicles",
        ),
        (
            "registry",
            "photo",
            "冀A12345",
            "--env-list",
            str(d / "qd.jpg"),
            "--licence",
            str(d / "xsz.jpg"),
        ),
        ("registry", "delete", "冀B54321"),
        ("machinery", "import", str(d / "m.csv"), "--mode", "upsert"),
        ("machinery", "photo", "HB130001", "--nameplate", str(d / "mp.jpg")),
        ("machinery", "delete", "HB130001"),
        ("blacklist", "add", "冀A12345", "--reason", "超标排放车辆"),
        ("blacklist", "remove", "冀A12345"),
        (
            "approval",
            "add",
            "冀A12345",
            "--reason",
            "抢修设备运输",
            "--applicant",
            "李四",
            "--approver",
            "王五",
        ),
        ("alert", "set", "orange", "--reason", "市重污染天气橙色预警"),
        ("cargo", "declare", "冀A12345", "--cargo", "焦煤", "--until", "2099-01-01T00:00:00+08:00"),
    ]
    for argv in steps:
        assert edged(site, *argv, "--operator", OP) == 0, (argv, capsys.readouterr())
    rows = audit(site)
    assert [r["action"] for r in rows] == [
        "vehicles.replace",
        "plant_vehicles.upsert",
        "vehicle.documents",
        "vehicle.delete",
        "nrmm.upsert",
        "machine.documents",
        "machine.delete",
        "blacklist.upsert",
        "blacklist.remove",
        "approval.add",
        "alert.set",
        "cargo.declare",
    ]
    assert {r["actor"] for r in rows} == {OP} and all(r["time"] for r in rows)
    by = {r["action"]: r["details"] for r in rows}
    first = by["vehicles.replace"]["changes"][0]
    assert (first["key"], first["before"], first["after"]["engine_no"]) == (
        "冀A12345",
        None,
        "WP10.336E53",
    )
    assert (
        by["vehicle.delete"]["before"]["plate"] == "冀B54321"
        and by["vehicle.delete"]["after"] is None
    )
    docs = by["vehicle.documents"]
    assert docs["before"] == {} and set(docs["after"]) == {"env_list", "licence"}
    assert (by["alert.set"]["before"], by["alert.set"]["after"]) == ("none", "orange")
    assert by["approval.add"]["approver"] == "王五" and by["approval.add"]["approved_at"]
    assert verify_db(site.parent / "data" / "ledger.db").ok
    # and what the commands changed is there
    capsys.readouterr()
    assert edged(site, "registry", "show", "冀A12345") == 0
    out = capsys.readouterr().out
    assert "engine_no: WP10.336E53" in out and "national_stage: 6" in out
    env_list = docs["after"]["env_list"]
    assert (
        f"env_list (随车清单): {env_list} {site.parent / 'data' / 'documents' / env_list}.jpg"
        in out
    )
    assert edged(site, "alert", "show") == 0 and "orange" in capsys.readouterr().out


def test_a_change_without_an_operator_is_refused(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        edged(site, "alert", "set", "red", "--reason", "市预警")
    assert exc.value.code == 2 and "--operator" in capsys.readouterr().err
    assert edged(site, "registry", "list") == 0, "reading needs no operator"
    assert not (site.parent / "data" / "ledger.db").exists() or audit(site) == []


def test_self_approval_needs_the_config_to_allow_it(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["approval", "add", "冀A12345", "--reason", "抢修设备运输", "--operator", OP]
    assert edged(site, *argv, "--applicant", "李四", "--approver", " 李四") == 2
    assert "another person must approve it" in capsys.readouterr().err
    site.write_text(site.read_text() + "[policy]\napproval_self_approve = true\n")
    approved = "2026-11-30T08:00:00+08:00"
    assert (
        edged(site, *argv, "--applicant", "李四", "--approver", "李四", "--approved-at", approved)
        == 0
    )
    assert f"approved {approved}" in capsys.readouterr().out
    assert edged(site, "approval", "list", "--format", "json") == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["applicant"], row["approver"], row["approved_at"]) == ("李四", "李四", approved)


def test_a_big_import_is_audited_by_counts_and_the_files_digest(site: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    big.write_text("车牌号码,燃料类型\n" + "".join(f"冀D{i:05d},柴油\n" for i in range(21)))
    assert edged(site, "registry", "import", str(big), "--mode", "upsert", "--operator", OP) == 0
    small = tmp_path / "small.csv"
    small.write_text("车牌号码,燃料类型\n冀D00001,天然气\n")
    assert edged(site, "registry", "import", str(small), "--mode", "upsert", "--operator", OP) == 0
    assert edged(site, "registry", "import", str(big), "--mode", "replace", "--operator", OP) == 0
    first, second, third = (r["details"] for r in audit(site))
    assert first == {
        "count": 21,
        "mode": "upsert",
        "source": "big.csv",
        "sha256": hashlib.sha256(big.read_bytes()).hexdigest(),
    }
    assert second["changes"] == [
        {
            "key": "冀D00001",
            "before": {**second["changes"][0]["before"], "fuel": "diesel"},
            "after": {
                **second["changes"][0]["before"],
                "fuel": "gas",
                "updated_at": second["changes"][0]["after"]["updated_at"],
            },
        }
    ]
    assert (third["count"], third["removed"], "changes" in third) == (21, 0, False)


def test_alert_schedule_from_the_command_line(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["alert", "set", "red", "--reason", "市重污染天气红色预警", "--operator", OP]
    window = ["--from", "2099-01-01T20:00:00+08:00", "--until", "2099-01-03T00:00:00+08:00"]
    assert edged(site, *argv, *window) == 0
    assert "until 2099-01-03T00:00:00+08:00" in capsys.readouterr().out
    assert edged(site, "alert", "list") == 0
    out = capsys.readouterr().out
    assert aligned(out.splitlines()[:-1]) and out.endswith("in force now: none\n")
    assert edged(site, "alert", "list", "--format", "json") == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["level"], row["valid_from"], row["valid_until"], row["set_by"]) == (
        "red",
        "2099-01-01T20:00:00+08:00",
        "2099-01-03T00:00:00+08:00",
        OP,
    )
    assert (
        edged(site, *argv, "--from", "2099-01-02T00:00:00", "--until", "2099-01-01T00:00:00") == 2
    )
    assert "valid_until: must be after valid_from" in capsys.readouterr().err
    assert [r["details"]["valid_from"] for r in audit(site)] == ["2099-01-01T20:00:00+08:00"]
    # a time typed without an offset is the site's (Asia/Shanghai), whatever the board's zone
    naive = ["--from", "2099-02-01T08:00", "--until", "2099-02-02T08:00"]
    assert (
        edged(site, "alert", "set", "yellow", "--reason", "黄色预警", "--operator", OP, *naive) == 0
    )
    assert audit(site)[-1]["details"]["valid_from"] == "2099-02-01T08:00:00+08:00"


def test_a_waybill_card_is_declared_and_listed_from_the_command_line(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    until = ["--until", "2099-01-01T00:00:00+08:00", "--operator", OP]
    argv = ["cargo", "declare", "--tag", "e200c0ffee01", "--cargo", "铁矿石", "--uses", "1"]
    assert edged(site, *argv, *until) == 0
    assert capsys.readouterr().out.startswith("cargo 1: waybill card E200C0FFEE01 carries 铁矿石")
    assert edged(site, "cargo", "declare", "--cargo", "煤", *until) == 2
    assert "plate, tag: expected a plate or a waybill card's tag (EPC), found neither" in (
        capsys.readouterr().err
    )
    assert edged(site, "cargo", "list", "--tag", "E200C0FFEE01", "--format", "json") == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["tag"], row["plate"], row["cargo"], row["use"]) == (
        "E200C0FFEE01",
        "",
        "铁矿石",
        "0/1",
    )
    (entry,) = audit(site)
    assert (entry["action"], entry["details"]["tag"]) == ("cargo.declare", "E200C0FFEE01")


def test_a_ledger_that_cannot_be_written_refuses_the_change(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (site.parent / "data" / "ledger.db").mkdir()  # not a database
    argv = ["blacklist", "add", "冀A12345", "--reason", "超标排放车辆", "--operator", OP]
    assert edged(site, *argv) == 3
    assert "nothing was changed" in capsys.readouterr().err
    assert edged(site, "blacklist", "list", "--format", "json") == 0
    assert capsys.readouterr().out == "", "nothing was blacklisted"


def test_db_overrides_the_config_and_a_second_process_extends_the_chain(tmp_path: Path) -> None:
    """The daemon holds the ledger open and appends; the CLI, another process, appends too."""
    db = tmp_path / "box" / "registry.db"
    daemon_ledger = LedgerStore(tmp_path / "box" / "ledger.db")
    try:
        daemon_ledger.append_audit("gate", "manual_open", {"lane": "main"})
        env = {**os.environ, "PYTHONPATH": str(REPO), "EDGED_CONFIG": str(tmp_path / "none.toml")}
        argv = ["alert", "set", "red", "--reason", "市预警通知", "--operator", OP, "--db", str(db)]
        proc = subprocess.run(
            [sys.executable, "-m", "edged", *argv],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        daemon_ledger.append_audit("gate", "manual_open", {"lane": "main"})
        rows = [json.loads(f) for *_x, f in daemon_ledger.audit_rows()]
    finally:
        daemon_ledger.close()
    assert [(r["actor"], r["action"]) for r in rows] == [
        ("gate", "manual_open"),
        (OP, "alert.set"),
        ("gate", "manual_open"),
    ]
    assert verify_db(tmp_path / "box" / "ledger.db").ok


LIST_CSV = (
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
    csv.write_text(LIST_CSV, encoding="utf-8")
    # --config before or after the subcommand: the registry under daemon.data_dir
    argv = ["--config", str(cfg), "registry", "import", str(csv), "--mode", "upsert"]
    assert main([*argv, "--operator", OP]) == 0
    argv = ["blacklist", "add", "冀B77777", "--reason", "超标排放", "--config", str(cfg)]
    assert main([*argv, "--operator", OP]) == 0
    argv = ["approval", "add", "冀A12345", "--reason", "抢修设备运输", "--applicant", "张三"]
    assert main([*argv, "--approver", "李四", "--config", str(cfg), "--operator", OP]) == 0
    argv = ["alert", "set", "orange", "--actor", "环保专员", "--reason", "市重污染天气橙色预警"]
    assert main([*argv, "--config", str(cfg)]) == 0
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
    csv.write_text(LIST_CSV, encoding="utf-8")
    argv = ["registry", "import", str(csv), "--mode", "upsert", "--db", db, "--operator", OP]
    assert main(argv) == 0
    argv = ["blacklist", "add", "冀B77777", "--reason", "超标排放", "--source", "生态环境局"]
    assert main([*argv, "--db", db, "--operator", OP]) == 0
    argv = ["blacklist", "add", "冀A12345", "--reason", "遥感监测超标", "--db", db]
    assert main([*argv, "--operator", OP]) == 0
    capsys.readouterr()
    for argv in (["registry", "list"], ["blacklist", "list"]):
        assert main([*argv, "--db", db]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) >= 2
        assert aligned(lines), "\n".join(lines)
