"""The table model shared by the XLSX and CSV writers, and spreadsheet-safe text.

A column says what its cells are (``text``, ``int``, ``num1``, ``num``,
``pct``, ``datetime``, ``date``) so a writer can make real cells of them:
dates that sort as dates, shares that are numbers shown as percentages.
Rows are plain Python values in column order; ``None`` is an empty cell.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

FORMATS = ("xlsx", "csv")
KINDS = ("text", "int", "num1", "num", "pct", "datetime", "date")

#: Starts a spreadsheet reads as a formula (= + - @) or that hide one behind white
#: space (tab, carriage return): such text gets a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Characters XML 1.0 cannot hold (an XLSX with one needs repairing in Excel).
ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
MAX_CELL = 32767  # Excel's limit on the characters of one cell


def safe_text(value: str) -> str:
    """Text a spreadsheet shows as text: a plate, cargo or reason that starts like a formula
    (``=``, ``+``, ``-``, ``@``, tab, carriage return) is never run as one."""
    if value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def clean_text(value: str) -> str:
    """``safe_text`` without XML-illegal control characters, cut to Excel's cell limit."""
    return safe_text(ILLEGAL.sub("", value))[:MAX_CELL]


def display_width(text: str) -> int:
    """Columns a text takes on screen: CJK and full-width characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


@dataclass(frozen=True)
class Column:
    heading: str
    kind: str = "text"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {', '.join(KINDS)}, found {self.kind!r}")


def columns(*specs: str | tuple[str, str]) -> tuple[Column, ...]:
    """``columns("车牌号码", ("时间", "datetime"))``: text unless a kind is given."""
    return tuple(Column(s) if isinstance(s, str) else Column(*s) for s in specs)


@dataclass
class Table:
    """One sheet (XLSX) or one ``[section]`` (CSV)."""

    name: str  # sheet name: at most 31 characters, none of []:*?/\
    title: str  # the line above the header: plant, gate, period
    columns: Sequence[Column]
    rows: Iterable[Sequence[Any]] = field(default_factory=list)


def text_of(value: Any, kind: str) -> str:
    """A value as CSV text: dates ISO-like in site time, shares as percentages."""
    if value is None:
        return ""
    if kind == "pct" and isinstance(value, int | float):
        return f"{100.0 * value:.1f}%"
    if kind == "num1" and isinstance(value, int | float):
        return f"{value:.1f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return safe_text(value)
    return str(value)


def format_for(path: Path, given: str | None) -> str:
    """The format from ``--format`` or the file's extension; they must agree."""
    ext = path.suffix.lower().lstrip(".")
    if given is not None:
        if given not in FORMATS:
            raise ValueError(f"--format: expected xlsx or csv, found {given!r}")
        if ext in FORMATS and ext != given:
            raise ValueError(
                f"--out {path.name} ends in .{ext} but --format is {given}: name the file"
                f" .{given} or drop --format"
            )
        return given
    if ext not in FORMATS:
        raise ValueError(f"--out {path.name}: name it .xlsx or .csv, or give --format xlsx|csv")
    return ext
