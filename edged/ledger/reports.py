"""Daily and monthly reports: the figures an inspector checks, in Chinese, in CSV or XLSX.

Corrections replace what they correct: a row that a later row corrects is
left out of every count (the correction, which keeps the passage time,
counts instead). Shares of emission stages are given both per passage and
per vehicle, since inspectors ask for "the share of each stage among the
plant's trucks" and a busy shuttle truck must not weigh more than a
once-a-month one.

XLSX is written with openpyxl in write-only mode (rows stream to disk, RSS
stays flat for a month of a busy gate); sheet names are short Chinese
words, and every cell is cleaned of control characters and formula starts
so the file opens in Excel and WPS without a repair prompt.
"""

from __future__ import annotations

import csv
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from edged.ledger.query import safe_text
from edged.ledger.record import PassageRecord
from edged.ledger.store import LedgerStore, StoredPassage

DIRECTION_ZH = {"in": "进厂", "out": "出厂"}
DECISION_ZH = {"allow": "放行", "deny": "拒绝", "hold": "待定"}
ID_SOURCE_ZH = {
    "plate": "车牌",
    "rfid": "RFID",
    "manual": "人工",
    "plate+rfid": "车牌+RFID",
    "none": "无",
}

DETAIL_HEADINGS = (
    "序号",
    "时间",
    "门岗",
    "方向",
    "车牌号码",
    "车牌颜色",
    "车辆类型",
    "车辆识别代码(VIN)",
    "燃料类型",
    "排放阶段",
    "结果",
    "原因代码",
    "原因",
    "电子标签(RFID)",
    "重量(kg)",
    "货物",
    "识别方式",
    "识别置信度",
    "标记",
    "更正序号",
    "操作员",
    "特批编号",
    "抓拍图片",
    "事件ID",
)


@dataclass
class Report:
    kind: str  # daily | monthly
    label: str  # 2024-05-01 | 2024-05
    start: float
    end: float
    tz: tzinfo
    summary: list[tuple[str, Any]] = field(default_factory=list)
    deny_reasons: list[tuple[str, str, int]] = field(default_factory=list)
    stages: list[tuple[str, int, str, int, str]] = field(default_factory=list)
    approvals: list[tuple[Any, ...]] = field(default_factory=list)
    frequent: list[tuple[str, str, int]] = field(default_factory=list)
    no_plate: list[tuple[Any, ...]] = field(default_factory=list)


def period(kind: str, text: str, tz: tzinfo) -> tuple[float, float, str]:
    """[start, end) of a day (YYYY-MM-DD) or month (YYYY-MM) in the site's zone."""
    try:
        if kind == "daily":
            d = date.fromisoformat(text)
            first, nxt = d, d + timedelta(days=1)
            label = d.isoformat()
        elif kind == "monthly":
            y, m = (int(x) for x in text[:7].split("-"))
            first = date(y, m, 1)
            nxt = date(y + (m == 12), m % 12 + 1, 1)
            label = f"{y:04d}-{m:02d}"
        else:
            raise ValueError(f"kind: expected daily or monthly, found {kind!r}")
    except (ValueError, TypeError) as exc:
        if str(exc).startswith("kind:"):
            raise
        want = "YYYY-MM-DD" if kind == "daily" else "YYYY-MM"
        raise ValueError(f"date: expected {want}, found {text!r}") from None

    def at(d: date) -> float:
        return datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()

    return at(first), at(nxt), label


