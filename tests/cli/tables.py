"""Reading aligned tables back in tests: where each cell starts, in display columns."""

from __future__ import annotations

from edged.cli.table import display_width


def column_starts(line: str) -> list[int]:
    """Display columns where each cell begins (cells are separated by two or more spaces)."""
    starts, col, spaces = [0], 0, 0
    for ch in line:
        if ch == " ":
            spaces += 1
        else:
            if spaces >= 2 and col > 0:
                starts.append(col)
            spaces = 0
        col += display_width(ch)
    return starts


def aligned(lines: list[str]) -> bool:
    """Every cell of every row starts where a heading starts, however wide its characters."""
    columns = set(column_starts(lines[0]))
    return len(columns) >= 4 and all(set(column_starts(line)) <= columns for line in lines[1:])
