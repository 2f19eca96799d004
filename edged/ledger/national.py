"""The national-format ledger (HJ 1321-2023 电子台账): three tables and a folder of photos.

For a provincial platform or an inspector, the box's rows become the
national tables, in the national field order and formats:

- 运输车辆 (transport vehicles): 进出厂时间 (``yyyymmdd 24hmmss``), 照片, 车牌号码,
  注册日期 (``yyyymmdd``), 车辆识别代码, 发动机号码, 排放阶段 (one character:
  ``0``–``6``, ``d`` electric), 随车清单, 行驶证, 运输货物名称, 运输量 (t, one
  decimal), 车队名称;
- 厂内运输车辆 (in-plant vehicles): the same, with 燃料类型 instead of cargo and load;
- 非道路移动机械 (machinery): 进出厂时间, 照片, 环保登记编码, 生产日期, 排放阶段
  (``x`` for no stage), 燃料类型, 机械种类, 机械环保代码, 发动机铭牌, 所属单位.

Each table lists the admitted passages of its category (a refused vehicle
never went in or out), as they stand after corrections. After the national
columns come ours: direction, lane, the ledger seq, and a note that says why
a national field is empty (the row's ``missing``) or that the row was
corrected. Photos go in ``photos/<seq>/`` (``snapshot-1.jpg``,
``env_list.jpg``, ``licence.jpg``, ``nameplate.jpg``), named in the table
cells by their path, each checked against the SHA-256 its row holds.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from edged.ledger import zh
from edged.ledger.export_format import document_name, snapshot_name
from edged.ledger.record import PassageRecord, safe_relative_path
from edged.ledger.tally import FIELD_NAMES, Correction
from edged.logs import get_logger
from edged.sheets.csvout import write_tables
from edged.sheets.table import Column, Table, columns
from edged.sheets.xlsx import XlsxWriter

log = get_logger("ledger")

DOCUMENT_EXTENSIONS = ("jpg", "png", "webp", "pdf")
_EXTRA = columns("进出厂", "车道", ("台账序号", "int"), "备注")
TRANSPORT = (
    columns(
        ("序号", "int"),
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
        ("运输量", "num1"),
        "车队名称",
    )
    + _EXTRA
)
IN_PLANT = (
    columns(
        ("序号", "int"),
        "进出厂时间",
        "照片",
        "车牌号码",
        "注册日期",
        "车辆识别代码",
        "发动机号码",
        "排放阶段",
        "燃料类型",
        "随车清单",
        "行驶证",
        "车队名称",
    )
    + _EXTRA
)
MACHINERY = (
    columns(
        ("序号", "int"),
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
    )
    + _EXTRA
)
#: (category, sheet name, CSV file name, columns)
TABLES: tuple[tuple[str, str, str, tuple[Column, ...]], ...] = (
    ("transport", "运输车辆", "transport.csv", TRANSPORT),
    ("in_plant", "厂内运输车辆", "in_plant.csv", IN_PLANT),
    ("machinery", "非道路移动机械", "machinery.csv", MACHINERY),
)
WORKBOOK = "national.xlsx"


def national_time(rec: PassageRecord, tz: tzinfo) -> str:
    """``yyyymmdd 24hmmss`` in site time: 20240501 083015."""
    return datetime.fromisoformat(rec.time).astimezone(tz).strftime("%Y%m%d %H%M%S")


def national_date(text: str | None) -> str:
    """``2019-06-30`` → ``20190630``; anything not a date is left as it is."""
    if not text:
        return ""
    digits = text.replace("-", "").replace("/", "")
    return digits if len(digits) == 8 and digits.isdigit() else text


def category_of(rec: PassageRecord) -> str:
    return rec.category if rec.category in ("in_plant", "machinery") else "transport"


@dataclass
class Photos:
    """Where a row's photos come from, and where they go (None: not copied)."""

    out: Path
    images_dir: Path | None
    documents_dir: Path | None
    copied: int = 0
    missing: list[str] = field(default_factory=list)  # "seq N snapshot path: why"

    def snapshot(self, seq: int, n: int, path: str, sha256: str) -> str:
        name = snapshot_name(seq, n, path)
        src = self.images_dir / path if self.images_dir and safe_relative_path(path) else None
        return self._copy(seq, name, src, sha256, f"snapshot {path}")

    def document(self, seq: int, kind: str, sha256: str) -> str:
        src = None
        if self.documents_dir is not None:
            for ext in DOCUMENT_EXTENSIONS:
                p = self.documents_dir / f"{sha256}.{ext}"
                if p.is_file():
                    src = p
                    break
        ext = src.suffix.lstrip(".") if src is not None else "jpg"
        name = document_name(seq, kind, ext)
        return self._copy(seq, name, src, sha256, zh.name(zh.DOCUMENT, kind))

    def _copy(self, seq: int, name: str, src: Path | None, sha256: str, what: str) -> str:
        dest = self.out / name
        if dest.exists():  # the same photo of a row already copied (a second table)
            return name
        if src is None or not src.is_file():
            self.missing.append(f"seq {seq} {what}: not on the box")
            return ""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.partial")
        h = hashlib.sha256()
        with src.open("rb") as fh, open(tmp, "xb") as out:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != sha256:
            tmp.unlink()
            self.missing.append(f"seq {seq} {what}: file differs from the hash its row holds")
            log.warning(
                "national_photo_mismatch",
                seq=seq,
                what=what,
                hint="run edged ledger verify --images; the photo was not exported",
            )
            return ""
        os.replace(tmp, dest)
        self.copied += 1
        return name


