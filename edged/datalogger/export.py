"""The data logger's history for people: minute, hour and day data as CSV or XLSX.

The guide (003 §5.1) asks that the logger's history can be taken away on a
USB stick. Each row is one factor in one period: the start time (site time,
as HJ 212 DataTime), the factor code (``i12001``; a point without one is
named ``device.point`` and has no code), the point, its unit, average,
minimum, maximum, total (Cou), the data flag with its meaning, and how many
of the period's samples were valid. Rows stream from the store, so a month
of minute data does not sit in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from edged.datalogger.store import DataStore
from edged.sheets.csvout import write_csv_file
from edged.sheets.table import Table, columns
from edged.sheets.xlsx import XlsxWriter

PERIODS = ("minute", "hour", "day")
PERIOD_ZH = {"minute": "分钟数据", "hour": "小时数据", "day": "日数据"}
#: HJ 212 data flags (数据标记) and what they mean.
FLAG_ZH = {
    "N": "正常",
    "F": "停运",
    "M": "维护",
    "S": "手工输入",
    "D": "故障",
    "C": "校准",
    "T": "超限",
    "B": "通讯异常",
}
COLUMNS = columns(
    ("时间", "datetime"),
    "因子编码",
    "监测点",
    "单位",
    ("平均值", "num"),
    ("最小值", "num"),
    ("最大值", "num"),
    ("累计值", "num"),
    "标记",
    "标记说明",
    ("有效样本数", "int"),
    ("样本总数", "int"),
)


@dataclass(frozen=True)
class PointInfo:
    """What a stored key is: its point (device.point) and unit."""

    point: str
    unit: str


def point_info(modbus: Any) -> dict[str, PointInfo]:
    """Key → point and unit, from the register map (``ModbusConfig``)."""
    out: dict[str, PointInfo] = {}
    for d in getattr(modbus, "devices", ()) or ():
        for p in d.points:
            key = p.factor or f"{d.name}.{p.name}"
            out[key] = PointInfo(f"{d.name}.{p.name}", p.unit)
    return out


def rows(
    store: DataStore,
    period: str,
    begin: datetime | None,
    end: datetime | None,
    info: dict[str, PointInfo],
) -> Iterator[list[Any]]:
    for a in store.iter_aggregates(period, begin, end):  # type: ignore[arg-type]
        p = info.get(a.key)
        factor = "" if "." in a.key else a.key
        yield [
            a.start,
            factor,
            p.point if p else (a.key if "." in a.key else ""),
            p.unit if p else "",
            a.avg,
            a.min,
            a.max,
            a.cou,
            a.flag,
            FLAG_ZH.get(a.flag, ""),
            a.n_valid,
            a.n_total,
        ]


def tables(
    store: DataStore,
    periods: Sequence[str],
    begin: datetime | None,
    end: datetime | None,
    info: dict[str, PointInfo],
    title: str = "",
) -> list[Table]:
    span = f"{_when(begin)}至{_when(end)}"
    return [
        Table(
            PERIOD_ZH[p],
            f"{title} 数采仪{PERIOD_ZH[p]} {span}".strip(),
            COLUMNS,
            rows(store, p, begin, end, info),
        )
        for p in periods
    ]


def _when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M") if t else "…"


def write_logger(
    store: DataStore,
    path: Path,
    fmt: str,
    periods: Sequence[str],
    begin: datetime | None,
    end: datetime | None,
    info: dict[str, PointInfo],
    title: str = "",
) -> int:
    """One file: an XLSX with a sheet per period, or a CSV with a section per period."""
    ts = tables(store, periods, begin, end, info, title)
    if fmt == "xlsx":
        with XlsxWriter(path) as book:
            return sum(book.sheet(t).data_rows for t in ts)
    return write_csv_file(ts, path, sections=len(ts) > 1)


def export_to_folder(
    store: DataStore,
    folder: Path,
    begins: dict[str, datetime | None],
    end: datetime | None,
    info: dict[str, PointInfo],
    title: str = "",
) -> tuple[list[str], dict[str, datetime]]:
    """For the stick: ``minute.csv``, ``hour.csv``, ``day.csv`` under ``folder``.

    Each period from its own ``begins`` entry (None: all that is kept) up to
    ``end``, or, without one, up to what the logger has closed: a minute still
    being filled is left for the next export, never skipped. Returns the files
    and where each period stopped.
    """
    folder.mkdir(parents=True, exist_ok=True)
    out, stops = [], {}
    for p in PERIODS:
        begin = begins.get(p)
        stop = end or store.closed_until(p) or begin or datetime(1970, 1, 1)
        (t,) = tables(store, (p,), begin, stop, info, title)
        write_csv_file([t], folder / f"{p}.csv", sections=False)
        out.append(f"{folder.name}/{p}.csv")
        stops[p] = stop
    return out, stops
