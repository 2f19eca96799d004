"""Tables that leave the box: safe text, and XLSX/CSV files Excel and WPS open as intended."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from edged.sheets.csvout import write_csv_file, write_tables
from edged.sheets.table import Column, Table, clean_text, columns, display_width, safe_text
from edged.sheets.xlsx import XlsxWriter, col_letter, serial, write_xlsx


@pytest.mark.parametrize(
    "text",
    ["=1+1", "+86 138", "-2+3", "@SUM(A1)", "\t=cmd", "\r=cmd", '=HYPERLINK("http://x")'],
)
def test_every_formula_start_is_neutralised(text: str) -> None:
    assert safe_text(text) == "'" + text


@pytest.mark.parametrize("text", ["冀A12345", "焦炭", "", "a=b", "1-2", " -x"])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert safe_text(text) == text


def test_clean_text_drops_what_xml_cannot_hold() -> None:
    assert clean_text("焦\x07炭\x00") == "焦炭" and clean_text("-\x01x") == "'-x"
    assert len(clean_text("x" * 40000)) == 32767


def test_display_width_counts_cjk_twice() -> None:
    assert display_width("冀A12345") == 8 and display_width("abc") == 3


def test_column_kinds_are_checked() -> None:
    with pytest.raises(ValueError, match="kind"):
        Column("x", "money")


def test_col_letters_and_date_serials() -> None:
    assert [col_letter(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]
    assert serial(date(1900, 3, 1)) == 61.0  # Excel's own serial for that day
    assert serial(datetime(2024, 5, 1, 12, 0)) == 45413.5


def test_xlsx_cells_styles_and_layout(tmp_path: Path) -> None:
    cols = columns(
        ("数量", "int"),
        ("时间", "datetime"),
        ("占比", "pct"),
        "车牌",
        ("吨", "num1"),
        ("日", "date"),
    )
    out = tmp_path / "t.xlsx"
    with XlsxWriter(out) as book:
        a = book.sheet(Table("汇总", "某钢厂 东门 2024-05", cols))
        b = book.sheet(Table("明细", "明细", columns("文本", ("数", "num"))))
        b.append(["-1", 1.5])  # rows of two sheets interleave
        a.append([3, datetime(2024, 5, 1, 8, 30, 15), 0.255, "=cmd", 12.34, date(2024, 5, 1)])
        a.append([None, None, float("nan"), " 两端空格 ", None, None])
        b.append(["a&<b>", None])
    assert not list(tmp_path.glob(".*"))  # no temporary files left
    wb = load_workbook(out)
    assert wb.sheetnames == ["汇总", "明细"]
    ws = wb["汇总"]
    assert ws["A1"].value == "某钢厂 东门 2024-05" and ws["A1"].font.b and ws["A1"].font.sz == 14
    assert [c.value for c in ws[2]] == ["数量", "时间", "占比", "车牌", "吨", "日"]
    assert all(c.font.b for c in ws[2])
    assert ws.freeze_panes == "A3" and ws.auto_filter.ref == "A2:F4"
    row = ws[3]
    assert row[0].value == 3 and row[0].data_type == "n"
    assert row[1].value == datetime(2024, 5, 1, 8, 30, 15)
    assert row[1].number_format == "yyyy-mm-dd hh:mm:ss"
    assert row[2].value == 0.255 and row[2].number_format == "0.0%"
    assert row[3].value == "'=cmd" and row[3].data_type == "s"
    assert row[4].number_format == "0.0" and row[5].number_format == "yyyy-mm-dd"
    assert ws["C4"].value is None and ws["D4"].value == " 两端空格 "
    assert [c.value for c in wb["明细"]["A"][2:]] == ["'-1", "a&<b>"]
    widths = {k: v.width for k, v in ws.column_dimensions.items()}
    assert widths["B"] == 21 and widths["D"] >= 12  # date-time, and CJK text counted twice
    names = zipfile.ZipFile(out).namelist()
    assert "xl/worksheets/sheet2.xml" in names and "xl/styles.xml" in names


def test_a_failed_workbook_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "t.xlsx"
    with pytest.raises(RuntimeError), XlsxWriter(out) as book:
        book.sheet(Table("a", "", columns("x"))).append(["1"])
        raise RuntimeError("stick pulled")
    assert list(tmp_path.iterdir()) == []


def test_sheet_names_are_checked(tmp_path: Path) -> None:
    with XlsxWriter(tmp_path / "t.xlsx") as book:
        with pytest.raises(ValueError, match="sheet name"):
            book.sheet(Table("a/b", "", columns("x")))
        book.sheet(Table("a", "", columns("x")))
        with pytest.raises(ValueError, match="twice"):
            book.sheet(Table("a", "", columns("x")))


def test_a_month_of_rows_streams(tmp_path: Path) -> None:
    cols = columns(*[f"c{i}" for i in range(8)], ("t", "datetime"))
    rows = ([f"冀A{i:05d}", "进厂", "放行", "国五", "柴油", "焦炭", "x", "y",
             datetime(2024, 5, 1)] for i in range(20000))  # fmt: skip
    n = write_xlsx([Table("明细", "t", cols, rows)], tmp_path / "m.xlsx")
    assert n == 20000
    wb = load_workbook(tmp_path / "m.xlsx", read_only=True)
    assert wb["明细"].max_row == 20002


def test_csv_sections_and_values(tmp_path: Path) -> None:
    cols = columns("项目", ("数值", "int"), ("占比", "pct"), ("时间", "datetime"), ("t", "num1"))
    t1 = Table("汇总", "某钢厂 日报", cols, [("=x", 3, 0.125, datetime(2024, 5, 1, 8), 30.46)])
    t2 = Table("明细", "", columns("a"), [("\tb",)])
    buf = io.StringIO()
    assert write_tables([t1, t2], buf) == 2
    rows = list(csv.reader(io.StringIO(buf.getvalue())))
    assert rows[0] == ["[汇总]"] and rows[1] == ["某钢厂 日报"]
    assert rows[3] == ["'=x", "3", "12.5%", "2024-05-01 08:00:00", "30.5"]
    assert rows[5] == ["[明细]"] and rows[7] == ["'\tb"]
    path = tmp_path / "r.csv"
    write_csv_file([t1], path, sections=False)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert path.read_text(encoding="utf-8-sig").splitlines()[0] == "某钢厂 日报"
