"""Evidence for the ledger: best frame and plate crop as JPEG, each with its SHA-256."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edged.lpr.pipeline import PlateRead


@dataclass(frozen=True)
class Snapshot:
    path: Path
    sha256: str
    kind: str  # "frame" or "plate"


def _write_jpeg(path: Path, image: np.ndarray, quality: int) -> str:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"could not encode {image.shape} image as JPEG")
    data = buf.tobytes()
    tmp = path.with_suffix(".jpg.part")
    with tmp.open("wb") as fh:  # write, fsync, rename: no half-written evidence after a power cut
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    return hashlib.sha256(data).hexdigest()


def save_snapshots(
    directory: str | Path,
    frame: np.ndarray,
    read: PlateRead | None,
    stem: str = "passage",
    quality: int = 85,
) -> list[Snapshot]:
    """Write ``<stem>_frame.jpg`` and, when there is a read with a crop, ``<stem>_plate.jpg``."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    out = [Snapshot(folder / f"{stem}_frame.jpg", "", "frame")]
    out[0] = Snapshot(out[0].path, _write_jpeg(out[0].path, frame, quality), "frame")
    if read is not None and read.crop is not None and read.crop.size:
        path = folder / f"{stem}_plate.jpg"
        out.append(Snapshot(path, _write_jpeg(path, read.crop, 95), "plate"))
    return out
