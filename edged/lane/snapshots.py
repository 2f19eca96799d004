"""A passage's snapshot and plate crop on disk, within the image budget, hashed for the row.

Images are evidence, but a row without them is still a row: when the disk
budget or free space stops images, or a write fails, the passage goes on
with no snapshots and the event log says why (once per change, through the
retention keeper, not once per passage).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from edged.ledger.record import Snapshot as LedgerSnapshot


def save_passage_images(
    ctx: Any,
    lane: str,
    frames: list[np.ndarray | None],
    vr: Any,
    passage_id: str,
    now: datetime,
) -> tuple[LedgerSnapshot, ...]:
    """Write the best frame and plate crop of the vote; their paths and SHA-256 for the row.

    A burst that read no plate keeps its first frame: the vehicle is in it, and a
    row without a plate needs its picture most.
    """
    if not frames or vr is None:
        return ()
    read = vr.best if vr.best_frame is not None else None
    frame = frames[vr.best_frame if vr.best_frame is not None else 0]
    if frame is None:
        return ()
    from edged.lpr import save_snapshots

    service = ctx.ledger_service
    retention, images_dir = service.retention, service.images_dir
    if retention is not None and not retention.images_allowed().allowed:
        return ()
    day = images_dir / now.strftime("%Y/%m/%d")
    try:
        shots = save_snapshots(day, frame, read, stem=passage_id)
    except OSError as exc:
        ctx.sink.event("images_failed", "error", "snapshot not written", lane=lane, error=str(exc))
        return ()
    out = []
    for s in shots:
        if retention is not None:
            retention.note_image_written(Path(s.path).stat().st_size)
        out.append(LedgerSnapshot(str(Path(s.path).relative_to(images_dir)), s.sha256))
    return tuple(out)


def save_pushed_images(
    ctx: Any, lane: str, push: Any, passage_id: str, now: datetime
) -> tuple[LedgerSnapshot, ...]:
    """The camera's own scene and plate JPEGs, kept as they came (not re-encoded), hashed."""
    import hashlib

    service = ctx.ledger_service
    retention, images_dir = service.retention, service.images_dir
    wanted = [(s, b) for s, b in (("frame", push.full_image), ("plate", push.plate_image)) if b]
    if not wanted or (retention is not None and not retention.images_allowed().allowed):
        return ()
    day = images_dir / now.strftime("%Y/%m/%d")
    out = []
    try:
        day.mkdir(parents=True, exist_ok=True)
        for suffix, data in wanted:
            path = day / f"{passage_id}_{suffix}.jpg"
            path.write_bytes(data)
            if retention is not None:
                retention.note_image_written(len(data))
            rel = str(path.relative_to(images_dir))
            out.append(LedgerSnapshot(rel, hashlib.sha256(data).hexdigest()))
    except OSError as exc:
        ctx.sink.event("images_failed", "error", "snapshot not written", lane=lane, error=str(exc))
        return ()
    return tuple(out)
