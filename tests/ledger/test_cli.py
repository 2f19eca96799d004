"""The commands an inspector and a technician run, through the real parser."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
from openpyxl import load_workbook

from edged.ledger import Approval, LedgerStore
from edged.ledger.cli import register
from edged.ledger.verify import verify_db
from tests.ledger.conftest import make_record, write_image


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="edged")
    parser.add_argument("--config")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    images = tmp_path / "images"
    with LedgerStore(path) as s:
        for i in range(30):
            kw: dict = {}
            if i == 3:
                kw = {
                    "decision": "deny",
                    "reason_code": "stage_below_5",
                    "reason_zh": "非国五车辆禁入",
                    "emission_stage": "国四",
                }
            if i == 4:
                kw = {
                    "fuel": "electric",
                    "emission_stage": "新能源",
                    "plate": "冀BD12345",
                    "plate_colour": "green",
                }
            if i == 5:
                kw = {"plate": None, "id_source": "rfid"}
            if i == 6:
                kw = {
                    "approval": Approval("SP-1", "张三", "李四", "抢修"),
                    "decision": "allow",
                    "emission_stage": "国四",
                }
            if i == 7:
                kw = {"cargo": '=HYPERLINK("http://x")\x07'}
            snap = write_image(images, f"2024/05/01/{i}.jpg", b"img%d" % i)
            s.append_passage(make_record(i, snapshots=(snap,), **kw))
        # same truck in and out all day: "frequent"
        for j in range(10):
            s.append_passage(make_record(40 + j, plate="冀B77777"))
        s.append_audit("admin", "manual_open", {"reason": "车队"})
    return path


def test_verify_ok_and_fail(db: Path, tmp_path: Path, capsys) -> None:
    assert run(["ledger", "verify", "--db", str(db), "--images", str(tmp_path / "images")]) == 0
    assert "OK" in capsys.readouterr().out
    conn = sqlite3.connect(db)
    conn.execute("UPDATE passages SET fields = replace(fields, '国五', '国六') WHERE seq = 12")
    conn.commit()
    conn.close()
    assert run(["ledger", "verify", "--db", str(db)]) == 1
    assert "FAIL: passages seq 12: edited" in capsys.readouterr().out


def test_verify_expect_head_bad_syntax(db: Path, capsys) -> None:
    assert run(["ledger", "verify", "--db", str(db), "--expect-head", "junk"]) == 2


def test_query_filters_and_formats(db: Path, capsys) -> None:
    assert run(["ledger", "query", "--db", str(db), "--decision", "deny", "--format", "json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["reason_zh"] == "非国五车辆禁入"
    assert run(["ledger", "query", "--db", str(db), "--fuel", "electric", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["plate"] for r in rows] == ["冀BD12345"]
    assert (
        run(
            [
                "ledger",
                "query",
                "--db",
                str(db),
                "--from",
                "2024-05-01 08:10",
                "--to",
                "2024-05-01 08:12",
                "--format",
                "table",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("seq") and len(out) == 3
    assert run(["ledger", "query", "--db", str(db), "--from", "tomorrowish"]) == 2


def _seqs(argv: list[str], capsys) -> list[int]:
    assert run(["ledger", "query", *argv, "--format", "json"]) == 0
    return [json.loads(line)["seq"] for line in capsys.readouterr().out.splitlines()]


def test_stage_and_fuel_filters_take_what_a_guard_types(tmp_path: Path, capsys) -> None:
    """The help's own example (国五) found nothing, nor did 柴油: the ledger holds 国5, diesel."""
    path = tmp_path / "ledger.db"
    with LedgerStore(path) as s:
        for i, (stage, fuel) in enumerate(
            [
                ("国5", "diesel"),
                ("国五", "diesel"),
                ("国6a", "gas"),
                ("国6b", "diesel"),
                ("国4", "diesel"),
            ]
        ):
            s.append_passage(make_record(i, emission_stage=stage, fuel=fuel))
    db = ["--db", str(path)]
    for spelling in ("国五", "国V", "国Ⅴ", "5", "国5", "V"):
        assert _seqs([*db, "--stage", spelling], capsys) == [1, 2], spelling
    assert _seqs([*db, "--stage", "国六"], capsys) == [3, 4]
    assert _seqs([*db, "--stage", "国6b"], capsys) == [4]
    for spelling in ("柴油", "diesel", "DIESEL"):
        assert _seqs([*db, "--fuel", spelling], capsys) == [1, 2, 4, 5], spelling
    assert _seqs([*db, "--fuel", "天然气", "--stage", "6a"], capsys) == [3]
    assert run(["ledger", "query", *db, "--stage", "国七"]) == 2
    assert "unknown emission stage '国七'" in capsys.readouterr().err
    assert run(["ledger", "query", *db, "--fuel", "煤"]) == 2
    assert "unknown fuel '煤'" in capsys.readouterr().err


