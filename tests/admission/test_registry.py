"""Registry on a real SQLite file; CSV import in all encodings; the CLI."""

from __future__ import annotations

import argparse
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from edged.admission import cli
from edged.admission.csv_import import import_csv, parse_csv
from edged.admission.model import BlacklistEntry, GateRead, Vehicle
from edged.admission.policy import PolicyConfig, decide_read
from edged.admission.registry import ApprovalRefused, Registry

TZ = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=TZ)

CSV_ZH = (
    "车牌号码,车牌颜色,车辆识别代码,燃料类型,排放阶段,运输单位,电子标签,有效期至,危险品车辆\n"
    "冀A12345,黄色,LZZ1CLVB8JD123456,柴油,国五,唐山运输,E2001;E2002,2027-12-31,否\n"
    "冀B54321,黄,,天然气,国六b,唐山运输,,,\n"
    "冀AD12345,黄绿,,纯电动,,,,,是\n"
)


class AuditLog:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, dict]] = []

    def __call__(self, actor: str, action: str, details: dict) -> None:
        self.rows.append((actor, action, details))


@pytest.fixture
def audit() -> AuditLog:
    return AuditLog()


@pytest.fixture
def reg(tmp_path: Path, audit: AuditLog):
    r = Registry(tmp_path / "registry.sqlite", audit=audit)
    yield r
    r.close()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_parse_csv_encodings(encoding: str) -> None:
    res = parse_csv(CSV_ZH.encode(encoding), "vehicles", "upsert", tz=TZ)
    assert res.ok, res.errors
    a, b, c = res.records
    assert (a.plate, a.fuel, a.emission_stage, a.rfid_tags) == (
        "冀A12345",
        "diesel",
        "国5",
        ("E2001", "E2002"),
    )
    assert a.valid_until == datetime(2028, 1, 1, tzinfo=TZ)  # the whole last day counts
    assert (b.fuel, b.emission_stage) == ("gas", "国6b")
    assert (c.fuel, c.plate_colour, c.hazardous) == ("electric", "yellow_green", True)


def test_parse_csv_english_headings() -> None:
    text = "plate,fuel,emission_stage\n冀A00001,diesel,China V\n"
    res = parse_csv(text.encode(), "vehicles")
    assert res.ok and res.records[0].emission_stage == "国5"


def test_parse_csv_reports_every_bad_row_and_field() -> None:
    text = (
        "车牌号码,燃料类型,排放阶段,车辆识别代码\n"
        "冀A12345,柴油,国五,\n"
        "XYZ,柴油,国五,\n"
        "冀A22222,煤,国九,LZZ1CLVB8JD12345\n"
        "冀A12345,柴油,国六,\n"
    )
    res = parse_csv(text.encode("gbk"), "vehicles")
    got = {(e.row, e.field) for e in res.errors}
    assert got == {(3, "plate"), (4, "fuel"), (4, "emission_stage"), (4, "vin"), (5, "plate")}
    assert "already on row 2" in str(next(e for e in res.errors if e.row == 5))


def test_parse_csv_missing_column_and_garbage() -> None:
    res = parse_csv("车牌号码,排放阶段\n冀A12345,国五\n".encode(), "vehicles")
    assert [(e.row, e.field) for e in res.errors] == [(1, "fuel")]
    res = parse_csv(b"\xff\xfe\x00\x00garbage\x81", "vehicles")
    assert not res.ok
    assert not parse_csv(b"", "blacklist").ok
    assert parse_csv(b"plate,fuel\n\x00\x00,diesel\n", "vehicles").errors[0].field == "plate"


def test_import_all_or_nothing(reg: Registry, tmp_path: Path, audit: AuditLog) -> None:
    good = tmp_path / "v.csv"
    good.write_bytes(CSV_ZH.encode("gbk"))
    assert import_csv(reg, good, "vehicles", "replace", actor="admin").applied == 3
    bad = tmp_path / "bad.csv"
    bad.write_bytes("车牌号码,燃料类型\n冀C11111,柴油\n冀C22222,???\n".encode())
    report = import_csv(reg, bad, "vehicles", "upsert")
    assert not report.ok and report.errors[0].row == 3
    assert reg.get_vehicle("冀C11111") is None  # the good row was not written either
    assert reg.count_vehicles() == 3
    dele = tmp_path / "del.csv"
    dele.write_text("plate\n冀B54321\n", encoding="utf-8")
    assert import_csv(reg, dele, "vehicles", "delete").applied == 1
    assert reg.count_vehicles() == 2
    assert audit.rows[0][:2] == ("admin", "vehicles.replace")
    assert audit.rows[0][2]["count"] == 3


