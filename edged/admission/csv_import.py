"""CSV import of the registry lists, as plants and hauliers actually export them.

Files come from Chinese Excel (GBK), from web platforms (UTF-8 with a BOM) or
from scripts (plain UTF-8), with Chinese or English headings. Parsing is pure
(``parse_csv``) and collects every problem with its row number and field, so an
operator fixes the file in one go; ``import_csv`` writes only a file without a
single error, in one transaction.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from edged import sitetime
from edged.admission.documents import DocumentRefused, is_sha256
from edged.admission.model import (
    CARGO_MAX,
    ENGINE_NO_MAX,
    ENV_CODE_MAX,
    FLEET_MAX,
    BlacklistEntry,
    Nrmm,
    Vehicle,
    check_plate,
    normalize_plate,
    parse_colour,
    parse_fuel,
    parse_stage,
)
from edged.admission.registry import Kind, Mode, Registry
from edged.admission.stages import parse_machine_stage
from edged.logs import get_logger

log = get_logger("gate")

KINDS: tuple[Kind, ...] = ("vehicles", "plant_vehicles", "blacklist", "nrmm")
MODES: tuple[Mode, ...] = ("replace", "upsert", "delete")

# canonical field → accepted headings (compared after lower-casing and removing blanks)
_VEHICLE_HEADINGS: dict[str, tuple[str, ...]] = {
    "plate": ("plate", "车牌号", "车牌号码", "号牌号码", "车牌"),
    "plate_colour": ("plate_colour", "plate_color", "车牌颜色", "号牌颜色"),
    "vin": ("vin", "车辆识别代码", "车辆识别号", "车架号"),
    "registered_on": (
        "registered_on",
        "registration_date",
        "registered",
        "注册日期",
        "注册登记日期",
    ),
    "brand_model": ("brand_model", "model", "品牌型号", "车辆品牌型号"),
    "vehicle_type": ("vehicle_type", "车辆类型"),
    "vehicle_class": ("vehicle_class", "class", "车辆分类"),
    "fuel": ("fuel", "燃料类型", "燃料种类", "燃料"),
    "emission_stage": ("emission_stage", "stage", "排放阶段", "排放标准"),
    "hazardous": ("hazardous", "危险品车辆", "危险品", "危化品车辆"),
    "engine_no": ("engine_no", "engine_number", "发动机号码", "发动机号"),
    "fleet": ("fleet", "haulier", "车队名称", "运输单位", "运输公司", "车队", "所属车队"),
    "cargo": ("cargo", "运输货物名称", "货物名称", "运输货物"),
    "rfid_tags": ("rfid_tags", "rfid", "tags", "电子标签", "电子标签号"),
    "env_list": ("env_list", "env_list_photo", "随车清单", "随车清单照片", "环保随车清单"),
    "licence": ("licence", "license", "licence_photo", "行驶证", "行驶证照片"),
    "valid_until": ("valid_until", "有效期至", "有效期"),
    "source": ("source", "来源", "数据来源"),
}
_HEADINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "vehicles": _VEHICLE_HEADINGS,
    "plant_vehicles": _VEHICLE_HEADINGS,
    "blacklist": {
        "plate": ("plate", "车牌号", "车牌号码", "号牌号码", "车牌"),
        "reason": ("reason", "原因", "列入原因", "黑名单原因"),
        "source": ("source", "来源", "发布单位", "下发单位"),
        "valid_from": ("valid_from", "开始时间", "生效时间", "起始时间"),
        "valid_until": ("valid_until", "until", "结束时间", "截止时间", "失效时间"),
    },
    "nrmm": {
        "registry_no": ("registry_no", "登记编码", "登记号", "环保登记编码", "编码"),
        "env_code": ("env_code", "机械环保代码", "环保代码"),
        "machine_type": ("machine_type", "type", "机械类型", "机械种类"),
        "emission_stage": ("emission_stage", "stage", "排放阶段", "排放标准"),
        "made_on": ("made_on", "manufactured", "生产日期", "出厂日期"),
        "fuel": ("fuel", "燃料类型", "燃料种类", "燃料"),
        "owner": ("owner", "所属单位", "使用单位", "所有人"),
        "plate": ("plate", "号牌号码", "车牌号码", "车牌号", "号牌"),
        "rfid_tags": ("rfid_tags", "rfid", "tags", "电子标签", "电子标签号"),
        "nameplate": ("nameplate", "engine_nameplate", "发动机铭牌", "发动机铭牌照片", "铭牌照片"),
        "valid_until": ("valid_until", "有效期至", "有效期"),
        "source": ("source", "来源", "数据来源"),
    },
}
_KEY = {"vehicles": "plate", "plant_vehicles": "plate", "blacklist": "plate", "nrmm": "registry_no"}
_REQUIRED = {
    "vehicles": ("plate", "fuel"),
    "plant_vehicles": ("plate", "fuel"),
    "blacklist": ("plate", "reason"),
    "nrmm": ("registry_no",),
}
_PHOTOS = {"env_list", "licence", "nameplate"}
Photo = Callable[[str], str]
"""Stores the photo a cell names (a file) and returns its SHA-256; raises ValueError."""
_TRUE = {"1", "y", "yes", "true", "是", "有"}
_FALSE = {"", "0", "n", "no", "false", "否", "无"}
_SPLIT = re.compile(r"[;,|、；，\s]+")
_ISO_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")


@dataclass(frozen=True)
class RowError:
    """One problem: ``row`` is the line as Excel numbers it (heading = 1)."""

    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, {self.field}: {self.message}"


@dataclass
class ParseResult:
    kind: Kind
    mode: Mode
    records: list[Any] = field(default_factory=list)  # Vehicle / BlacklistEntry / Nrmm / key str
    errors: list[RowError] = field(default_factory=list)
    encoding: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors


def decode(data: bytes) -> tuple[str, str]:
    """Text and the encoding used. UTF-8 is tried first because GBK would happily
    mis-decode many UTF-8 files; GB18030 is the strict superset of GBK."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    return data.decode("gb18030"), "gbk"


