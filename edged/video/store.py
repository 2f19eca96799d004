"""The clip folder's own budget: oldest clips out first, and how many days the disk holds.

Clips are evidence with a period the seeds set (90 days to six months), but
they must never crowd out the ledger or the snapshots: they live in their
own folder under their own budget and free-space floor, and the sweep
removes the oldest first, past ``retention_days``, over ``budget_mb`` or
under ``min_free_mb``. Each removal by budget or free space is chained in
the audit log (``clips_purged``), so a missing clip is explained. The
status says how many days of clips the budget holds at the rate of the
last week: when that is fewer than ``retention_days``, the box says so.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from edged import sitetime
from edged.ledger.verify import CLIP_PURGE_ACTION
from edged.logs import get_logger

log = get_logger("video")

MB = 1024 * 1024
RATE_DAYS = 7  # the rate is measured over the clips of the last week


class ClipFile(NamedTuple):
    path: str  # relative to the clips folder
    mtime: float
    size: int


def scan(root: Path) -> list[ClipFile]:
    out: list[ClipFile] = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.endswith(".part"):
                continue
            full = Path(dirpath) / name
            try:
                st = full.stat()
            except OSError:
                continue
            out.append(ClipFile(full.relative_to(root).as_posix(), st.st_mtime, st.st_size))
    return out


def plan(files: list[ClipFile], now: float, free_mb: float, cfg: Any) -> list[tuple[ClipFile, str]]:
    """Clips to remove, oldest first, each with why (age, budget, disk_low). Pure."""
    total = sum(f.size for f in files)
    free = free_mb * MB
    out = []
    for f in sorted(files, key=lambda f: (f.mtime, f.path)):
        if f.mtime < now - cfg.retention_days * 86400:
            why = "age"
        elif total > cfg.budget_mb * MB:
            why = "budget"
        elif free < cfg.min_free_mb * MB:
            why = "disk_low"
        else:
            break
        out.append((f, why))
        total -= f.size
        free += f.size
    return out


def days_held(files: list[ClipFile], now: float, free_mb: float, cfg: Any) -> float | None:
    """Days of clips the folder holds at the rate of the last week; None before any clip."""
    recent = [f for f in files if f.mtime >= now - RATE_DAYS * 86400]
    if not recent:
        return None
    span_days = max((now - min(f.mtime for f in recent)) / 86400, 1.0)
    per_day = sum(f.size for f in recent) / span_days
    used = sum(f.size for f in files)
    room = min(cfg.budget_mb * MB, used + max(free_mb - cfg.min_free_mb, 0) * MB)
    return round(room / per_day, 1) if per_day else None


class ClipStore:
    """Supervised part ``clips``: the folder, its sweep and its figures."""

    name = "clips"

    def __init__(self, cfg: Any, data_dir: Path, sink: Any) -> None:
        self.cfg = cfg
        root = Path(cfg.dir)
        self.root = root if root.is_absolute() else Path(data_dir) / root
        self.sink = sink
        self._lock = threading.Lock()
        self._files: list[ClipFile] = []

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._files = scan(self.root)

    def stop(self) -> None:
        return None

    def path_for(self, event_id: str, when: datetime, container: str) -> Path:
        """``clips/YYYY/MM/DD/<event_id>.<container>``, the day in the site's zone."""
        day = sitetime.local(when).strftime("%Y/%m/%d")
        return self.root / day / f"{event_id}.{container}"

    def written(self, path: Path, size: int) -> None:
        with self._lock:
            self._files.append(ClipFile(path.relative_to(self.root).as_posix(), time.time(), size))

    def sweep(self, now: float | None = None, free_mb: float | None = None) -> dict[str, int]:
        now = time.time() if now is None else now
        files = scan(self.root)
        free = shutil.disk_usage(self.root).free / MB if free_mb is None else free_mb
        counts: dict[str, int] = {}
        removed: list[tuple[str, str]] = []
        for f, why in plan(files, now, free, self.cfg):
            try:
                (self.root / f.path).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("clip_delete_failed", path=f.path, error=str(exc))
                continue
            counts[why] = counts.get(why, 0) + 1
            removed.append((f.path, why))
        gone = {p for p, _ in removed}
        with self._lock:
            self._files = [f for f in files if f.path not in gone]
        forced = [(p, w) for p, w in removed if w != "age"]
        if forced:
            self.sink.audit(
                "edged",
                CLIP_PURGE_ACTION,
                {"clips": [p for p, _ in forced], "reasons": sorted({w for _, w in forced})},
            )
            self.sink.event(
                "clips_purged", "warning", "oldest clips removed to make room", **counts
            )
        return counts

    def status(self) -> dict[str, Any]:
        with self._lock:
            files = list(self._files)
        try:
            free = shutil.disk_usage(self.root).free / MB
        except OSError:
            free = 0.0
        held = days_held(files, time.time(), free, self.cfg)
        return {
            "clips": len(files),
            "mb": round(sum(f.size for f in files) / MB, 1),
            "days_held": held,
            "retention_days": self.cfg.retention_days,
            "short": held is not None and held < self.cfg.retention_days,
        }
