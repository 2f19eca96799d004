"""Perspective rectification of a plate from its 4 corners, and row splitting.

The detector's corners sit tight on the plate's edge; a small margin keeps
the outer characters whole when the corners are a few pixels off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

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


class Views(Sequence[tuple[np.ndarray, bool]]):
    """A plate's views as (crop, double-row) pairs, each warped when first read.

    Most plates read beyond doubt from their first view; their other two
    views would be warped for nothing. ``double`` says a view's layout
    without warping it.
    """

    def __init__(
        self,
        image: np.ndarray | None,
        shapes: list[tuple[np.ndarray | None, int, int, bool]],
        crops: list[np.ndarray] | None = None,
    ) -> None:
        #: per view: corners in ``image``, width, height, double-row
        self._image = image
        self._shapes = shapes
        self._crops: list[np.ndarray | None] = list(crops) if crops else [None] * len(shapes)

    @classmethod
    def ready(cls, pairs: list[tuple[np.ndarray, bool]]) -> Views:
        """Views whose crops are already made."""
        return cls(None, [(None, 0, 0, d) for _, d in pairs], [crop for crop, _ in pairs])

    def __len__(self) -> int:
        return len(self._shapes)

    @overload
    def __getitem__(self, k: int) -> tuple[np.ndarray, bool]: ...
    @overload
    def __getitem__(self, k: slice) -> list[tuple[np.ndarray, bool]]: ...
    def __getitem__(
        self, k: int | slice
    ) -> tuple[np.ndarray, bool] | list[tuple[np.ndarray, bool]]:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        crop = self._crops[k]
        corners, width, height, double = self._shapes[k]
        if crop is None:
            assert self._image is not None and corners is not None
            crop = self._crops[k] = warp(self._image, corners, width, height)
        return crop, double

    def add(self, corners: np.ndarray, width: int, height: int, double: bool) -> None:
        """One more view, warped when first read."""
        self._shapes.append((corners, width, height, double))
        self._crops.append(None)

    def double(self, k: int) -> bool:
        return self._shapes[k][3]

    @property
    def made(self) -> int:
        """How many views have been warped (or were given ready)."""
        return sum(crop is not None for crop in self._crops)
