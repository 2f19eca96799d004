"""Plain-text tables that stay aligned with Chinese text in them.

A terminal gives a CJK character (冀, 国五, 超标排放) two columns and a Latin
letter one, so padding by ``len()`` shifts every column after a Chinese cell.
Widths here count East Asian wide and fullwidth characters as two columns
(``unicodedata.east_asian_width``), combining marks as none.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: wide and fullwidth characters count two."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def pad(text: str, width: int) -> str:
    """``text`` followed by spaces up to ``width`` display columns."""
    return text + " " * max(0, width - display_width(text))


def clip(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` display columns (never half a wide character)."""
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def cell(value: Any) -> str:
    """How a value shows in a table: nothing for None, lists joined with commas."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def render(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], max_width: int | None = None
) -> list[str]:
    """Aligned lines (a header line, then one per row), two spaces between columns.

    Buffers the rows to measure them: for screen-sized results; ``max_width``
    clips long cells.
    """
    data = [[cell(v) for v in row] for row in rows]
    if max_width is not None:
        data = [[clip(v, max_width) for v in row] for row in data]
    widths = [display_width(h) for h in headers]
    for row in data:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], display_width(v))
    return [
        "  ".join(pad(v, widths[i]) for i, v in enumerate(line)).rstrip()
        for line in [list(headers), *data]
    ]
