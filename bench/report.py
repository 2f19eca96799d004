"""Headline figures of a benchmark, one machine-readable line each.

Every bench prints its own readable lines; for the summary table of
``bench/run_all.py`` it also calls :func:`emit` for the figures that matter,
which prints ``FIGURE {json}``. run_all reads only those lines, so a bench
can change its readable output freely.

    from bench.report import emit
    emit("decision p99", 312.5, "us", target="<= 1000")
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable

MARK = "FIGURE "
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}


def meets(value: float, target: str) -> bool | None:
    """Whether ``value`` meets a target written like ``<= 10``; None if it cannot say."""
    parts = target.split()
    if len(parts) != 2 or parts[0] not in _OPS:
        return None
    try:
        limit = float(parts[1].replace(",", ""))
    except ValueError:
        return None
    if not math.isfinite(value):
        return False
    return _OPS[parts[0]](value, limit)


def figure(
    name: str,
    value: float,
    unit: str,
    target: str | None = None,
    ok: bool | None = None,
) -> dict[str, object]:
    """The record :func:`emit` prints: ``ok`` comes from ``target`` unless given."""
    if ok is None and target:
        ok = meets(float(value), target)
    return {"name": name, "value": float(value), "unit": unit, "target": target, "ok": ok}


def emit(
    name: str,
    value: float,
    unit: str,
    target: str | None = None,
    ok: bool | None = None,
) -> None:
    """Print one headline figure for run_all; ``target`` like ``<= 10`` or ``>= 2000``."""
    print(MARK + json.dumps(figure(name, value, unit, target, ok), ensure_ascii=False), flush=True)


def parse_line(line: str) -> dict[str, object] | None:
    """The figure on a ``FIGURE {json}`` line, or None for any other line."""
    line = line.strip()
    if not line.startswith(MARK):
        return None
    try:
        data = json.loads(line[len(MARK) :])
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or "name" not in data or "value" not in data:
        return None
    try:
        value = float(data["value"])
    except (TypeError, ValueError):
        return None
    target = data.get("target") or None
    ok = data.get("ok")
    return {
        "name": str(data["name"]),
        "value": value,
        "unit": str(data.get("unit", "")),
        "target": str(target) if target is not None else None,
        "ok": ok if isinstance(ok, bool) else None,
    }