def test_query_table_aligns_chinese_cells(db: Path, capsys) -> None:
    from tests.cli.tables import aligned

    assert run(["ledger", "query", "--db", str(db), "--limit", "8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 9 and aligned(lines), "\n".join(lines)


def test_daily_report_cells_are_never_formulas(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.xlsx"
    argv = ["ledger", "report", "daily", "--db", str(db), "--date", "2024-05-01"]
    assert run([*argv, "--out", str(out), "--frequent", "6"]) == 0
    wb = load_workbook(out, read_only=True)
    detail = list(wb["通行明细"].iter_rows(min_row=2, values_only=True))
    col = detail[0].index("运输货物名称")
    cargo = next(r[col] for r in detail[1:] if r[0] == 8)
    assert cargo.startswith("'=") and "\x07" not in cargo  # no formula, no control char
    freq = list(wb["频繁进出车辆"].iter_rows(min_row=3, values_only=True))
    assert [(r[0], r[2]) for r in freq] == [("冀B77777", 10)]


def test_monthly_csv_report_and_correction_replaces_original(db: Path, tmp_path: Path) -> None:
    with LedgerStore(db) as s:
        s.append_correction(4, make_record(3), operator="guard", reason="误判")
    out = tmp_path / "m.csv"
    assert (
        run(
            [
                "ledger",
                "report",
                "monthly",
                "--db",
                str(db),
                "--date",
                "2024-05",
                "--format",
                "csv",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = out.read_text(encoding="utf-8-sig")
    assert "[汇总]" in text and "通行总次数,40," in text and "非国五车辆禁入" not in text
    assert "已更正（更正序号41，guard）" in text
    assert (
        run(
            [
                "ledger",
                "report",
                "monthly",
                "--db",
                str(db),
                "--date",
                "May",
                "--format",
                "csv",
                "--out",
                str(out),
            ]
        )
        == 2
    )


def test_backup_and_restore(db: Path, tmp_path: Path, capsys) -> None:
    bak = tmp_path / "bak" / "ledger-backup.db"
    assert run(["backup", str(bak), "--db", str(db)]) == 0
    assert verify_db(bak).ok
    with LedgerStore(db) as s:
        s.append_passage(make_record(99))
    # older backup would drop a row: refused
    assert run(["restore", str(bak), "--db", str(db)]) == 1
    assert "drop rows" in capsys.readouterr().err
    # a tampered backup is refused before anything is replaced
    bad = tmp_path / "bad.db"
    bad.write_bytes(bak.read_bytes())
    conn = sqlite3.connect(bad)
    conn.execute("DELETE FROM passages WHERE seq = 2")
    conn.commit()
    conn.close()
    assert run(["restore", str(bad), "--db", str(db), "--force"]) == 1
    with LedgerStore(db) as s:
        assert s.heads()["passages"][0] == 41
    assert run(["restore", str(bak), "--db", str(db), "--force"]) == 0
    with LedgerStore(db) as s:
        assert s.heads()["passages"][0] == 40
        assert any('"action":"restore"' in r[3] for r in s.audit_rows())
    assert verify_db(db).ok
    assert list(tmp_path.glob("ledger.db.pre-restore-*"))


def test_head(db: Path, capsys) -> None:
    assert run(["ledger", "head", "--db", str(db)]) == 0
    heads = json.loads(capsys.readouterr().out)
    assert heads["passages"]["seq"] == 40 and heads["audit"]["seq"] >= 1


def test_missing_db(tmp_path: Path, capsys) -> None:
    assert run(["ledger", "verify", "--db", str(tmp_path / "none.db")]) == 2
