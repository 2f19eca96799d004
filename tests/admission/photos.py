"""Real picture files for the document-photo tests (encoded by OpenCV, as a phone's are)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def picture(path: Path, seed: int = 0, ext: str = ".jpg") -> Path:
    """A small photo-like picture; a different seed gives a different file."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    ok, data = cv2.imencode(ext, img)
    assert ok
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.tobytes())
    return path