def _norm_heading(text: str) -> str:
    return re.sub(r"[\s_\-()（）*]", "", text).lower()


def _parse_time(text: str, tz: tzinfo, end_of_day: bool) -> datetime:
    if _ISO_OFFSET.match(text.strip()):  # from a backend: an exact time with its offset
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    t = text.strip().replace("年", "-").replace("月", "-").replace("日", "").replace("/", "-")
    # by shape: a date alone (the usual 有效期至) takes one try instead of four
    times = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S")
    for fmt in times if ":" in t else ("%Y-%m-%d",):
        try:
            dt = datetime.strptime(t, fmt)
        except ValueError:
            continue
        if fmt == "%Y-%m-%d" and end_of_day:
            # "valid until 2026-12-31" includes that whole day; 9999-12-31 means "for ever"
            dt = dt + timedelta(days=1) if dt.year < 9999 else dt.replace(hour=23, minute=59)
        return dt.replace(tzinfo=tz)
    raise ValueError(f"expected a date like 2026-12-31 or 2026/12/31 08:00, found {text!r}")


def _date_only(text: str) -> str:
    t = text.strip().replace("年", "-").replace("月", "-").replace("日", "").replace("/", "-")
    try:
        return datetime.strptime(t.split(" ")[0], "%Y-%m-%d").date().isoformat()
    except ValueError:
        raise ValueError(f"expected a date like 2019-05-20, found {text!r}") from None


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise ValueError(f"expected 是/否 or yes/no, found {text!r}")