def test_blacklist_and_nrmm_import(reg: Registry, tmp_path: Path) -> None:
    f = tmp_path / "bl.csv"
    f.write_text(
        "车牌号码,列入原因,发布单位,截止时间\n冀A12345,超标排放车辆,市生态环境局,2026-12-31\n"
        "冀A54321,ok,,\n",
        encoding="utf-8-sig",
    )
    report = import_csv(reg, f, "blacklist", "upsert")
    assert [(e.row, e.field) for e in report.errors] == [(3, "reason")]
    f.write_text("车牌号码,列入原因\n冀A12345,超标排放车辆\n", encoding="utf-8")
    assert import_csv(reg, f, "blacklist", "upsert").ok
    assert reg.get_blacklist("冀A12345").reason == "超标排放车辆"
    n = tmp_path / "n.csv"
    n.write_text(
        "环保登记编码,机械类型,排放阶段,所属单位\nHB130001,装载机,国三,焦化厂\n", encoding="utf-8"
    )
    assert import_csv(reg, n, "nrmm", "upsert").ok
    assert reg.get_nrmm("hb130001").emission_stage == "国3"


def test_lookup_by_plate_and_tag(reg: Registry) -> None:
    reg.upsert_vehicles([Vehicle("冀A12345", emission_stage="国5", rfid_tags=("e2001",))])
    s = reg.snapshot()
    assert s.vehicle("冀A12345").rfid_tags == ("E2001",)
    assert s.vehicle_by_tag("E2001").plate == "冀A12345"
    d = decide_read(GateRead(None, rfid_tags=("E2001",)), s, NOW, "in", PolicyConfig())
    assert (d.action, d.plate) == ("allow", "冀A12345") and "identified_by_tag" in d.flags
    d = decide_read(GateRead("冀B00000", rfid_tags=("E2001",)), s, NOW, "in", PolicyConfig())
    assert "tag_plate_mismatch" in d.flags and d.action == "hold"


def test_snapshot_sees_changes_from_another_process_connection(
    reg: Registry, tmp_path: Path
) -> None:
    s1 = reg.snapshot()
    assert reg.snapshot() is s1  # cached while nothing changes
    other = Registry(tmp_path / "registry.sqlite")  # e.g. the CLI
    other.add_blacklist(BlacklistEntry("冀A12345", "超标排放车辆"))
    other.set_alert_level("orange", actor="环保专员")
    other.close()
    s2 = reg.snapshot()
    assert s2 is not s1
    assert s2.blacklisted("冀A12345", NOW) is not None
    assert s2.alert.level == "orange" and s2.alert.set_by == "环保专员"


def test_alert_level_survives_restart(tmp_path: Path) -> None:
    with Registry(tmp_path / "r.sqlite") as r:
        assert r.alert_state().level == "none"
        r.set_alert_level("red", actor="admin", reason="市预警通知")
        with pytest.raises(ValueError, match=r"^level: "):
            r.set_alert_level("purple", actor="admin")
    with Registry(tmp_path / "r.sqlite") as r:
        assert (r.alert_state().level, r.alert_state().reason) == ("red", "市预警通知")


def test_approval_refuses_vague_and_is_used_once(reg: Registry, audit: AuditLog) -> None:
    start, end = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
    for bad in ("", "急", "ok "):
        with pytest.raises(ApprovalRefused, match=r"reason: "):
            reg.add_approval("冀A12345", bad, "张三", "李四", start, end)
    with pytest.raises(ApprovalRefused, match=r"approver: "):
        reg.add_approval("冀A12345", "抢修设备运输", "张三", "", start, end)
    a = reg.add_approval("冀A12345", "抢修设备运输", "张三", "李四", start, end, actor="admin")
    d = decide_read(GateRead("冀A12345"), reg.snapshot(), NOW, "in", PolicyConfig())
    assert (d.action, d.approval_id) == ("allow", a.id)
    assert reg.consume_approval(a.id, "P-1", now=NOW) is True
    assert reg.consume_approval(a.id, "P-2", now=NOW) is False  # one-time
    assert reg.get_approval(a.id).used_by_passage == "P-1"
    d = decide_read(GateRead("冀A12345"), reg.snapshot(), NOW, "in", PolicyConfig())
    assert d.action == "hold" and d.approval_id is None
    assert [r[1] for r in audit.rows] == ["approval.add", "approval.consume"]