def _photo(photos: Photos | None, seq: int, rec: PassageRecord) -> str:
    if photos is None:
        return ""
    names = [photos.snapshot(seq, n, s.path, s.sha256) for n, s in enumerate(rec.snapshots, 1)]
    return next((n for n in names if n), "")


def _doc(photos: Photos | None, seq: int, rec: PassageRecord, kind: str) -> str:
    sha = rec.documents.get(kind)
    if photos is None or not sha:
        return ""
    return photos.document(seq, kind, sha)


_NOTE_NAMES = FIELD_NAMES | {"documents": "随车清单/行驶证", "snapshots": "照片"}


def _extra(seq: int, rec: PassageRecord, fix: tuple[int, Correction] | None) -> list[Any]:
    notes = []
    if fix is not None:
        notes.append(f"已更正（更正序号{fix[0]}）")
    if rec.missing:
        notes.append(zh.missing(rec.missing, _NOTE_NAMES))
    return [zh.name(zh.DIRECTION, rec.direction), rec.lane, seq, "；".join(notes)]


def national_row(
    n: int,
    seq: int,
    rec: PassageRecord,
    tz: tzinfo,
    photos: Photos | None,
    fix: tuple[int, Correction] | None = None,
) -> tuple[str, list[Any]]:
    """(category, cells) of one admitted row; ``n`` is its 序号 in its table."""
    cat = category_of(rec)
    code = zh.stage_code(rec.stage_code, rec.emission_stage, rec.fuel)
    t = national_time(rec, tz)
    photo = _photo(photos, seq, rec)
    if cat == "machinery":
        m = rec.machinery or {}
        cells = [
            n,
            t,
            photo,
            m.get("registry_no"),
            national_date(m.get("made_on")),
            code or "x",
            zh.name(zh.FUEL, rec.fuel),
            m.get("machine_type") or rec.vehicle_type,
            m.get("env_code"),
            _doc(photos, seq, rec, "nameplate"),
            m.get("owner"),
        ]
    else:
        head = [
            n,
            t,
            photo,
            rec.plate,
            national_date(rec.registered_on),
            rec.vin,
            rec.engine_no,
            code,
        ]
        docs = [_doc(photos, seq, rec, "env_list"), _doc(photos, seq, rec, "licence")]
        if cat == "transport":
            load = round(rec.net_t, 1) if rec.net_t is not None else None
            cells = [*head, *docs, rec.cargo, load, rec.fleet]
        else:
            cells = [*head, zh.name(zh.FUEL, rec.fuel), *docs, rec.fleet]
    return cat, cells + _extra(seq, rec, fix)


@dataclass
class NationalResult:
    rows: dict[str, int] = field(default_factory=lambda: {c: 0 for c, *_ in TABLES})
    files: list[str] = field(default_factory=list)
    photos: int = 0
    missing_photos: list[str] = field(default_factory=list)


def _split(
    rows: Iterable[tuple[int, PassageRecord, tuple[int, Correction] | None]],
    tz: tzinfo,
    photos: Photos | None,
    res: NationalResult,
) -> Iterator[tuple[str, list[Any]]]:
    for seq, rec, fix in rows:
        if rec.decision != "allow":
            continue
        cat = category_of(rec)
        res.rows[cat] += 1
        yield national_row(res.rows[cat], seq, rec, tz, photos, fix)


def write_national(
    rows: Iterable[tuple[int, PassageRecord, tuple[int, Correction] | None]],
    out: Path,
    tz: tzinfo,
    formats: Sequence[str] = ("csv", "xlsx"),
    photos: Photos | None = None,
    title: str = "",
) -> NationalResult:
    """Write the three tables (CSV files and/or one workbook) into ``out`` in one pass."""
    out.mkdir(parents=True, exist_ok=True)
    res = NationalResult()
    book = XlsxWriter(out / WORKBOOK) if "xlsx" in formats else None
    sheets: dict[str, Any] = {}
    handles: dict[str, Any] = {}
    try:
        for cat, sheet, csv_name, cols in TABLES:
            table = Table(sheet, f"{title} {sheet}电子台账".strip(), cols)
            if book is not None:
                sheets[cat] = book.sheet(table)
            if "csv" in formats:
                tmp = out / f".{csv_name}.partial"
                fh = open(tmp, "x", encoding="utf-8-sig", newline="")  # noqa: SIM115
                handles[cat] = (fh, tmp, out / csv_name, _CsvRows(fh, table))
        for cat, cells in _split(rows, tz, photos, res):
            if cat in sheets:
                sheets[cat].append(cells)
            if cat in handles:
                handles[cat][3].append(cells)
        for fh, tmp, final, _rows in handles.values():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.replace(tmp, final)
            res.files.append(final.name)
        if book is not None:
            book.close()
            res.files.append(WORKBOOK)
    except BaseException:
        for fh, tmp, _final, _rows in handles.values():
            fh.close()
            tmp.unlink(missing_ok=True)
        if book is not None:
            book.discard()
        raise
    if photos is not None:
        res.photos, res.missing_photos = photos.copied, photos.missing
    return res


class _CsvRows:
    """A national table as a plain CSV (title line, header, rows), written as rows come."""

    def __init__(self, fh: Any, table: Table) -> None:
        import csv

        self.w = csv.writer(fh, lineterminator="\r\n")
        self.kinds = [c.kind for c in table.columns]
        write_tables([table], fh, sections=False)

    def append(self, cells: list[Any]) -> None:
        from edged.sheets.table import text_of

        self.w.writerow([text_of(v, k) for v, k in zip(cells, self.kinds, strict=False)])
