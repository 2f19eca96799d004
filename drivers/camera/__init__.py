"""Camera sources (frame sources): one small interface, one module per kind.

A lane's ``[camera]`` picks its source by ``type``; every source module
registers itself (:func:`drivers.config.driver`) with its config class, so
the daemon, the probes and the example config know it without a list to
keep. The gate must never hang on a camera: :class:`ResilientSource` reads
in a worker thread with a timeout, reconnects with backoff and reports
``ok`` / ``lost`` so the lane falls back to RFID or the guard.

Family contract: ``build(config)`` returns an unopened :class:`FrameSource`,
or None for ``type = "none"`` (a lane without a camera).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np

from drivers.config import DeviceConfig, doc

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp"}
VIDEO_EXT = {".mp4", ".avi", ".mkv", ".mov"}


class CameraError(RuntimeError):
    """The source cannot be opened; the message says what to check."""


class FrameSource(Protocol):
    """What a lane needs of a camera: open, one frame at a time, close."""

    name: str

    def open(self) -> None: ...
    def read(self) -> np.ndarray | None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class CameraConfig(DeviceConfig):
    """Keys every camera type has; each type adds its own."""

    family: ClassVar[str] = "camera"

    type: str = field(
        default="opencv",
        metadata=doc("Frame source; the keys below depend on it", was="source"),
    )
    fps: float = field(default=10.0, metadata=doc("Frames per second to read", above=0, max=60))
    read_timeout_s: float = field(
        default=2.0,
        metadata=doc(
            "A frame not delivered within this time counts as the camera lost",
            above=0,
            was="read_timeout_seconds",
        ),
    )
    reconnect_max_s: float = field(
        default=30.0,
        metadata=doc(
            "Longest wait between reconnect attempts while the camera is lost",
            above=0,
            was="reconnect_max_seconds",
        ),
    )
