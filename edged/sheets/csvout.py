"""Tables as CSV: UTF-8 with a BOM (Excel and WPS then read the Chinese), safe text.

One table is a plain CSV (title line, header, rows); several go one after the
other, each under a ``[name]`` line, so a report is still one file.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from edged.sheets.table import Table, text_of


def write_tables(tables: Sequence[Table], out: TextIO, sections: bool = True) -> int:
    """Write ``tables`` to ``out``; returns the number of data rows written."""
    w = csv.writer(out, lineterminator="\r\n")
    n = 0
    for i, table in enumerate(tables):
        if sections:
            if i:
                w.writerow([])
            w.writerow([f"[{table.name}]"])
        if table.title:
            w.writerow([text_of(table.title, "text")])
        kinds = [c.kind for c in table.columns]
        w.writerow([c.heading for c in table.columns])
        for row in table.rows:
            w.writerow([text_of(v, k) for v, k in zip(row, kinds, strict=False)])
            n += 1
    return n


def write_csv_file(tables: Sequence[Table], path: Path, sections: bool = True) -> int:
    """Write to ``path`` under a temporary name, fsync, rename: a pulled stick or a crash
    never leaves a half file under the real name."""
    tmp = path.with_name(f".{path.name}.partial")
    with tmp.open("w", encoding="utf-8-sig", newline="") as fh:
        n = write_tables(tables, fh, sections)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    return n


def write_csv_to(tables: Sequence[Table], out: Any, sections: bool = True) -> int:
    """To an open text stream that already carries the BOM (an export's hashed file)."""
    return write_tables(tables, out, sections)
