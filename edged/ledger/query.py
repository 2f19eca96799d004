"""Look rows up for a guard or an inspector: filters in, table / CSV / JSON Lines out."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import datetime, tzinfo
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edged.cli import table
from edged.ledger.store import StoredPassage
from edged.sheets.table import safe_text

__all__ = ["COLUMNS", "FORMATS", "parse_time", "safe_text", "write_csv", "zone"]

COLUMNS = (
    "seq",
    "time",
    "gate",
    "lane",
    "direction",
    "plate",
    "plate_colour",
    "vehicle_type",
    "fuel",
    "emission_stage",
    "decision",
    "reason_code",
    "reason_zh",
    "id_source",
    "rfid_tag",
    "weight_kg",
    "net_t",
    "cargo",
    "alert_level",
    "flags",
    "correction_of",
)
TABLE_COLUMNS = (
    "seq",
    "time",
    "lane",
    "direction",
    "plate",
    "fuel",
    "emission_stage",
    "decision",
    "reason_zh",
    "id_source",
    "weight_kg",
)


def zone(name: str) -> tzinfo:
    """The site's zone; falls back to China time where tzdata is missing (the usual case on a bare
    board).
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        from datetime import timedelta, timezone

        return timezone(timedelta(hours=8), "CST")


def parse_time(text: str, tz: tzinfo) -> float:
    """``2024-05-01``, ``2024-05-01 08:00`` or full ISO; times without offset are site-local."""
    try:
        dt = datetime.fromisoformat(text.strip().replace(" ", "T"))
    except ValueError:
        raise ValueError(f"time: expected YYYY-MM-DD[ HH:MM[:SS]], found {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.timestamp()


def row_dict(p: StoredPassage) -> dict[str, Any]:
    f = p.record.to_fields()
    out = {"seq": p.seq}
    for c in COLUMNS[1:]:
        v = f.get(c)
        out[c] = ",".join(v) if isinstance(v, list) else v
    return out


def write_table(rows: Iterable[StoredPassage], out: TextIO, limit_width: int = 30) -> int:
    """Aligned columns (Chinese counts double width); buffers rows, so keep it for screen-sized
    results.
    """
    data = [[row_dict(p)[c] for c in TABLE_COLUMNS] for p in rows]
    for line in table.render(TABLE_COLUMNS, data, max_width=limit_width):
        out.write(line + "\n")
    return len(data)


def write_csv(rows: Iterable[StoredPassage], out: TextIO) -> int:
    w = csv.writer(out)
    w.writerow(COLUMNS)
    n = 0
    for p in rows:
        d = row_dict(p)
        w.writerow(["" if d[c] is None else safe_text(str(d[c])) for c in COLUMNS])
        n += 1
    return n


def write_jsonl(rows: Iterable[StoredPassage], out: TextIO) -> int:
    """One JSON object per line: the full record plus seq and hash, streamable."""
    n = 0
    for p in rows:
        obj = {"seq": p.seq, "hash": p.hash, "prev_hash": p.prev_hash, **p.record.to_fields()}
        out.write(json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n")
        n += 1
    return n


FORMATS = {"table": write_table, "csv": write_csv, "json": write_jsonl}
