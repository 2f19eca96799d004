"""Which vehicles are in the plant now, and the entry an exit closes.

A vehicle is in the plant from an admitted entry row until its next exit
row. The exit row then links that entry (``entry_seq``, ``entry_time``),
gives the dwell and, from the two gross weights, the load carried
(运输量: delivered in loaded or fetched out empty, the difference is the
same). The index is rebuilt from the ledger at start (the latest row of
each plate) and kept up to date by every passage the box records, so a
lookup never scans the ledger.

A machine without a plate (a loader known by its tag) is kept under its
registry code (登记编码), which is what identification names it by.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: The most plates listed in the status (the count is always complete).
LISTED = 50


def trip_key(fields: dict[str, Any]) -> str | None:
    """Whom a row's stay belongs to: its plate, else a plateless machine's registry code."""
    plate = fields.get("plate")
    if plate:
        return str(plate)
    machine = fields.get("machinery") or {}
    code = machine.get("registry_no") if isinstance(machine, dict) else None
    return str(code) if code else None


@dataclass(frozen=True)
class Entry:
    """A vehicle's open entry: when it came in, on which row, how heavy.

    ``plate``: the plate, or a plateless machine's registry code (:func:`trip_key`)."""

    plate: str
    seq: int
    time: str
    weight_kg: int | None = None
    lane: str | None = None


@dataclass(frozen=True)
class Trip:
    """What an exit closes: the entry, the dwell, the load (t, one decimal) if both were weighed."""

    entry: Entry
    dwell_s: int
    net_t: float | None


def close(entry: Entry, exit_time: str, exit_kg: int | None) -> Trip:
    """The trip an exit at ``exit_time`` weighing ``exit_kg`` makes of ``entry``. Pure."""
    dwell = datetime.fromisoformat(exit_time) - datetime.fromisoformat(entry.time)
    net = None
    if entry.weight_kg is not None and exit_kg is not None:
        net = round(abs(entry.weight_kg - exit_kg) / 1000, 1)
    return Trip(entry, max(0, int(dwell.total_seconds())), net)


class Trips:
    """The in-plant index: plate -> open entry. Thread-safe (lanes record in parallel)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, Entry] = {}

    def load(self, store: Any) -> int:
        """Rebuild from the ledger: plates whose latest row is an admitted entry."""
        rows = store.db.execute_sql(
            "SELECT p.plate, p.seq, p.fields FROM passages p JOIN"
            " (SELECT plate, max(seq) AS seq FROM passages"
            "  WHERE plate IS NOT NULL AND correction_of IS NULL GROUP BY plate) last"
            " ON p.seq = last.seq"
        ).fetchall()
        # plateless machines: their latest row by registry code (the plate index finds
        # the rows without a plate; unread passages among them are left out in SQL)
        plateless: dict[str, tuple[int, str]] = {}
        for seq, text in store.db.execute_sql(
            "SELECT seq, fields FROM passages WHERE plate IS NULL AND correction_of IS NULL"
            " AND json_extract(fields, '$.machinery.registry_no') IS NOT NULL ORDER BY seq"
        ):
            key = trip_key(json.loads(text))
            if key is not None:
                plateless[key] = (seq, text)
        opened: dict[str, Entry] = {}
        for key, seq, text in [*rows, *((k, s, t) for k, (s, t) in plateless.items())]:
            f = json.loads(text)
            if f.get("direction") == "in" and f.get("decision") == "allow":
                opened[key] = Entry(key, seq, f["time"], f.get("weight_kg"), f.get("lane"))
        with self._lock:
            self._open = opened
        return len(opened)

    def open_entry(self, plate: str | None) -> Entry | None:
        if plate is None:
            return None
        with self._lock:
            return self._open.get(plate)

    def note(self, seq: int, fields: dict[str, Any]) -> bool:
        """A row was recorded: an admitted entry opens a stay, an exit ends it.

        Returns whether the vehicles in the plant changed.
        """
        plate = trip_key(fields)
        if plate is None or fields.get("correction_of") is not None:
            return False
        with self._lock:
            if fields.get("direction") == "in" and fields.get("decision") == "allow":
                self._open[plate] = Entry(
                    plate, seq, fields["time"], fields.get("weight_kg"), fields.get("lane")
                )
                return True
            if fields.get("direction") == "out":
                entry = self._open.get(plate)
                if entry is None or _before(fields["time"], entry.time):
                    return False  # a late row of an earlier exit: the stay it ends is over
                del self._open[plate]
                return True
        return False

    def status(self) -> dict[str, Any]:
        """Vehicles in the plant now, the longest there first."""
        with self._lock:
            entries = sorted(self._open.values(), key=lambda e: e.time)
        return {
            "count": len(entries),
            "vehicles": [
                {"plate": e.plate, "since": e.time, "entry_seq": e.seq, "lane": e.lane}
                for e in entries[:LISTED]
            ],
        }


def _before(a: str, b: str) -> bool:
    """Whether ISO time ``a`` is before ``b`` (offsets taken into account)."""
    return datetime.fromisoformat(a) < datetime.fromisoformat(b)
