"""``type = "mock"``: frames handed in by the program itself (``edged demo``, tests).

Like gpiozero's MockFactory pins, this is a real source on the real path:
the lane reads it through :class:`ResilientSource` and its frame thread
exactly as it reads a camera; only where the picture comes from differs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from drivers.camera import CameraConfig
from drivers.config import doc, driver


@dataclass(frozen=True)
class MockCameraConfig(CameraConfig):
    type: str = field(
        default="mock", metadata=doc("Frame source; the keys below depend on it", was="source")
    )
    width: int = field(default=1280, metadata=doc("Width of the empty-lane frame", min=1))
    height: int = field(default=720, metadata=doc("Height of the empty-lane frame", min=1))


class MockSource:
    """Shows the last frame given to :meth:`show`, or a grey empty lane."""

    def __init__(self, size: tuple[int, int] = (1280, 720), name: str = "mock-camera") -> None:
        self.size = size
        self.name = name
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._empty = np.full((size[1], size[0], 3), 90, np.uint8)

    def show(self, frame: np.ndarray | None) -> None:
        """What the camera sees from now on; None: the empty lane."""
        with self._lock:
            self._frame = frame

    def open(self) -> None:
        return None

    def read(self) -> np.ndarray:
        with self._lock:
            return self._frame if self._frame is not None else self._empty

    def close(self) -> None:
        return None


@driver("camera", "mock", MockCameraConfig, "frames handed in by the program (demo, tests)")
def _build(cfg: MockCameraConfig) -> MockSource:
    return MockSource((cfg.width, cfg.height))