def local(rec: PassageRecord, tz: tzinfo, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return datetime.fromisoformat(rec.time).astimezone(tz).strftime(fmt)


def _pct(n: int, total: int) -> str:
    return f"{100.0 * n / total:.1f}%" if total else "0.0%"


def _vehicle_key(rec: PassageRecord) -> str | None:
    return rec.plate or rec.vin or rec.rfid_tag


def effective_passages(store: LedgerStore, start: float, end: float) -> Iterator[StoredPassage]:
    """Rows in the period, with corrected originals left out."""
    corrected = store.corrected_seqs()
    for p in store.passages(start=start, end=end):
        if p.seq not in corrected:
            yield p


def build_report(
    store: LedgerStore, kind: str, text: str, tz: tzinfo, frequent_per_day: int = 8
) -> Report:
    start, end, label = period(kind, text, tz)
    rep = Report(kind, label, start, end, tz)
    by_dir: Counter[str] = Counter()
    by_dec: Counter[tuple[str, str]] = Counter()
    reasons: Counter[tuple[str, str]] = Counter()
    stage_passages: Counter[str] = Counter()
    stage_vehicles: dict[str, set[str]] = defaultdict(set)
    vehicles: set[str] = set()
    ne_passages = 0
    ne_vehicles: set[str] = set()
    per_day: Counter[tuple[str, str]] = Counter()
    total = 0
    for p in effective_passages(store, start, end):
        r = p.record
        total += 1
        by_dir[r.direction] += 1
        by_dec[(r.direction, r.decision)] += 1
        if r.decision != "allow":
            reasons[(r.reason_code, r.reason_zh)] += 1
        stage = r.emission_stage or "未知"
        stage_passages[stage] += 1
        key = _vehicle_key(r)
        if key:
            vehicles.add(key)
            stage_vehicles[stage].add(key)
        if r.new_energy:
            ne_passages += 1
            if key:
                ne_vehicles.add(key)
        if r.approval is not None:
            a = r.approval
            rep.approvals.append(
                (
                    p.seq,
                    local(r, tz),
                    r.plate or "",
                    DIRECTION_ZH[r.direction],
                    a.id,
                    a.applicant,
                    a.approver,
                    a.reason,
                    a.valid_until or "",
                )
            )
        if not r.plate_read:
            rep.no_plate.append(
                (
                    p.seq,
                    local(r, tz),
                    DIRECTION_ZH[r.direction],
                    ID_SOURCE_ZH.get(r.id_source, r.id_source),
                    r.rfid_tag or "",
                    r.plate or "",
                    DECISION_ZH[r.decision],
                    r.reason_zh,
                )
            )
        if r.plate:
            per_day[(r.plate, local(r, tz, "%Y-%m-%d"))] += 1
    nv = len(vehicles)
    rep.summary = [
        ("统计期间", label),
        ("通行总次数", total),
        ("进厂次数", by_dir["in"]),
        ("出厂次数", by_dir["out"]),
        ("进厂放行", by_dec[("in", "allow")]),
        ("进厂拒绝", by_dec[("in", "deny")]),
        ("出厂放行", by_dec[("out", "allow")]),
        ("出厂拒绝", by_dec[("out", "deny")]),
        ("待定(人工处理)", by_dec[("in", "hold")] + by_dec[("out", "hold")]),
        ("车辆数", nv),
        ("新能源车辆通行次数", ne_passages),
        ("新能源通行占比", _pct(ne_passages, total)),
        ("新能源车辆数", len(ne_vehicles)),
        ("新能源车辆占比", _pct(len(ne_vehicles), nv)),
        ("特批放行次数", len(rep.approvals)),
        ("无车牌识别通行次数", len(rep.no_plate)),
        (
            f"频繁进出车辆(单日超过{frequent_per_day}次)",
            len({pl for (pl, _d), n in per_day.items() if n > frequent_per_day}),
        ),
    ]
    rep.deny_reasons = [(code, zh, n) for (code, zh), n in reasons.most_common()]
    rep.stages = [
        (s, n, _pct(n, total), len(stage_vehicles[s]), _pct(len(stage_vehicles[s]), nv))
        for s, n in sorted(stage_passages.items())
    ]
    rep.frequent = sorted(
        ((pl, d, n) for (pl, d), n in per_day.items() if n > frequent_per_day),
        key=lambda t: (-t[2], t[0], t[1]),
    )
    return rep


SECTIONS = (
    ("汇总", ("项目", "数值"), "summary"),
    ("拒绝原因", ("原因代码", "原因", "次数"), "deny_reasons"),
    ("排放阶段占比", ("排放阶段", "通行次数", "通行占比", "车辆数", "车辆占比"), "stages"),
    (
        "特批放行",
        ("序号", "时间", "车牌号码", "方向", "特批编号", "申请人", "审批人", "原因", "有效期至"),
        "approvals",
    ),
    ("频繁进出车辆", ("车牌号码", "日期", "通行次数"), "frequent"),
    (
        "无车牌识别通行",
        ("序号", "时间", "方向", "识别方式", "电子标签(RFID)", "车牌号码", "结果", "原因"),
        "no_plate",
    ),
)


def detail_row(p: StoredPassage, tz: tzinfo) -> list[Any]:
    r = p.record
    return [
        p.seq,
        local(r, tz),
        r.gate,
        DIRECTION_ZH[r.direction],
        r.plate or "",
        r.plate_colour or "",
        r.vehicle_type or "",
        r.vin or "",
        r.fuel or "",
        r.emission_stage or "",
        DECISION_ZH[r.decision],
        r.reason_code,
        r.reason_zh,
        r.rfid_tag or "",
        r.weight_kg if r.weight_kg is not None else "",
        r.cargo or "",
        ID_SOURCE_ZH.get(r.id_source, r.id_source),
        r.id_confidence if r.id_confidence is not None else "",
        ",".join(r.flags),
        r.correction_of or "",
        r.operator or "",
        r.approval.id if r.approval else "",
        ";".join(s.path for s in r.snapshots),
        r.event_id,
    ]


def _tmp(path: Path) -> Path:
    return path.with_name("." + path.name + ".partial")


def write_report_csv_to(rep: Report, fh: Any) -> None:
    """Sections one after the other, each under a ``[name]`` line."""
    w = csv.writer(fh)
    w.writerow([f"{'日报' if rep.kind == 'daily' else '月报'} {rep.label}"])
    for title, headings, attr in SECTIONS:
        w.writerow([])
        w.writerow([f"[{title}]"])
        w.writerow(headings)
        for row in getattr(rep, attr):
            w.writerow([safe_text(v) if isinstance(v, str) else v for v in row])


def write_report_csv(rep: Report, path: Path) -> None:
    """UTF-8 with BOM so Excel/WPS read the Chinese; temp name, fsync, rename."""
    tmp = _tmp(path)
    with tmp.open("w", encoding="utf-8-sig", newline="") as fh:
        write_report_csv_to(rep, fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def _cell(v: Any) -> Any:
    if isinstance(v, str):
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        return safe_text(ILLEGAL_CHARACTERS_RE.sub("", v))[:32767]
    return v


def write_report_xlsx(rep: Report, path: Path, store: LedgerStore | None = None) -> int:
    """Summary sheets, plus (given the store) a 通行明细 sheet of every row, streamed.

    Returns the number of detail rows.
    """
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    for title, headings, attr in SECTIONS:
        ws = wb.create_sheet(title=title)
        ws.append(list(headings))
        for row in getattr(rep, attr):
            ws.append([_cell(v) for v in row])
    n = 0
    if store is not None:
        ws = wb.create_sheet(title="通行明细")
        ws.append(list(DETAIL_HEADINGS))
        for p in effective_passages(store, rep.start, rep.end):
            ws.append([_cell(v) for v in detail_row(p, rep.tz)])
            n += 1
    tmp = _tmp(path)
    wb.save(tmp)
    with tmp.open("rb+") as fh:
        os.fsync(fh.fileno())
    tmp.replace(path)
    return n