def test_thread_safety(reg: Registry) -> None:
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(50):
                reg.upsert_vehicles([Vehicle(f"冀{chr(65 + k)}{i:05d}", emission_stage="国5")])
                reg.snapshot()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(reg.snapshot().vehicles) == 200


OP = ("--operator", "admin")


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "r.sqlite")
    f = tmp_path / "v.csv"
    f.write_bytes(CSV_ZH.encode("gbk"))
    assert run_cli("registry", "import", str(f), "--mode", "replace", "--db", db, *OP) == 0
    assert "3 rows" in capsys.readouterr().out
    assert run_cli("registry", "show", "冀A12345", "--db", db) == 0
    assert "国5" in capsys.readouterr().out
    assert run_cli("blacklist", "add", "冀A12345", "--reason", "超标排放车辆", "--db", db, *OP) == 0
    assert run_cli("blacklist", "add", "冀A12345", "--reason", "x", "--db", db, *OP) == 2
    assert run_cli("blacklist", "list", "--db", db) == 0
    assert "超标排放车辆" in capsys.readouterr().out
    assert (
        run_cli(
            "approval",
            "add",
            "冀B54321",
            "--reason",
            "急",
            "--applicant",
            "a",
            "--approver",
            "b",
            "--db",
            db,
            *OP,
        )
        == 2
    )
    assert (
        run_cli(
            "approval",
            "add",
            "冀B54321",
            "--reason",
            "抢修设备运输",
            "--applicant",
            "a",
            "--approver",
            "b",
            "--direction",
            "out",
            "--uses",
            "2",
            "--ref",
            "OA-2024-17",
            "--db",
            db,
            *OP,
        )
        == 0
    )
    assert run_cli("approval", "list", "--db", db) == 0
    out = capsys.readouterr().out
    assert "抢修设备运输" in out and "2 use(s), direction out" in out and "unused (0/2)" in out
    assert (
        run_cli("alert", "set", "orange", "--actor", "环保专员", "--reason", "橙色预警", "--db", db)
        == 0
    )
    assert run_cli("alert", "show", "--db", db) == 0
    assert "orange" in capsys.readouterr().out
    assert run_cli("registry", "delete", "冀A12345", "--db", db, *OP) == 0
    assert run_cli("registry", "delete", "冀A12345", "--db", db, *OP) == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("车牌号码,燃料类型\n冀C1,柴油\n", encoding="utf-8")
    assert run_cli("registry", "import", str(bad), "--mode", "upsert", "--db", db, *OP) == 1
    assert "row 2, plate" in capsys.readouterr().err


def test_items_from_commands_honour_every_field_or_refuse_it() -> None:
    from edged.admission.csv_import import parse_items

    rows, errors = parse_items(
        "blacklist",
        "upsert",
        [{"plate": "晋C55667", "reason": "遥感监测超标排放", "until": "2030-12-31T00:00:00+08:00"}],
        TZ,
    )
    assert not errors
    assert rows[0].valid_until == datetime(2030, 12, 31, tzinfo=TZ), "until was dropped"
    rows, errors = parse_items(
        "vehicles",
        "upsert",
        [{"plate": "冀A12345", "fuel": "diesel", "registered": "2019-05-20", "fleet": "唐山运输"}],
        TZ,
    )
    assert not errors and rows[0].registered_on == "2019-05-20" and rows[0].fleet == "唐山运输"
    rows, errors = parse_items(
        "vehicles", "upsert", [{"plate": "冀A12345", "fuel": "diesel", "nrmm_id": "X1"}], TZ
    )
    assert rows == [] and [str(e) for e in errors] == ["row 1, nrmm_id: unknown field"]


