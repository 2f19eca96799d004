"""Reports as the plant's environmental officer opens them: every figure counted by hand.

The rows are tests/ledger/gate_day.py. On 2024-05-01 (18 rows, no alert):

- in 15, out 3; allowed 13, refused 3 (rows 3, 8, 9), held 2 (rows 5, 13).
- admitted entering: rows 1, 2, 4, 7, 10, 11, 12 (corrected to 冀A00010 国6), 14, 15, 17
  = 10 passages of 8 vehicles: 国六 {A00002, A00010, A00008, B77777} 4, 国五 {A00001} 1,
  国四 {A00006} 1, 国三 {MA0001} 1, 新能源 {AD0004} 1 (the refused 国4 and 国5 trucks and
  the exits are not in it).
- fleets (entries): 甲 4 vehicles, A00003 refused → 3 of 4 comply; 乙 3 vehicles, A00006
  only on an approval and A00007 refused → 1 of 3; 丙 A00008 refused once → 1 of 2.
- hazardous rows 9 and 14; machinery row 10; approval row 7; correction 12 → 22;
  no plate read rows 10 and 13; 冀B77777 passes 4 times (frequent above 3).
On 2024-05-02: 冀A00001 in and 冀A00011 refused under orange alert, 冀A00002 in after noon.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from edged.ledger import LedgerStore
from edged.ledger.cli import register
from edged.ledger.reports import ReportSpec, period, write_report
from edged.sheets.table import format_for
from tests.ledger.gate_day import CST, fill


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="edged")
    parser.add_argument("--config")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gate") / "ledger.db"
    with LedgerStore(path) as s:
        fill(s)
    return path


def report(db: Path, tmp: Path, kind: str, when: str, name: str = "r.xlsx") -> Path:
    out = tmp / name
    argv = ["ledger", "report", kind, "--db", str(db), "--date", when, "--out", str(out)]
    argv += ["--frequent", "3", "--plant", "河北某钢铁有限公司", "--gate-name", "东门"]
    assert run(argv) == 0
    return out


def table(ws) -> dict[str, tuple]:
    """Rows below the title and header, by their first cell."""
    return {r[0]: r[1:] for r in ws.iter_rows(min_row=3, values_only=True)}


@pytest.fixture(scope="module")
def daily(db: Path, tmp_path_factory: pytest.TempPathFactory):
    return load_workbook(report(db, tmp_path_factory.mktemp("d"), "daily", "2024-05-01"))


def test_every_sheet_has_a_title_a_bold_frozen_header_and_a_filter(daily) -> None:
    assert daily.sheetnames[0] == "汇总" and daily.sheetnames[-1] == "通行明细"
    for ws in daily.worksheets:
        title = ws["A1"].value
        assert "河北某钢铁有限公司" in title and "东门" in title and "2024-05-01" in title
        assert "日报" in title and ws["A1"].font.b
        assert ws["A2"].font.b and ws.freeze_panes == "A3"
        assert ws.auto_filter.ref.startswith("A2:")
        assert all(len(n) <= 31 for n in daily.sheetnames)
    detail = daily["通行明细"]
    assert detail.auto_filter.ref == f"A2:AF{2 + 18}"
    # widths fitted to CJK text: the plate column is wider than a one-character heading
    widths = {k: v.width for k, v in detail.column_dimensions.items()}
    assert widths["E"] >= 10 and widths["B"] >= 19


def test_summary_counts_and_shares_are_numbers(daily) -> None:
    ws = daily["汇总"]
    s = table(ws)
    assert s["通行总次数"][0] == 18
    assert (s["进厂次数"][0], s["出厂次数"][0]) == (15, 3)
    assert (s["放行次数"][0], s["拒绝次数"][0], s["待人工次数"][0]) == (13, 3, 2)
    assert s["放行进厂车辆数"][0] == 8 and s["车辆数"][0] == 12
    assert s["其中新能源车辆"][:2] == (1, 0.125)
    assert s["其中国五及以上（含新能源）"][:2] == (6, 0.75)
    assert s["特批放行次数"][0] == 1 and s["更正记录数"][0] == 1
    assert s["危险货物运输车辆通行次数"][0] == 2 and s["非道路移动机械通行次数"][0] == 1
    assert s["无车牌识别通行次数"][0] == 2 and s["频繁进出车辆数（单日超过3次）"][0] == 1
    assert (s["相机离线补录次数"][0], s["其中按规则应拒绝"][0]) == (0, 0)
    assert s["相机识别但无地感通行次数"][0] == 0
    share = next(r for r in ws.iter_rows(min_row=3) if r[0].value == "其中新能源车辆")[2]
    assert share.data_type == "n" and share.number_format == "0.0%"


def test_stage_shares_count_admitted_entering_vehicles_with_new_energy_apart(daily) -> None:
    ws = daily["排放阶段占比"]
    assert [c.value for c in ws[2]] == [
        "排放阶段",
        "国家编码",
        "车辆数",
        "车辆占比",
        "进厂次数",
        "次数占比",
    ]
    got = table(ws)
    assert got["国六"] == ("6", 4, 0.5, 6, 0.6)
    assert got["国五"] == ("5", 1, 0.125, 1, 0.1)
    assert got["国四"] == ("4", 1, 0.125, 1, 0.1)
    assert got["国三"] == ("3", 1, 0.125, 1, 0.1)
    assert got["新能源"] == ("d", 1, 0.125, 1, 0.1)
    assert "未知" not in got
    assert got["合计"][1:4] == (8, 1.0, 10)
    pct = next(r for r in ws.iter_rows(min_row=3) if r[0].value == "国六")[3]
    assert pct.number_format == "0.0%"


def test_refusals_by_reason_keep_holds_apart(daily) -> None:
    refused = table(daily["拒绝原因"])
    assert set(refused) == {"排放阶段不达标", "黑名单车辆", "危险品车辆非通行时段"}
    assert all(v[0] == 1 and v[1] == pytest.approx(1 / 3) for v in refused.values())
    held = table(daily["待人工原因"])
    assert {k: v[0] for k, v in held.items()} == {"未登记车辆": 1, "未识别车牌": 1}


def test_fleet_compliance(daily) -> None:
    fleets = table(daily["车队达标率"])
    #           vehicles, complying, rate, entries, allowed, refused, held, approvals
    assert fleets["甲车队"] == (4, 3, 0.75, 6, 5, 1, 0, 0)
    assert fleets["乙车队"][:4] == (3, 1, pytest.approx(1 / 3), 3) and fleets["乙车队"][7] == 1
    assert fleets["丙车队"][:4] == (2, 1, 0.5, 3)
    assert fleets["（未登记车队）"][:3] == (3, 1, 1.0)
    assert list(fleets)[-1] == "（未登记车队）"


def test_sections_list_the_rows_they_are_about(daily) -> None:
    haz = list(daily["危险货物运输"].iter_rows(min_row=3, values_only=True))
    assert [(r[0], r[4], r[6], r[7]) for r in haz] == [
        (9, "冀A00008", "液氨", "拒绝"),
        (14, "冀A00008", "液氨", "放行"),
    ]
    assert isinstance(haz[0][1], datetime) and haz[0][1] == datetime(2024, 5, 1, 9, 20)
    (mach,) = daily["非道路移动机械"].iter_rows(min_row=3, values_only=True)
    assert mach[3:9] == ("MA0001", "130100-0001-2019", "装载机", "国三", "3", "柴油")
    (appr,) = daily["特批放行"].iter_rows(min_row=3, values_only=True)
    assert appr[2] == "冀A00006" and appr[4:7] == ("TP-2024-001", "张三", "李四")
    assert appr[7] == datetime(2024, 5, 1, 8, 55) and appr[8] == "抢修"
    (fix,) = daily["更正记录"].iter_rows(min_row=3, values_only=True)
    assert fix[:2] == (12, 22) and fix[3] == "冀A00010" and fix[4] == "王五"
    assert fix[6] == "车牌误识" and "车牌号码：冀A00009→冀A00010" in fix[7]
    freq = list(daily["频繁进出车辆"].iter_rows(min_row=3, values_only=True))
    assert freq == [("冀B77777", datetime(2024, 5, 1), 4, 2, 2)]
    assert {r[0] for r in daily["无车牌识别通行"].iter_rows(min_row=3, values_only=True)} == {
        10,
        13,
    }
    assert [c.value for c in daily["通行统计"][3]] == ["east-in", "进厂", 10, 3, 2, 15]
    assert [c.value for c in daily["通行统计"][5]] == ["合计", None, 13, 3, 2, 18]


def test_detail_sheet_has_real_cells_and_chinese_values(daily) -> None:
    ws = daily["通行明细"]
    head = [c.value for c in ws[2]]
    rows = {r[0].value: r for r in ws.iter_rows(min_row=3)}
    col = {h: i for i, h in enumerate(head)}
    r1 = rows[1]
    assert r1[col["时间"]].value == datetime(2024, 5, 1, 8, 0)
    assert r1[col["时间"]].number_format == "yyyy-mm-dd hh:mm:ss"
    assert r1[col["方向"]].value == "进厂" and r1[col["结果"]].value == "放行"
    assert r1[col["燃料类型"]].value == "柴油" and r1[col["车牌颜色"]].value == "黄色"
    assert r1[col["排放阶段"]].value == "国五" and r1[col["国家编码"]].value == "5"
    assert r1[col["预警级别"]].value == "无预警" and r1[col["车辆类别"]].value == "运输车辆"
    assert r1[col["识别置信度"]].number_format == "0.0%"
    ev = rows[4]
    assert ev[col["燃料类型"]].value == "纯电动" and ev[col["排放阶段"]].value == "新能源"
    assert rows[6][col["运输量(t)"]].value == 30.5 and rows[6][col["方向"]].value == "出厂"
    assert rows[6][col["进厂时间"]].value == datetime(2024, 5, 1, 8, 0)
    assert rows[5][col["结果"]].value == "待人工" and rows[3][col["结果"]].value == "拒绝"
    assert rows[9][col["标记"]].value == "危险货物运输"
    fixed = rows[12]
    assert fixed[col["车牌号码"]].value == "冀A00010" and "更正序号22" in fixed[col["更正"]].value
    assert 22 not in rows  # the correction stands at its original's place
    english = {"in", "out", "allow", "deny", "hold", "diesel", "yellow", "stage_ok", "none"}
    for row in ws.iter_rows(min_row=3, values_only=True):
        assert not english & {v for v in row if isinstance(v, str)}


def test_alert_days_compare_with_normal_days(db: Path, tmp_path: Path) -> None:
    wb = load_workbook(report(db, tmp_path, "monthly", "2024-05"))
    days = list(wb["预警日对比"].iter_rows(min_row=3, values_only=True))
    assert days == [
        (datetime(2024, 5, 1), "无预警", 8, 15, 10, 3),
        (datetime(2024, 5, 2), "无预警", 1, 1, 1, 0),
        (datetime(2024, 5, 2), "橙色预警", 1, 2, 1, 1),
    ]
    levels = table(wb["预警级别汇总"])
    assert levels["无预警"] == (2, 4.5, 8.0, 1.5)
    assert levels["橙色预警"] == (1, 1.0, 2.0, 1.0)
    assert levels["预警日合计"] == (1, 1.0, 2.0, 1.0)
    assert wb["预警级别汇总"]["C3"].number_format == "0.0"
    assert "月报" in wb["汇总"]["A1"].value and "2024-05" in wb["汇总"]["A1"].value
    assert table(wb["汇总"])["通行总次数"][0] == 21


def test_weekly_report_covers_the_iso_week(db: Path, tmp_path: Path) -> None:
    p = period("weekly", "2024-05-01", CST)
    assert (p.label, p.first, p.end) == ("2024-W18", date(2024, 4, 29), date(2024, 5, 6))
    assert period("weekly", "2024-W18", CST) == p
    wb = load_workbook(report(db, tmp_path, "weekly", "2024-W18"))
    assert "周报" in wb["汇总"]["A1"].value and "2024-04-29至2024-05-05" in wb["汇总"]["A1"].value
    assert table(wb["汇总"])["通行总次数"][0] == 21
    with pytest.raises(ValueError, match="YYYY-Www"):
        period("weekly", "week 18", CST)


def test_csv_by_extension_and_format_must_agree(db: Path, tmp_path: Path) -> None:
    out = report(db, tmp_path, "daily", "2024-05-01", "r.csv")
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf[")  # CSV with BOM, not a zip
    text = raw.decode("utf-8-sig")
    assert "[汇总]" in text and "通行总次数,18," in text and "[通行明细]" in text
    assert "其中新能源车辆,1,12.5%" in text
    assert "新能源,d,1,12.5%,1,10.0%" in text
    assert "2024-05-01 08:00:00" in text
    bad = ["ledger", "report", "daily", "--db", str(db), "--date", "2024-05-01"]
    assert run([*bad, "--out", str(tmp_path / "x.csv"), "--format", "xlsx"]) == 2
    assert run([*bad, "--out", str(tmp_path / "x.txt")]) == 2
    assert run([*bad, "--out", str(tmp_path / "x.txt"), "--format", "csv"]) == 0
    assert format_for(Path("a.XLSX"), None) == "xlsx"


def test_report_title_falls_back_to_ids_and_empty_periods_are_fine(
    db: Path, tmp_path: Path
) -> None:
    with LedgerStore(db) as store:
        spec = ReportSpec("daily", "2024-06-01", CST, "hbsteel", "east")
        res = write_report(store, spec, tmp_path / "e.xlsx", "xlsx")
    assert res.rows == 0
    wb = load_workbook(tmp_path / "e.xlsx")
    assert wb["汇总"]["A1"].value.startswith("hbsteel east 车辆进出日报 2024-06-01")
    assert table(wb["汇总"])["通行总次数"][0] == 0
    assert table(wb["排放阶段占比"])["合计"][1:3] == (0, None)


def test_rows_of_a_cameras_kept_and_unjoined_reads_are_counted_apart() -> None:
    from edged.ledger.tally import Tally
    from tests.ledger.gate_day import h, rec

    tally = Tally(CST)
    day = datetime(2024, 5, 1, tzinfo=CST)
    late = {"decision": "hold", "reason": "unread", "lane": "west"}
    tally.add(1, rec(h(day, 5, 0), "in", **late, plate="冀A1", flags=("offline_read",
                                                                    "would_allow")))  # fmt: skip
    tally.add(2, rec(h(day, 6, 0), "in", **late, plate="冀A2", flags=("offline_read",
                                                                    "would_deny")))  # fmt: skip
    tally.add(3, rec(h(day, 7, 0), "in", "allow", "stage_ok", plate="冀A3"))
    tally.add(4, rec(h(day, 8, 0), "in", **late, plate="冀A4", flags=("unjoined_read",)))
    s = {r[0]: r[1] for r in tally.summary_rows()}
    assert (s["相机离线补录次数"], s["其中按规则应拒绝"], s["待人工次数"]) == (2, 1, 3)
    assert s["相机识别但无地感通行次数"] == 1
