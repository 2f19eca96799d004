"""Reads around a trigger: which tags were really at the gate.

A UHF reader at a gate sees the truck's windscreen tag dozens of times, plus
stray tags of trucks queueing behind. The gate decision needs one line per
tag seen *around the trigger moment* (ground loop / camera), ranked by the
best RSSI, with the read count as a confidence hint. :func:`collect` is pure;
:class:`TagBuffer` just keeps the recent reads (bounded) so the daemon can
ask for a window after the trigger fired.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from drivers.rfid.base import TagRead


@dataclass(frozen=True)
class TagSighting:
    """One tag, de-duplicated over a window."""

    epc: str
    count: int
    best_rssi: float | None
    antenna: int | None
    first: float
    last: float
    tid: str | None = None
    reader: str = "rfid"


def collect(
    reads: Iterable[TagRead], trigger_time: float, before_s: float = 2.0, after_s: float = 2.0
) -> list[TagSighting]:
    """Reads within ``[trigger-before, trigger+after]``, one per EPC, strongest first."""
    lo, hi = trigger_time - before_s, trigger_time + after_s
    acc: dict[str, dict] = {}
    for r in reads:
        if not lo <= r.time <= hi:
            continue
        s = acc.get(r.epc)
        if s is None:
            acc[r.epc] = {
                "epc": r.epc,
                "count": 1,
                "best_rssi": r.rssi,
                "antenna": r.antenna,
                "first": r.time,
                "last": r.time,
                "tid": r.tid,
                "reader": r.reader,
            }
            continue
        s["count"] += 1
        s["first"] = min(s["first"], r.time)
        s["last"] = max(s["last"], r.time)
        s["tid"] = s["tid"] or r.tid
        if r.rssi is not None and (s["best_rssi"] is None or r.rssi > s["best_rssi"]):
            s["best_rssi"] = r.rssi
            s["antenna"] = r.antenna
    sightings = [TagSighting(**s) for s in acc.values()]
    sightings.sort(
        key=lambda t: (t.best_rssi if t.best_rssi is not None else float("-inf"), t.count),
        reverse=True,
    )
    return sightings


class TagBuffer:
    """Thread-safe ring of recent reads; oldest dropped past ``maxlen``."""

    def __init__(self, maxlen: int = 5000) -> None:
        self._reads: collections.deque[TagRead] = collections.deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, read: TagRead) -> None:
        """Usable directly as the reader's ``on_read`` callback."""
        with self._lock:
            self._reads.append(read)

    def window(
        self, trigger_time: float, before_s: float = 2.0, after_s: float = 2.0
    ) -> list[TagSighting]:
        with self._lock:
            reads = list(self._reads)
        return collect(reads, trigger_time, before_s, after_s)

    def __len__(self) -> int:
        return len(self._reads)
