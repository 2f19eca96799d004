"""Perspective rectification of a plate from its 4 corners, and row splitting.

The detector's corners sit tight on the plate's edge; a small margin keeps
the outer characters whole when the corners are a few pixels off.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Width/height below which a plate is taken as double-row (440x220 mm vs 440x140 mm).
DOUBLE_ROW_ASPECT = 2.4


def plate_aspect(corners: np.ndarray) -> float:
    tl, tr, br, bl = corners.astype(np.float64)
    width = (np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2
    height = (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2
    return float(width / max(height, 1e-6))


def expand(corners: np.ndarray, mx: float, my: float) -> np.ndarray:
    """Grow the quad by fractions ``mx`` of its width and ``my`` of its height."""
    tl, tr, br, bl = corners.astype(np.float32)
    right = ((tr - tl) + (br - bl)) / 2
    down = ((bl - tl) + (br - tr)) / 2
    dx, dy = right * mx, down * my
    return np.array([tl - dx - dy, tr + dx - dy, br + dx + dy, bl - dx + dy], dtype=np.float32)


def warp(image: np.ndarray, corners: np.ndarray, width: int, height: int) -> np.ndarray:
    dst = np.array(
        [[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=np.float32
    )
    m = cv2.getPerspectiveTransform(corners.astype(np.float32), dst)
    return cv2.warpPerspective(
        image, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def split_rows(crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top row (province + letter, centred) and bottom row of a double-row plate crop."""
    h, w = crop.shape[:2]
    top = crop[: int(h * 0.40), int(w * 0.22) : int(w * 0.78)]
    bottom = crop[int(h * 0.33) :, :]
    return top, bottom
