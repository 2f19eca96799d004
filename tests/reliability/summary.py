"""The reliability suite's tally: one row per scenario, printed after the run.

Each scenario records what it injected and what it counted, and asserts
``lost == 0`` itself; the table is for the person reading the CI log, so the
figures behind a green run are visible, not only the fact that it passed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Row:
    scenario: str
    faults: int = 0
    passages: int = 0
    rows: int = 0
    delivered: int = 0
    lost: int = 0
    seconds: float = 0.0
    note: str = ""


ROWS: list[Row] = []  # recorded in this process by the test now running
REPORTED: list[Row] = []  # gathered from every test's report (conftest.py)


def record(
    scenario: str,
    *,
    faults: int,
    passages: int = 0,
    rows: int = 0,
    delivered: int = 0,
    lost: int = 0,
    seconds: float = 0.0,
    note: str = "",
) -> Row:
    """Add a scenario's figures to the table printed at the end of the run."""
    row = Row(scenario, faults, passages, rows, delivered, lost, round(seconds, 1), note)
    ROWS.append(row)
    return row


def table(rows: list[Row] | None = None) -> list[str]:
    """The rows as an aligned text table with a totals line (default: ``ROWS``)."""
    rows = ROWS if rows is None else rows
    head = ("scenario", "faults", "passages", "rows", "delivered", "lost", "s", "note")
    body = [
        (
            r.scenario,
            str(r.faults),
            str(r.passages),
            str(r.rows),
            str(r.delivered),
            str(r.lost),
            f"{r.seconds:.1f}",
            r.note,
        )
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in body]
    total_lost = sum(r.lost for r in rows)
    lines.append(f"total faults injected {sum(r.faults for r in rows)}, lost {total_lost}")
    return lines
