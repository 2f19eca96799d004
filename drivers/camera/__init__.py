"""Camera sources (frame sources): one small interface, one module per kind.

A lane's ``[camera]`` picks its source by ``type``; every source module
registers itself (:func:`drivers.config.driver`) with its config class, so
the daemon, the probes and the example config know it without a list to
keep. The gate must never hang on a camera: :class:`ResilientSource` reads
in a worker thread with a timeout, reconnects with backoff and reports
``ok`` / ``lost`` so the lane falls back to RFID or the guard.

Family contract: ``build(config)`` returns an unopened :class:`FrameSource`,
or None for ``type = "none"`` (a lane without a camera). A source that can
take a frame without turning it into a picture also has ``grab()`` and
``retrieve()`` (:class:`GrabSource`): the frame thread then takes every
frame the camera sends, so none wait in a queue to be read late, and pays
for a picture only when a passage asks for one (``decode = "on_demand"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol
from urllib.parse import urlsplit

import numpy as np

from drivers.config import DeviceConfig, doc

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp"}
VIDEO_EXT = {".mp4", ".avi", ".mkv", ".mov"}


def safe_url(url: str) -> str:
    """A camera URL as logs and status show it: never its password."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"***@{host}").geturl()


class CameraError(RuntimeError):
    """The source cannot be opened; the message says what to check."""


class FrameSource(Protocol):
    """What a lane needs of a camera: open, one frame at a time, close."""

    name: str

    def open(self) -> None: ...
    def read(self) -> np.ndarray | None: ...
    def close(self) -> None: ...


class GrabSource(FrameSource, Protocol):
    """A source that takes a frame (``grab``) apart from making it a picture (``retrieve``).

    ``grab`` waits for the camera's next frame and keeps it undecoded, or as
    little decoded as the backend allows; ``retrieve`` makes the last grabbed
    frame a BGR picture. Both are called from one thread only. A source whose
    decoder hands a frame out only after later ones came in says how many in
    ``held_frames`` (optional, 0 if absent), so that a frame asked for after a
    moment is one the camera sent after it.
    """

    def grab(self) -> bool: ...
    def retrieve(self) -> np.ndarray | None: ...


def can_grab(source: object) -> bool:
    """Whether ``source`` takes frames apart from decoding them (see :class:`GrabSource`)."""
    return callable(getattr(source, "grab", None)) and callable(getattr(source, "retrieve", None))


@dataclass(frozen=True)
class CameraConfig(DeviceConfig):
    """Keys every camera type has; each type adds its own."""

    family: ClassVar[str] = "camera"

    type: str = field(
        default="opencv",
        metadata=doc("Frame source; the keys below depend on it", was="source"),
    )
    fps: float = field(
        default=10.0,
        metadata=doc(
            "Frames per second to read where the source does not set its own pace"
            ' (decode = "every_frame", a folder replay, a mock camera)',
            above=0,
            max=60,
        ),
    )
    decode: Literal["on_demand", "every_frame"] = field(
        default="on_demand",
        metadata=doc(
            '"on_demand": take every frame the camera sends (none wait in a queue to be'
            " read late) and decode only those a passage asks for, taken after its trigger"
            " (opencv and folder sources; a snapshot camera is asked for a picture only"
            ' then; the others read as with "every_frame");'
            ' "every_frame": read and decode a frame at `fps`, even between vehicles'
        ),
    )
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