def test_approval_honours_direction_uses_and_the_backends_id(reg: Registry) -> None:
    start, end = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
    a = reg.add_approval(
        "冀A12345", "抢修设备运输", "张三", "李四", start, end, direction="out", uses=2, ref="BK-7"
    )
    assert (a.direction, a.uses, a.used, a.ref) == ("out", 2, 0, "BK-7")

    def decide(direction: str) -> object:
        return decide_read(
            GateRead("冀A12345"),
            reg.snapshot(),
            NOW,
            direction,
            PolicyConfig(exit_mode="check"),
        )

    assert decide("in").approval_id is None, "an exit pass does not open the way in"
    assert decide("out").approval_id == a.id
    assert reg.consume_approval(a.id, "P-1", now=NOW) is True
    assert decide("out").approval_id == a.id, "a second use is left"
    assert reg.consume_approval(a.id, "P-2", now=NOW) is True
    assert reg.consume_approval(a.id, "P-3", now=NOW) is False
    assert decide("out").approval_id is None
    got = reg.get_approval(a.id)
    assert (got.used, got.used_by_passage) == (2, "P-2")
    with pytest.raises(ApprovalRefused, match="approval_id: 'BK-7' already entered"):
        reg.add_approval("冀A12345", "抢修设备运输", "张三", "李四", start, end, ref="BK-7")
    with pytest.raises(ApprovalRefused, match=r"direction: .*uses: "):
        reg.add_approval(
            "冀A12345",
            "抢修设备运输",
            "张三",
            "李四",
            start,
            end,
            "x",
            **{"direction": "sideways", "uses": 0},
        )


def test_a_registry_from_before_multi_use_approvals_keeps_its_used_passes(
    tmp_path: Path,
) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE approval (id INTEGER PRIMARY KEY, plate TEXT, reason TEXT, applicant TEXT,"
        " approver TEXT, valid_from TEXT, valid_until TEXT, created_at TEXT, created_by TEXT,"
        " used_at TEXT, used_by_passage TEXT)"
    )
    window = ((NOW - timedelta(hours=1)).isoformat(), (NOW + timedelta(hours=1)).isoformat())
    for used_at in (NOW.isoformat(), None):
        db.execute(
            "INSERT INTO approval(plate, reason, applicant, approver, valid_from, valid_until,"
            " created_at, created_by, used_at) VALUES ('冀A12345', '抢修设备运输', '张三', '李四',"
            " ?, ?, ?, 'x', ?)",
            (*window, NOW.isoformat(), used_at),
        )
    db.commit()
    db.close()
    with Registry(path) as reg:
        used, fresh = reg.list_approvals()
        assert (used.used, used.uses, fresh.used, fresh.direction) == (1, 1, 0, "any")
        assert reg.snapshot().approval_for("冀A12345", NOW).id == fresh.id


def test_streamed_import_refuses_late_errors_duplicates_and_the_row_cap(
    reg: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A problem found after thousands of rows were written still leaves nothing behind."""
    good = tmp_path / "v.csv"
    good.write_bytes(CSV_ZH.encode("gbk"))
    assert import_csv(reg, good, "vehicles", "replace").applied == 3
    rows = [f"冀A{i:05d},柴油" for i in range(2500)]
    big = tmp_path / "big.csv"
    # a replace whose last row is bad: the 2,500 rows already streamed are rolled back
    big.write_text("车牌号码,燃料类型\n" + "\n".join([*rows, "冀C22222,煤"]) + "\n", "utf-8")
    report = import_csv(reg, big, "vehicles", "replace")
    assert not report.ok and report.errors[0].row == 2502
    assert reg.count_vehicles() == 3 and reg.get_vehicle("冀A12345") is not None
    # a key given twice, in different batches
    big.write_text("车牌号码,燃料类型\n" + "\n".join([*rows, rows[1]]) + "\n", "utf-8")
    report = import_csv(reg, big, "vehicles", "upsert")
    assert [str(e) for e in report.errors] == ["row 2502, plate: 冀A00001 already on row 3"]
    # GBK that only shows in the last row, past the first megabyte of UTF-8-looking text
    tail = "冀B99999,天然气\n".encode("gbk")
    pad = "车牌号码,燃料类型\n" + "\n".join(f"冀D{i:05d},diesel" for i in range(80000)) + "\n"
    big.write_bytes(pad.encode("gbk") + tail)
    assert import_csv(reg, big, "vehicles", "upsert").applied == 80001
    assert reg.get_vehicle("冀B99999").fuel == "gas"
    # the row cap, from the command line
    argv = ["registry", "import", str(good), "--mode", "upsert", "--max-rows", "2", *OP]
    assert _cli([*argv, "--db", str(reg.path)]) == 1
    err = capsys.readouterr().err
    assert "more than 2 rows (the import row cap)" in err


def _cli(argv: list[str]) -> int:
    from edged.cli.main import main

    return main(argv)
