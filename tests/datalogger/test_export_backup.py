"""The logger's history leaves the box: XLSX/CSV for people, a backup that restores, the stick."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from edged.cli.main import main
from edged.datalogger.aggregate import Rule, Sample
from edged.datalogger.store import DataStore
from edged.devicekey import create, key_path
from edged.ledger import LedgerStore
from edged.ledger.export_verify import verify_export
from edged.ledger.store import audit_fields
from tests.box_rig import base_toml

T0 = datetime(2026, 3, 1, 10, 0, 0)
RULES = {"e01001": Rule(cou="delta"), "i12001": Rule(high=50.0)}
MODBUS = """
[[modbus.devices]]
name = "meter1"
transport = "tcp"
host = "127.0.0.1"
port = 1
[[modbus.devices.points]]
name = "ia"
address = 10
unit = "A"
factor = "i12001"
high = 50.0
[[modbus.devices.points]]
name = "energy"
address = 20
type = "uint32"
unit = "kWh"
factor = "e01001"
cou = "delta"
[[modbus.devices.points]]
name = "fan"
address = 30
unit = "Pa"
"""


def feed(store: DataStore, start: datetime, minutes: int) -> None:
    for i in range(minutes * 2):
        ts = start + timedelta(seconds=30 * i)
        fault = i in (4, 5)  # the meter did not answer for the minute 10:02
        store.add_samples(
            [
                Sample(ts, "e01001", 1000 + 0.5 * i, "N"),
                Sample(ts, "i12001", None if fault else 10.0, "D" if fault else "N"),
                Sample(ts, "meter1.fan", 120.0, "N"),
            ]
        )


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """A config with a logger, its database with two hours of data, a ledger and a key."""
    cfg = tmp_path / "edged.toml"
    cfg.write_text(base_toml(tmp_path) + MODBUS, encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    store = DataStore(data / "datalogger.sqlite3", RULES)
    feed(store, T0, 120)
    store.close_periods(T0 + timedelta(days=1, seconds=5))
    store.close()
    LedgerStore(data / "ledger.db").close()
    create(key_path(data))
    return cfg


def test_export_xlsx_has_a_sheet_per_period_with_codes_flags_and_units(
    box: Path, tmp_path: Path
) -> None:
    out = tmp_path / "logger.xlsx"
    assert main(["--config", str(box), "datalogger", "export", "--out", str(out)]) == 0
    wb = load_workbook(out)
    assert wb.sheetnames == ["分钟数据", "小时数据", "日数据"]
    ws = wb["小时数据"]
    assert "数采仪小时数据" in ws["A1"].value and ws.freeze_panes == "A3"
    assert [c.value for c in ws[2]] == [
        "时间",
        "因子编码",
        "监测点",
        "单位",
        "平均值",
        "最小值",
        "最大值",
        "累计值",
        "标记",
        "标记说明",
        "有效样本数",
        "样本总数",
    ]
    rows = list(ws.iter_rows(min_row=3, values_only=True))
    assert len(rows) == 6  # 2 hours x 3 points
    first = {r[2]: r for r in rows if r[0] == T0}
    assert first["meter1.ia"][1] == "i12001" and first["meter1.ia"][3] == "A"
    assert first["meter1.ia"][8:10] == ("N", "正常") and first["meter1.ia"][10:] == (118, 120)
    assert first["meter1.energy"][7] == pytest.approx(59.5) and first["meter1.energy"][3] == "kWh"
    assert first["meter1.fan"][1] is None and first["meter1.fan"][3] == "Pa"  # no factor code
    assert ws["A3"].number_format == "yyyy-mm-dd hh:mm:ss"
    minutes = list(wb["分钟数据"].iter_rows(min_row=3, values_only=True))
    assert len(minutes) == 360
    (fault,) = [r for r in minutes if r[8] != "N"]
    assert fault[0] == T0 + timedelta(minutes=2) and fault[1] == "i12001"
    assert fault[8:10] == ("D", "故障") and fault[4] is None
    assert len(list(wb["日数据"].iter_rows(min_row=3))) == 3


def test_export_csv_of_one_period_and_a_range(box: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.csv"
    argv = ["--config", str(box), "datalogger", "export", "--period", "minute", "--out", str(out)]
    assert main([*argv, "--from", "2026-03-01 10:00", "--to", "2026-03-01 10:10"]) == 0
    rows = list(csv.reader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[1][:4] == ["时间", "因子编码", "监测点", "单位"]
    assert len(rows) == 2 + 10 * 3
    assert rows[2][0] == "2026-03-01 10:00:00"


def test_backup_and_restore_round_trip_audited(box: Path, tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    bak = tmp_path / "bak" / "logger.bak"
    assert main(["--config", str(box), "datalogger", "backup", str(bak)]) == 0
    assert "minute 360" in capsys.readouterr().out
    store = DataStore(data / "datalogger.sqlite3", RULES)
    feed(store, T0 + timedelta(days=1), 10)  # the live data moves on
    store.close_periods(T0 + timedelta(days=1, minutes=11))
    store.close()
    assert main(["--config", str(box), "datalogger", "restore", str(bak)]) == 1
    assert "would drop data" in capsys.readouterr().err
    assert main(["--config", str(box), "datalogger", "restore", str(bak), "--force"]) == 0
    store = DataStore(data / "datalogger.sqlite3", RULES)
    assert len(list(store.iter_aggregates("minute", None, None))) == 360
    store.close()
    assert list(data.glob("datalogger.sqlite3.pre-restore-*"))
    with LedgerStore(data / "ledger.db") as s:
        (entry,) = list(audit_fields(s, "datalogger_restore"))
    assert entry["details"]["forced"] is True and entry["details"]["file"] == "logger.bak"
    # something that is not a logger database is refused before anything is replaced
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    assert main(["--config", str(box), "datalogger", "restore", str(junk), "--force"]) == 1


def test_the_stick_export_carries_the_logger_data_since_the_last_one(
    box: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "stick"
    dest.mkdir()
    assert main(["--config", str(box), "export", "--dest", str(dest)]) == 0
    (first,) = (dest / "edged-export").iterdir()
    man = json.loads((first / "MANIFEST.json").read_text())
    assert man["logger"] == ["logger/minute.csv", "logger/hour.csv", "logger/day.csv"]
    assert "logger/minute.csv" in man["files"]
    assert verify_export(first).ok
    hours = list(csv.reader((first / "logger/hour.csv").read_text("utf-8-sig").splitlines()))
    assert len(hours) == 2 + 6
    # the next export carries only what came after
    store = DataStore(tmp_path / "data" / "datalogger.sqlite3", RULES)
    feed(store, datetime.now().replace(second=0, microsecond=0) - timedelta(minutes=30), 10)
    store.close_periods()
    store.close()
    assert main(["--config", str(box), "export", "--dest", str(dest)]) == 0
    second = next(p for p in (dest / "edged-export").iterdir() if p != first)
    minutes = list(csv.reader((second / "logger/minute.csv").read_text("utf-8-sig").splitlines()))
    assert len(minutes) == 2 + 10 * 3
    # a range export carries the logger's data of the range; the logger keeps the board's
    # wall time, so the range is given with the board's offset here
    argv = ["--config", str(box), "export", "--dest", str(tmp_path / "range")]
    (tmp_path / "range").mkdir()
    frm, to = (t.astimezone().isoformat() for t in (T0, T0 + timedelta(hours=1)))
    assert main([*argv, "--from", frm, "--to", to]) == 0
    (ranged,) = (tmp_path / "range" / "edged-export").iterdir()
    rows = list(csv.reader((ranged / "logger/hour.csv").read_text("utf-8-sig").splitlines()))
    assert [r[0] for r in rows[2:]] == ["2026-03-01 10:00:00"] * 3
