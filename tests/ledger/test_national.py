"""The national-format ledger: three tables in the national order and formats, photos by row."""

from __future__ import annotations

import argparse
import csv
import hashlib
from pathlib import Path

import pytest
from openpyxl import load_workbook

from edged.ledger import LedgerStore
from edged.ledger.cli import register
from edged.ledger.national import national_date
from tests.ledger.gate_day import DAY2, fill, h, rec, truck

NATIONAL_TRANSPORT = [
    "序号",
    "进出厂时间",
    "照片",
    "车牌号码",
    "注册日期",
    "车辆识别代码",
    "发动机号码",
    "排放阶段",
    "随车清单",
    "行驶证",
    "运输货物名称",
    "运输量",
    "车队名称",
]


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="edged")
    parser.add_argument("--config")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nat")
    images, docs = root / "images", root / "documents"
    with LedgerStore(root / "ledger.db") as s:
        fill(s, images, docs)
        s.append_passage(  # seq 23: an in-plant vehicle
            rec(
                h(DAY2, 14, 0),
                "in",
                "allow",
                "stage_ok",
                **truck("冀A00020", "国6b", "6", "厂内车队", fuel="gas", category="in_plant"),
            )
        )
    (images / "2024/05/02.jpg").write_bytes(b"not what row 2 recorded")
    target = root / "national"
    argv = ["ledger", "national", "--db", str(root / "ledger.db"), "--out", str(target)]
    argv += ["--from", "2024-05-01", "--to", "2024-05-03", "--images-dir", str(images)]
    argv += ["--documents-dir", str(docs), "--plant", "河北某钢铁", "--gate-name", "东门"]
    assert run(argv) == 0
    return target


def rows(path: Path) -> list[list[str]]:
    return list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))


def test_transport_table_in_national_order_and_formats(out: Path) -> None:
    t = rows(out / "transport.csv")
    assert "运输车辆电子台账" in t[0][0] and "河北某钢铁" in t[0][0]
    assert t[1][:13] == NATIONAL_TRANSPORT
    assert t[1][13:] == ["进出厂", "车道", "台账序号", "备注"]
    body = {int(r[15]): r for r in t[2:]}
    # admitted transport rows: 1 2 4 6 7 11 12 14 15-18 19 21 (refused, held, machinery out)
    assert sorted(body) == [1, 2, 4, 6, 7, 11, 12, 14, 15, 16, 17, 18, 19, 21]
    assert [int(r[0]) for r in t[2:]] == list(range(1, 15))
    first = body[1]
    assert first[1] == "20240501 080000" and first[3] == "冀A00001"
    assert first[4] == "20190630" and first[5] == "LZZ1CLSB0KA000001" and first[6] == "WP1200001"
    assert first[7] == "5" and first[10] == "焦炭" and first[12] == "甲车队"
    assert first[2] == "photos/1/snapshot-1.jpg"
    assert first[8] == "photos/1/env_list.jpg" and first[9] == "photos/1/licence.jpg"
    assert first[13:15] == ["进厂", "east-in"]
    assert body[6][11] == "30.5" and body[6][13] == "出厂"
    assert body[4][7] == "d"
    assert body[12][3] == "冀A00010" and "已更正（更正序号22）" in body[12][16]


def test_machinery_and_in_plant_tables(out: Path) -> None:
    (m,) = rows(out / "machinery.csv")[2:]
    assert rows(out / "machinery.csv")[1][:11] == [
        "序号",
        "进出厂时间",
        "照片",
        "环保登记编码",
        "生产日期",
        "排放阶段",
        "燃料类型",
        "机械种类",
        "机械环保代码",
        "发动机铭牌",
        "所属单位",
    ]
    assert m[1:11] == [
        "20240501 093000",
        "photos/10/snapshot-1.jpg",
        "MA0001",
        "20190315",
        "3",
        "柴油",
        "装载机",
        "130100-0001-2019",
        "photos/10/nameplate.jpg",
        "河北某钢铁公司",
    ]
    (p,) = rows(out / "in_plant.csv")[2:]
    assert p[3] == "冀A00020" and p[8] == "天然气" and p[11] == "厂内车队"


def test_workbook_has_the_three_tables_with_real_numbers(out: Path) -> None:
    wb = load_workbook(out / "national.xlsx")
    assert wb.sheetnames == ["运输车辆", "厂内运输车辆", "非道路移动机械"]
    ws = wb["运输车辆"]
    assert [c.value for c in ws[2]][:13] == NATIONAL_TRANSPORT
    assert ws.freeze_panes == "A3" and ws.auto_filter.ref == "A2:Q16"
    exit_row = next(r for r in ws.iter_rows(min_row=3) if r[15].value == 6)
    assert exit_row[11].value == 30.5 and exit_row[11].number_format == "0.0"
    assert exit_row[1].value == "20240501 085000"  # the national text format, not a date


def test_photos_are_in_a_folder_per_row_and_match_their_hashes(out: Path) -> None:
    snap = (out / "photos/1/snapshot-1.jpg").read_bytes()
    assert snap == b"\xff\xd8\xff jpeg of row 1"
    env = (out / "photos/1/env_list.jpg").read_bytes()
    assert env == "冀A00001清单".encode()
    assert hashlib.sha256((out / "photos/10/nameplate.jpg").read_bytes()).hexdigest() == (
        hashlib.sha256("MA0001铭牌".encode()).hexdigest()
    )
    # row 2's snapshot was changed on the box: not exported, and said so
    assert not (out / "photos/2/snapshot-1.jpg").exists()
    t = {int(r[15]): r for r in rows(out / "transport.csv")[2:]}
    assert t[2][2] == ""


def test_national_dates() -> None:
    assert national_date("2019-06-30") == "20190630"
    assert national_date("2019/6/30") == "2019/6/30" and national_date(None) == ""
