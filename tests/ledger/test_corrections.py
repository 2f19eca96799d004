"""A misread corrected by a new chained row: the original kept, the fix audited, queries corrected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edged.cli.main import main
from edged.ledger.corrections import CorrectionError, corrected
from edged.ledger.record import PassageRecord
from edged.ledger.store import LedgerStore


def _row(plate: str, direction: str = "in") -> PassageRecord:
    return PassageRecord(
        time="2026-11-30T08:00:00.000+08:00",
        site="p1",
        gate="g1",
        lane="entry",
        direction=direction,
        decision="hold",
        reason_code="unknown_vehicle",
        plate=plate,
        raw_plate=plate,
        id_source="plate",
        missing={"vin": "vehicle not in the registry"},
    )


def test_a_new_plate_brings_its_registry_fields_and_keeps_the_raw_read() -> None:
    fixed = corrected(
        _row("冀B1234S"),
        {"plate": "冀B12345"},
        lambda plate: {"vin": "LZZ1BLSF6JD123456", "fleet": "唐山运达物流"},
    )
    assert (fixed.plate, fixed.vin, fixed.fleet) == (
        "冀B12345",
        "LZZ1BLSF6JD123456",
        "唐山运达物流",
    )
    assert fixed.raw_plate == "冀B1234S" and fixed.id_source == "manual"
    assert fixed.missing == {}, "the VIN the registry gave needs no reason for being empty"
    unread = PassageRecord(**{**_row("x").__dict__, "plate": None, "missing": {"plate": "p"}})
    assert corrected(unread, {"plate": "冀B12345"}).missing == {}
    assert corrected(_row("冀B1234S"), {"cargo": "焦煤"}).missing == _row("x").missing
    with pytest.raises(CorrectionError, match="cannot correct decision"):
        corrected(_row("冀B1234S"), {"decision": "allow"})
    with pytest.raises(CorrectionError, match="direction"):
        corrected(_row("冀B1234S"), {"direction": "sideways"})


def _query(db: Path, capsys: Any, *extra: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["ledger", "query", "--db", str(db), "--format", "json", *extra]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_correct_from_the_cli_is_a_new_row_audited_and_what_queries_show(
    tmp_path: Path, capsys: Any
) -> None:
    db = tmp_path / "ledger.db"
    with LedgerStore(db) as store:
        store.append_passage(_row("冀B1234S"))
        store.append_passage(_row("晋C55667"))
    rc = main(
        [
            "ledger",
            "correct",
            "1",
            "--db",
            str(db),
            "--plate",
            "冀B12345",
            "--cargo",
            "焦炭",
            "--reason",
            "车牌误识别，按监控录像更正",
            "--operator",
            "张三",
        ]
    )
    assert rc == 0
    reply = json.loads(capsys.readouterr().out)
    assert reply["correction_of"] == 1 and reply["correction_seq"] == 3
    rows = _query(db, capsys)
    assert [(r["plate"], r["correction_of"]) for r in rows] == [("晋C55667", None), ("冀B12345", 1)]
    assert rows[1]["cargo"] == "焦炭" and rows[1]["operator"] == "张三"
    raw = _query(db, capsys, "--raw")
    assert [r["plate"] for r in raw] == ["冀B1234S", "晋C55667", "冀B12345"]  # nothing changed
    with LedgerStore(db) as store:
        (action, fields) = store.db.execute_sql(
            "SELECT action, fields FROM audit ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    details = json.loads(fields)
    assert action == "correction" and details["actor"] == "张三"
    assert details["details"]["changed"]["plate"] == ["冀B1234S", "冀B12345"]
    assert main(["ledger", "verify", "--db", str(db)]) == 0, "the chain proves the correction"
    # corrected again: the fixes add up, the latest stands for the row
    assert (
        main(
            [
                "ledger",
                "correct",
                "1",
                "--db",
                str(db),
                "--direction",
                "out",
                "--reason",
                "方向更正，车辆出厂",
                "--operator",
                "李四",
            ]
        )
        == 0
    )
    rows = _query(db, capsys)
    assert [(r["plate"], r["direction"]) for r in rows if r["correction_of"] == 1] == [
        ("冀B12345", "out")
    ]


def test_a_correction_of_a_correction_or_a_missing_row_is_refused(
    tmp_path: Path, capsys: Any
) -> None:
    db = tmp_path / "ledger.db"
    with LedgerStore(db) as store:
        store.append_passage(_row("冀B1234S"))
    base = ["ledger", "correct", "--db", str(db), "--reason", "测试更正原因", "--operator", "王五"]
    assert main([*base[:2], "9", *base[2:], "--plate", "冀B12345"]) == 2
    assert "no passage with seq 9 to correct" in capsys.readouterr().err
    assert main([*base[:2], "1", *base[2:]]) == 2
    assert "nothing to correct" in capsys.readouterr().err
