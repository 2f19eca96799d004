"""What is kept, for how long, and what gives way when the disk fills.

Ledger rows are the legal record (kept at least one year, 电子台账保存不少于1年)
and are never deleted to make room: images are. When space runs short,
snapshots stop first (the barrier and the ledger keep working), an event
is raised, and the sweeper removes the oldest images until the budget and
the free-space floor hold again. Every removed image is written down so
``verify`` can tell "removed by retention" from "removed by someone".
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, NamedTuple

from edged.config.schema import doc
from edged.ledger.store import LedgerStore
from edged.logs import get_logger

log = get_logger("ledger")

MB = 1024 * 1024


@dataclass(frozen=True)
class LedgerConfig:
    """The electronic ledger (电子台账), its images, and export.

    Ledger rows are never deleted (a chained row cannot be, and the rules ask
    for one to two years): there is no row retention to set.
    """

    removed_keys: ClassVar[dict[str, str]] = {
        "retention_days": "ledger rows are never deleted; export and archive them instead"
    }

    db_path: str = field(
        default="ledger.db",
        metadata=doc(
            "Ledger database file (SQLite, WAL); a relative path is inside daemon.data_dir"
        ),
    )
    images_dir: str = field(
        default="images",
        metadata=doc(
            "Folder of snapshot images (抓拍图片), relative to daemon.data_dir unless absolute; "
            "rows store paths relative to it"
        ),
    )
    image_retention_days: int = field(
        default=183,
        metadata=doc("Days snapshot images are kept (图片保存期限, about 6 months)", min=1),
    )
    image_budget_mb: int = field(
        default=20000,
        metadata=doc("Most disk space images may use; oldest go first when over", min=1),
    )
    min_free_mb: int = field(
        default=512,
        metadata=doc(
            "Free space kept on the data partition; below "
            "it new images stop and the oldest are removed",
            min=0,
        ),
    )
    events_keep: int = field(
        default=1000,
        metadata=doc(
            "Daemon events kept (start-ups, faults, recoveries); at least 100 (事件日志)", min=100
        ),
    )
    head_publish_s: float = field(
        default=300.0,
        metadata=doc(
            "How often the chain heads (seq + hash) are published upstream (retained)",
            above=0,
            was="head_publish_seconds",
        ),
    )
    attest_s: float = field(
        default=900.0,
        metadata=doc(
            "How often the device key signs the chain heads (attestation, stored and published"
            " on ledger/attestation); also on every export",
            min=60,
            max=86400,
        ),
    )
    frequent_per_day: int = field(
        default=8,
        metadata=doc(
            "Reports flag a vehicle passing more than this many times a day (频繁进出)", min=1
        ),
    )
    export_images: bool = field(
        default=False,
        metadata=doc(
            "USB export also copies the photos of exported rows (snapshots, 随车清单, 行驶证)"
            " into photos/<seq>/"
        ),
    )
    export_report_days: int = field(
        default=31,
        metadata=doc("USB export adds daily reports for at most this many recent days", min=0),
    )
    usb_accept: Literal["marker", "label", "marker_or_label", "any"] = field(
        default="marker",
        metadata=doc(
            "Which USB sticks get the automatic export: marker (prepared with `edged export"
            " prepare-stick`), label (volume label usb_label), marker_or_label, or any; other"
            " sticks are logged and left untouched"
        ),
    )
    usb_label: str = field(
        default="EDGED",
        metadata=doc(
            "Volume label of sticks that get the automatic export (usb_accept = label or"
            " marker_or_label); FAT32 labels are at most 11 characters"
        ),
    )


class ImageFile(NamedTuple):
    path: str  # relative to images_dir, '/' separated
    mtime: float
    size: int


class Decision(NamedTuple):
    allowed: bool
    reason: str  # ok | disk_low | over_budget


def images_allowed(free_mb: float, images_mb: float, cfg: LedgerConfig) -> Decision:
    """May a new snapshot be written now? Images stop before the ledger can run out of room."""
    if free_mb < cfg.min_free_mb:
        return Decision(False, "disk_low")
    if images_mb >= cfg.image_budget_mb:
        return Decision(False, "over_budget")
    return Decision(True, "ok")


def plan_sweep(
    files: list[ImageFile], now: float, free_mb: float, cfg: LedgerConfig
) -> list[tuple[ImageFile, str]]:
    """Images to delete, oldest first, each with why: past their age, then to meet budget and free
    floor.
    """
    cutoff = now - cfg.image_retention_days * 86400
    ordered = sorted(files, key=lambda f: (f.mtime, f.path))
    plan: list[tuple[ImageFile, str]] = []
    total = sum(f.size for f in files)
    free = free_mb * MB
    for f in ordered:
        if f.mtime < cutoff:
            reason = "age"
        elif total > cfg.image_budget_mb * MB:
            reason = "budget"
        elif free < cfg.min_free_mb * MB:
            reason = "disk_low"
        else:
            break
        plan.append((f, reason))
        total -= f.size
        free += f.size
    return plan


def scan_images(images_dir: Path) -> list[ImageFile]:
    """Every regular file under the images folder; symlinks are not followed or counted."""
    out: list[ImageFile] = []
    stack = [images_dir]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError as exc:
            log.warning(
                "images_scan_failed",
                dir=str(d),
                error=str(exc),
                hint="check permissions of the images folder",
            )
            continue
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                stack.append(Path(e.path))
            elif e.is_file(follow_symlinks=False):
                st = e.stat(follow_symlinks=False)
                rel = Path(e.path).relative_to(images_dir).as_posix()
                out.append(ImageFile(rel, st.st_mtime, st.st_size))
    return out


def free_mb_of(path: Path) -> float:
    return shutil.disk_usage(path).free / MB


class RetentionKeeper:
    """Runs the sweep and keeps the "images allowed?" answer; events on every change of it."""

    def __init__(
        self,
        store: LedgerStore,
        cfg: LedgerConfig,
        event: Callable[..., None] | None = None,
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.images_dir = Path(cfg.images_dir)
        self.decision = Decision(True, "ok")
        self._images_bytes = 0
        # Events go where the box sends all of them (ledger and MQTT); alone, to the ledger.
        self._event = event or store.append_event
        self._lock = threading.Lock()  # lanes write images from their own workers

    def note_image_written(self, size: int) -> None:
        """The snapshot writer reports each file so the budget check needs no rescan."""
        with self._lock:
            self._images_bytes += size

    def images_allowed(self, free_mb: float | None = None) -> Decision:
        self.images_dir.mkdir(parents=True, exist_ok=True)
        free = free_mb_of(self.images_dir) if free_mb is None else free_mb
        return self._update(images_allowed(free, self._images_bytes / MB, self.cfg))

    def _update(self, new: Decision) -> Decision:
        with self._lock:
            changed, self.decision = new != self.decision, new
        if changed:
            if not new.allowed:
                log.error(
                    "images_stopped",
                    reason=new.reason,
                    hint="free disk space or lower image_budget_mb; ledger rows continue",
                )
                self._event(
                    "images_stopped",
                    "error",
                    f"snapshot images stopped: {new.reason}",
                    reason=new.reason,
                )
            else:
                log.info("images_resumed")
                self._event("images_resumed", "info", "snapshot images resumed")
        return new

    def sweep(self, now: float | None = None, free_mb: float | None = None) -> dict[str, int]:
        """Delete what the plan says, record it, and re-decide. Returns counts per reason."""
        now = time.time() if now is None else now
        self.images_dir.mkdir(parents=True, exist_ok=True)
        files = scan_images(self.images_dir)
        free = free_mb_of(self.images_dir) if free_mb is None else free_mb
        plan = plan_sweep(files, now, free, self.cfg)
        counts: dict[str, int] = {}
        by_reason: dict[str, list[tuple[str, str | None]]] = {}
        freed = 0
        for f, reason in plan:
            try:
                (self.images_dir / f.path).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning(
                    "image_delete_failed",
                    path=f.path,
                    error=str(exc),
                    hint="check permissions of the images folder",
                )
                continue
            freed += f.size
            counts[reason] = counts.get(reason, 0) + 1
            by_reason.setdefault(reason, []).append((f.path, None))
        for reason, items in by_reason.items():
            self.store.record_purged_images(items, reason)
        self._images_bytes = sum(f.size for f in files) - freed
        if counts.get("budget") or counts.get("disk_low"):
            self._event("images_purged", "warning", "oldest images removed to make room", **counts)
        if counts:
            log.info("images_swept", freed_mb=round(freed / MB, 1), **counts)
        self._update(images_allowed(free + freed / MB, self._images_bytes / MB, self.cfg))
        return counts