def parse_csv(
    data: bytes, kind: Kind, mode: Mode = "upsert", tz: tzinfo | None = None
) -> ParseResult:
    """Parse a whole file; never raises on bad content, every problem is a RowError."""
    tz = tz or sitetime.now().tzinfo
    assert tz is not None
    result = ParseResult(kind=kind, mode=mode)
    if kind not in _HEADINGS:
        result.errors.append(RowError(0, "kind", f"expected one of {', '.join(KINDS)}"))
        return result
    if mode not in MODES:
        result.errors.append(RowError(0, "mode", f"expected one of {', '.join(MODES)}"))
        return result
    try:
        text, result.encoding = decode(data)
    except UnicodeDecodeError as exc:
        result.errors.append(RowError(0, "file", f"neither UTF-8 nor GBK text ({exc.reason})"))
        return result
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:  # NUL bytes, a binary file renamed .csv
        result.errors.append(RowError(0, "file", f"not a CSV file ({exc})"))
        return result
    if not rows or not any(c.strip() for c in rows[0]):
        result.errors.append(RowError(1, "heading", "file is empty or has no heading row"))
        return result

    columns = _columns(rows[0], kind, mode, result.errors)
    if result.errors:
        return result

    seen: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        cells = {name: (row[i].strip() if i < len(row) else "") for name, i in columns.items()}
        errors: list[RowError] = []
        record = _record(kind, mode, cells, number, tz, errors)
        if record is not None:
            key = record if isinstance(record, str) else getattr(record, _KEY[kind])
            if key in seen:
                errors.append(RowError(number, _KEY[kind], f"{key} already on row {seen[key]}"))
            else:
                seen[key] = number
                result.records.append(record)
        result.errors.extend(errors)
    return result


def _columns(heading: list[str], kind: Kind, mode: Mode, errors: list[RowError]) -> dict[str, int]:
    """Which column holds which field; problems with the heading row go to ``errors``."""
    aliases = {_norm_heading(a): name for name, names in _HEADINGS[kind].items() for a in names}
    columns: dict[str, int] = {}
    for i, text in enumerate(heading):
        name = aliases.get(_norm_heading(text))
        if name is None:
            if text.strip():
                log.info("csv_column_ignored", heading=text, kind=kind)
            continue
        if name in columns:
            errors.append(RowError(1, name, f"column given twice ({text!r})"))
        columns[name] = i
    needed = (_KEY[kind],) if mode == "delete" else _REQUIRED[kind]
    for name in needed:
        if name not in columns:
            wanted = " / ".join(_HEADINGS[kind][name][:3])
            errors.append(RowError(1, name, f"missing column (heading {wanted})"))
    return columns


