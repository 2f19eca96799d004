"""Daily, weekly and monthly reports (日报、周报、月报) in XLSX or CSV.

A report covers one period in site time. Its sections are counted by
:class:`edged.ledger.tally.Tally` from the rows as they stand after
corrections (a corrected row counts once, with the corrected values, and
the 更正 column and the 更正记录 section say so); the last sheet, 通行明细,
lists every row. Values are Chinese (进厂, 柴油, 放行, 国五 and the national
stage code), times are real date cells, shares real numbers shown as
percentages; the title names the plant (``site.name``), the gate
(``site.gate_name``) and the period.

XLSX is written in one pass over the period: the detail sheet streams while
the sections are counted, and the sections are filled in at the end
(:mod:`edged.sheets.xlsx` keeps each sheet in a compressed temporary file, so
memory stays flat for a month of a busy gate). CSV needs its sections first,
so it reads the period twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, TextIO

from edged.ledger import zh
from edged.ledger.record import PassageRecord
from edged.ledger.store import LedgerStore, audit_fields
from edged.ledger.tally import (
    FIELD_NAMES,
    SECTIONS,
    Correction,
    Tally,
    local_time,
)
from edged.sheets.csvout import write_tables
from edged.sheets.table import Table, columns
from edged.sheets.xlsx import XlsxWriter

KINDS = ("daily", "weekly", "monthly")
KIND_ZH = {"daily": "日报", "weekly": "周报", "monthly": "月报"}

DETAIL = columns(
    ("台账序号", "int"),
    ("时间", "datetime"),
    "车道",
    "方向",
    "车牌号码",
    "车牌颜色",
    "车辆类别",
    "车辆类型",
    "车辆识别代码(VIN)",
    "发动机号码",
    "注册日期",
    "燃料类型",
    "排放阶段",
    "国家编码",
    "车队名称",
    "结果",
    "原因",
    "预警级别",
    "电子标签",
    ("总重(kg)", "int"),
    ("运输量(t)", "num1"),
    ("进厂时间", "datetime"),
    ("在厂时长(分钟)", "int"),
    "运输货物名称",
    "识别方式",
    ("识别置信度", "pct"),
    "标记",
    "特批编号",
    "更正",
    "抓拍图片",
    "缺项说明",
    "事件ID",
)


@dataclass(frozen=True)
class Period:
    kind: str
    label: str  # 2024-05-01 | 2024-W18 | 2024-05
    first: date
    end: date  # exclusive
    start_ts: float
    end_ts: float

    @property
    def text(self) -> str:
        if self.kind == "daily":
            return self.label
        last = self.end - timedelta(days=1)
        return f"{self.label}（{self.first.isoformat()}至{last.isoformat()}）"


def period(kind: str, text: str, tz: tzinfo) -> Period:
    """A day (YYYY-MM-DD), an ISO week (YYYY-Www, or any day in it) or a month (YYYY-MM)."""
    if kind not in KINDS:
        raise ValueError(f"kind: expected daily, weekly or monthly, found {kind!r}")
    want = {"daily": "YYYY-MM-DD", "weekly": "YYYY-Www or YYYY-MM-DD", "monthly": "YYYY-MM"}
    try:
        if kind == "daily":
            first = date.fromisoformat(text)
            end, label = first + timedelta(days=1), first.isoformat()
        elif kind == "weekly":
            if "W" in text.upper():
                y, w = text.upper().split("-W")
                first = date.fromisocalendar(int(y), int(w), 1)
            else:
                d = date.fromisoformat(text)
                first = d - timedelta(days=d.weekday())
            iso = first.isocalendar()
            end, label = first + timedelta(days=7), f"{iso.year:04d}-W{iso.week:02d}"
        else:
            y, m = (int(x) for x in text.split("-"))
            first = date(y, m, 1)
            end, label = date(y + (m == 12), m % 12 + 1, 1), f"{y:04d}-{m:02d}"
    except (ValueError, TypeError):
        raise ValueError(f"date: expected {want[kind]}, found {text!r}") from None

    def at(d: date) -> float:
        return datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()

    return Period(kind, label, first, end, at(first), at(end))


@dataclass(frozen=True)
class ReportSpec:
    """Which report, for whom: the period, the plant and gate named in the title."""

    kind: str
    date: str
    tz: tzinfo
    plant: str = ""  # site.name (or the site id)
    gate: str = ""  # site.gate_name (or the gate id)
    frequent_per_day: int = 8

    def title(self, p: Period, what: str = "") -> str:
        head = " ".join(x for x in (self.plant, self.gate) if x)
        return f"{head} 车辆进出{KIND_ZH[self.kind]} {p.text}{('　' + what) if what else ''}"


# -- rows as they stand ---------------------------------------------------------------


def corrections_in_audit(store: LedgerStore) -> dict[int, Correction]:
    """Correction seq -> who made it, when, why and what changed (from the audit chain)."""
    out: dict[int, Correction] = {}
    for fields in audit_fields(store, "correction"):
        d = fields.get("details") or {}
        if isinstance(d.get("new_seq"), int):
            out[d["new_seq"]] = Correction(
                str(fields.get("actor") or ""),
                str(fields.get("time") or ""),
                str(d.get("reason") or ""),
                d.get("changed") or {},
            )
    return out


def standing_rows(
    store: LedgerStore, since_seq: int = 0, **filters: Any
) -> Iterator[tuple[int, PassageRecord, tuple[int, Correction] | None]]:
    """Rows in seq order as they stand: (original seq, record, fix).

    ``filters`` are those of :meth:`LedgerStore.passages` (``start``/``end`` UNIX
    times, ``until_seq``, ...). A corrected row is given with its latest
    correction's values at the original's place; ``fix`` is (correction seq,
    the audit's account of it). Correction rows themselves are not given.
    """
    latest = store.latest_corrections()
    audit = corrections_in_audit(store) if latest else {}
    for p in store.passages(since_seq, **filters):
        if p.record.correction_of is not None:
            continue  # given at its original's place
        fix_seq = latest.get(p.seq)
        if fix_seq is None:
            yield p.seq, p.record, None
            continue
        fixed = next(store.passages(since_seq=fix_seq - 1, until_seq=fix_seq), None)
        if fixed is None:  # cannot happen in a verified ledger; show what there is
            yield p.seq, p.record, None
            continue
        yield p.seq, fixed.record, (fix_seq, audit.get(fix_seq, Correction()))


def detail_row(
    seq: int, r: PassageRecord, tz: tzinfo, fix: tuple[int, Correction] | None
) -> list[Any]:
    code = zh.stage_code(r.stage_code, r.emission_stage, r.fuel)
    entry = None
    if r.entry_time:
        try:
            entry = datetime.fromisoformat(r.entry_time).astimezone(tz).replace(tzinfo=None)
        except ValueError:
            entry = None
    fixed = ""
    if fix is not None:
        who = fix[1].operator or r.operator or ""
        fixed = f"已更正（更正序号{fix[0]}{'，' + who if who else ''}）"
    return [
        seq,
        local_time(r, tz),
        r.lane,
        zh.name(zh.DIRECTION, r.direction),
        r.plate,
        zh.name(zh.COLOUR, r.plate_colour),
        zh.name(zh.CATEGORY, r.category),
        r.vehicle_type,
        r.vin,
        r.engine_no,
        r.registered_on,
        zh.name(zh.FUEL, r.fuel),
        zh.stage(r.emission_stage) or (zh.stage_class(code) if code else ""),
        code,
        r.fleet,
        zh.name(zh.DECISION, r.decision),
        r.reason_zh or zh.name(zh.REASON, r.reason_code),
        zh.name(zh.ALERT, r.alert_level),
        r.rfid_tag,
        r.weight_kg,
        r.net_t,
        entry,
        round(r.dwell_s / 60) if r.dwell_s is not None else None,
        r.cargo,
        zh.name(zh.ID_SOURCE, r.id_source),
        r.id_confidence,
        zh.flags(r.flags),
        r.approval.ref or r.approval.id if r.approval else None,
        fixed,
        "；".join(s.path for s in r.snapshots),
        zh.missing(r.missing, FIELD_NAMES | _MISSING_NAMES),
        r.event_id,
    ]


_MISSING_NAMES = {"documents": "随车清单/行驶证", "snapshots": "抓拍图片"}


# -- writing ------------------------------------------------------------------------------


@dataclass
class ReportResult:
    path: Path
    period: Period
    rows: int


def write_report(store: LedgerStore, spec: ReportSpec, path: Path, fmt: str) -> ReportResult:
    """Write the report to ``path`` (temporary name, fsync, rename)."""
    p = period(spec.kind, spec.date, spec.tz)
    if fmt == "xlsx":
        n = _write_xlsx(store, spec, p, path)
    else:
        from edged.sheets.csvout import write_csv_file

        tables = report_tables(store, spec, p)
        n = write_csv_file(tables, path)
    return ReportResult(path, p, n)


def write_report_csv_to(store: LedgerStore, spec: ReportSpec, out: TextIO) -> Period:
    """The CSV report into an open stream (an export's hashed file)."""
    p = period(spec.kind, spec.date, spec.tz)
    write_tables(report_tables(store, spec, p), out)
    return p


def report_tables(store: LedgerStore, spec: ReportSpec, p: Period) -> list[Table]:
    """Every section (counted in a first pass) and the detail table (read in a second)."""
    tally = Tally(spec.tz, spec.frequent_per_day)
    for seq, rec, fix in standing_rows(store, start=p.start_ts, end=p.end_ts):
        tally.add(seq, rec, fix)
    tables = [Table(s.name, spec.title(p, s.name), s.columns, tally.rows(s)) for s in SECTIONS]
    details = (
        detail_row(seq, rec, spec.tz, fix)
        for seq, rec, fix in standing_rows(store, start=p.start_ts, end=p.end_ts)
    )
    tables.append(Table("通行明细", spec.title(p, "通行明细"), DETAIL, details))
    return tables


def _write_xlsx(store: LedgerStore, spec: ReportSpec, p: Period, path: Path) -> int:
    tally = Tally(spec.tz, spec.frequent_per_day)
    with XlsxWriter(path) as book:
        sheets = [
            (s, book.sheet(Table(s.name, spec.title(p, s.name), s.columns))) for s in SECTIONS
        ]
        detail = book.sheet(Table("通行明细", spec.title(p, "通行明细"), DETAIL))
        for seq, rec, fix in standing_rows(store, start=p.start_ts, end=p.end_ts):
            tally.add(seq, rec, fix)
            detail.append(detail_row(seq, rec, spec.tz, fix))
        for section, sheet in sheets:
            sheet.extend(tally.rows(section))
        return detail.data_rows


def site_names(cfg: Any) -> tuple[str, str]:
    """Plant and gate as reports print them: the names, else the ids."""
    site = cfg.site
    return (site.name or site.id, site.gate_name or site.gate_id)