def _record(
    kind: str,
    mode: str,
    c: dict[str, str],
    row: int,
    tz: tzinfo,
    errors: list[RowError],
    photo: Photo | None = None,
) -> Any:
    def get(name: str, parse: Any, default: Any = None, required: bool = False) -> Any:
        text = c.get(name, "")
        if not text:
            if required:
                errors.append(RowError(row, name, "empty"))
            return default
        try:
            return parse(text)
        except ValueError as exc:
            errors.append(RowError(row, name, str(exc)))
            return default

    def photos(*kinds: str) -> dict[str, str]:
        got = {k: get(k, photo or _digest_only) for k in kinds}
        return {k: v for k, v in got.items() if v}

    if kind == "nrmm":
        key = get("registry_no", _limited(64, upper=True), required=True)
        if mode == "delete":
            return key
        machine = Nrmm(
            registry_no=key or "",
            machine_type=c.get("machine_type", ""),
            emission_stage=get("emission_stage", parse_machine_stage),
            owner=c.get("owner", ""),
            env_code=get("env_code", _limited(ENV_CODE_MAX, upper=True), ""),
            made_on=get("made_on", _date_only, ""),
            fuel=get("fuel", parse_fuel, "diesel"),
            plate=get("plate", _machine_plate, ""),
            rfid_tags=get("rfid_tags", _tag_list, ()),
            documents=photos("nameplate"),
            valid_until=get("valid_until", lambda t: _parse_time(t, tz, True)),
            source=c.get("source", ""),
        )
        return None if errors else machine

    plate = get("plate", check_plate, required=True)
    if mode == "delete":
        return None if errors else plate
    if kind == "blacklist":
        reason = get("reason", str, required=True)
        if reason is not None and len(reason) < 4:
            errors.append(RowError(row, "reason", f"too vague ({reason!r}): say why"))
        start = get("valid_from", lambda t: _parse_time(t, tz, False))
        end = get("valid_until", lambda t: _parse_time(t, tz, True))
        if start and end and end <= start:
            errors.append(RowError(row, "valid_until", "must be after valid_from"))
        if errors:
            return None
        return BlacklistEntry(plate, reason, c.get("source", ""), start, end)

    fuel = get("fuel", parse_fuel, required=True)
    vehicle = Vehicle(
        plate=plate or "",
        plate_colour=get("plate_colour", parse_colour, "yellow"),
        vin=get("vin", _vin, ""),
        registered_on=get("registered_on", _date_only, ""),
        brand_model=c.get("brand_model", ""),
        vehicle_type=c.get("vehicle_type", ""),
        vehicle_class=c.get("vehicle_class", "") or "heavy_truck",
        fuel=fuel or "diesel",
        emission_stage=get("emission_stage", parse_stage),
        hazardous=get("hazardous", _bool, False),
        fleet=get("fleet", _limited(FLEET_MAX), ""),
        engine_no=get("engine_no", _limited(ENGINE_NO_MAX, upper=True), ""),
        cargo=get("cargo", _limited(CARGO_MAX), ""),
        category="in_plant" if kind == "plant_vehicles" else "transport",
        rfid_tags=get("rfid_tags", _tag_list, ()),
        documents=photos("env_list", "licence"),
        valid_until=get("valid_until", lambda t: _parse_time(t, tz, True)),
        source=c.get("source", ""),
    )
    return None if errors else vehicle


def _limited(most: int, upper: bool = False) -> Callable[[str], str]:
    """A text cell of at most ``most`` characters (the national table's width)."""

    def parse(text: str) -> str:
        text = text.strip()
        if len(text) > most:
            raise ValueError(f"at most {most} characters, found {len(text)}")
        return text.upper() if upper else text

    return parse


def _tag_list(text: str) -> tuple[str, ...]:
    return tuple(x.upper() for x in _SPLIT.split(text) if x)


def _machine_plate(text: str) -> str:
    plate = normalize_plate(text)
    if not 5 <= len(plate) <= 10:
        raise ValueError(f"expected a plate of 5-10 characters, found {text!r}")
    return plate


def _digest_only(text: str) -> str:
    """Without a photo store (parsing alone, MQTT) a photo cell must name a stored one."""
    digest = text.strip().lower()
    if not is_sha256(digest):
        raise ValueError(
            f"expected the SHA-256 of a stored photo, found {text!r}; photo files are"
            " copied by `edged registry import` and `edged registry photo`"
        )
    return digest


def _vin(text: str) -> str:
    vin = text.strip().upper()
    if not re.fullmatch(r"[A-HJ-NPR-Z0-9]{17}", vin):
        raise ValueError(f"expected 17 characters without I, O, Q, found {text!r}")
    return vin


@dataclass(frozen=True)
class ImportReport:
    kind: Kind
    mode: Mode
    applied: int
    errors: tuple[RowError, ...]
    encoding: str
    error_count: int = 0  # all problems found; ``errors`` holds the first MAX_ERRORS
    photos: int = 0  # photo files new to the document store

    @property
    def ok(self) -> bool:
        return not self.errors


DEFAULT_MAX_ROWS = 2_000_000
"""Rows one import may hold unless told otherwise (``--max-rows``, ``[registry]``)."""
MAX_ERRORS = 1000
"""Problems listed per import; the rest are counted (a wrong file has one per row)."""
_BATCH = 1000
_CHUNK = 1 << 20


class ImportRefused(Exception):
    """The file has problems: raised inside the registry transaction, so nothing is kept."""


def detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) if the whole file decodes as UTF-8, else GBK (GB18030)."""
    return scan(path)[0]


def scan(path: Path) -> tuple[str, str]:
    """The file's encoding and SHA-256, in one pass.

    Reads in 1 MB chunks through an incremental decoder: a 100 MB file is never
    held whole, and a file that turns GBK in its last row is still caught. The
    digest names the file in the audit of a big import.
    """
    digest = hashlib.sha256()
    enc = "utf-8"
    with path.open("rb") as fh:
        dec = codecs.getincrementaldecoder("utf-8")()
        first = True
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            if first and chunk.startswith(b"\xef\xbb\xbf"):
                enc = "utf-8-sig"
            first = False
            if enc == "utf-8":
                try:
                    dec.decode(chunk)
                except UnicodeDecodeError:
                    enc = "gb18030"
        if enc == "utf-8":
            try:
                dec.decode(b"", final=True)
            except UnicodeDecodeError:
                enc = "gb18030"
    return enc, digest.hexdigest()


def import_csv(
    registry: Registry,
    path: str | Path,
    kind: Kind,
    mode: Mode,
    actor: str = "system",
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> ImportReport:
    """Stream the file into the registry in one transaction; a file with any error, or
    more than ``max_rows`` rows, changes nothing.

    Memory stays bounded whatever the file's size: rows are parsed and written a
    batch at a time, and duplicate keys are found through a temporary SQLite
    table instead of a dictionary of every key. Photo columns name files relative
    to the CSV's folder; they are copied into the registry's document store, and
    removed again if the import is refused.
    """
    path = Path(path)
    errors: list[RowError] = []
    counted = [0]  # problems found, listed or not
    enc = ""
    added: list[str] = []  # photos this import put in the store

    def problem(e: RowError) -> None:
        counted[0] += 1
        if len(errors) < MAX_ERRORS:
            errors.append(e)

    def photo(cell: str) -> str:
        src = Path(cell.strip())
        try:
            digest, new = registry.documents.store(src if src.is_absolute() else path.parent / src)
        except DocumentRefused as exc:
            raise ValueError(str(exc)) from None
        if new:
            added.append(digest)
        return digest

    try:
        enc, digest = scan(path)
        batches = _stream(path, enc, kind, mode, problem, counted, max_rows, photo)
        n = registry.apply_stream(kind, mode, batches, actor=actor, source=path.name, digest=digest)
    except ImportRefused:
        n = 0
    except UnicodeDecodeError as exc:
        problem(RowError(0, "file", f"neither UTF-8 nor GBK text ({exc.reason})"))
        n = 0
    except csv.Error as exc:  # NUL bytes, a binary file renamed .csv
        problem(RowError(0, "file", f"not a CSV file ({exc})"))
        n = 0
    encoding = {"utf-8-sig": "utf-8-sig", "utf-8": "utf-8", "gb18030": "gbk"}.get(enc, enc)
    if counted[0]:
        for d in added:
            registry.documents.remove(d)
        log.warning(
            "csv_import_refused",
            file=str(path),
            kind=kind,
            mode=mode,
            errors=counted[0],
            first=str(errors[0]),
            hint="fix the rows listed and import again; nothing was changed",
        )
        return ImportReport(kind, mode, 0, tuple(errors), encoding, counted[0])
    log.info("csv_imported", file=str(path), kind=kind, mode=mode, rows=n, encoding=encoding)
    return ImportReport(kind, mode, n, (), encoding, photos=len(added))


def _stream(
    path: Path,
    enc: str,
    kind: Kind,
    mode: Mode,
    problem: Any,
    counted: list[int],
    max_rows: int,
    photo: Photo | None = None,
) -> Iterator[list[Any]]:
    """Batches of parsed records; raises ImportRefused at the end if anything was wrong.

    Runs inside the registry's transaction (``apply_stream``), so raising undoes
    every batch already written. Keys seen go to a private temporary SQLite
    database (on disk, a small page cache) to find a key given twice.
    """
    seen = sqlite3.connect("")
    seen.execute("CREATE TABLE k (key TEXT PRIMARY KEY, row INTEGER NOT NULL)")

    def duplicates(keys: list[tuple[str, int]]) -> None:
        before = seen.total_changes
        seen.executemany("INSERT OR IGNORE INTO k(key, row) VALUES (?, ?)", keys)
        if seen.total_changes - before == len(keys):
            return
        for key, number in keys:  # rare: find which ones
            (first,) = seen.execute("SELECT row FROM k WHERE key = ?", (key,)).fetchone()
            if first != number:
                problem(RowError(number, _KEY[kind], f"{key} already on row {first}"))

    try:
        yield from _batches(path, enc, kind, mode, problem, max_rows, duplicates, photo)
    finally:
        seen.close()
    if counted[0]:
        raise ImportRefused


def _batches(
    path: Path,
    enc: str,
    kind: Kind,
    mode: Mode,
    problem: Any,
    max_rows: int,
    duplicates: Any,
    photo: Photo | None,
) -> Iterator[list[Any]]:
    with path.open("r", encoding=enc, newline="") as fh:
        reader = csv.reader(fh)
        heading = next(reader, None)
        if heading is None or not any(c.strip() for c in heading):
            problem(RowError(1, "heading", "file is empty or has no heading row"))
            raise ImportRefused
        head_errors: list[RowError] = []
        columns = _columns(heading, kind, mode, head_errors)
        for e in head_errors:
            problem(e)
        if head_errors:
            raise ImportRefused
        tz = sitetime.now().tzinfo
        assert tz is not None
        batch: list[Any] = []
        keys: list[tuple[str, int]] = []
        rows = 0
        for number, row in enumerate(reader, start=2):
            if not any(c.strip() for c in row):
                continue
            rows += 1
            if rows > max_rows:
                problem(
                    RowError(
                        number,
                        "file",
                        f"more than {max_rows} rows (the import row cap); split the file or"
                        " raise --max-rows",
                    )
                )
                raise ImportRefused
            cells = {name: (row[i].strip() if i < len(row) else "") for name, i in columns.items()}
            row_errors: list[RowError] = []
            record = _record(kind, mode, cells, number, tz, row_errors, photo)
            for e in row_errors:
                problem(e)
            if record is None:
                continue
            keys.append(
                (record if isinstance(record, str) else getattr(record, _KEY[kind]), number)
            )
            batch.append(record)
            if len(batch) >= _BATCH:
                duplicates(keys)
                yield batch
                batch, keys = [], []
        if batch:
            duplicates(keys)
            yield batch


def parse_items(
    kind: Kind, mode: Mode, items: list[Any], tz: tzinfo
) -> tuple[list[Any], list[RowError]]:
    """Records from JSON objects (MQTT commands) with the same checks as a CSV row.

    Keys may be any heading the CSV import accepts (``plate_color`` or
    ``车牌颜色``); item N is reported as "row N" counting from 1. A key that
    is no heading is an error, not skipped: a signed command whose field the
    gate would drop must be refused, never half applied.
    """
    aliases = {_norm_heading(a): name for name, names in _HEADINGS[kind].items() for a in names}
    records: list[Any] = []
    errors: list[RowError] = []
    for number, item in enumerate(items, start=1):
        if isinstance(item, str):
            item = {_KEY[kind]: item}
        if not isinstance(item, dict):
            errors.append(RowError(number, "-", "expected an object"))
            continue
        cells: dict[str, str] = {}
        for key, value in item.items():
            name = aliases.get(_norm_heading(str(key)))
            if name is None:
                errors.append(RowError(number, str(key)[:64], "unknown field"))
                continue
            if isinstance(value, list):
                value = ";".join(str(v) for v in value)
            elif isinstance(value, bool):
                value = "1" if value else "0"
            cells[name] = "" if value is None else str(value).strip()
        record = _record(kind, mode, cells, number, tz, errors)
        if record is not None:
            records.append(record)
    return records, errors
