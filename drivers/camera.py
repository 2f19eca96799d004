"""Camera sources: a tiny ``FrameSource`` interface and its implementations.

The gate must never hang on a camera: :class:`ResilientSource` reads in a
worker thread with a timeout, reconnects with backoff and reports ``ok`` /
``lost`` so the gate can fall back to RFID or manual handling.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edged.logs import get_logger

log = get_logger("camera")

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp"}
VIDEO_EXT = {".mp4", ".avi", ".mkv", ".mov"}


class CameraError(RuntimeError):
    """The source cannot be opened; the message says what to check."""


class FrameSource(Protocol):
    name: str

    def open(self) -> None: ...
    def read(self) -> np.ndarray | None: ...
    def close(self) -> None: ...


class FolderSource:
    """Replays the images of a folder (sorted) or a video file, for demos and tests."""

    def __init__(self, path: str | Path, loop: bool = True, fps: float = 0.0) -> None:
        self.path = Path(path)
        self.loop = loop
        self.fps = fps
        self.name = f"folder:{self.path.name}"
        self._files: list[Path] = []
        self._idx = 0
        self._video: cv2.VideoCapture | None = None
        self._last = 0.0

    def open(self) -> None:
        if self.path.is_file() and self.path.suffix.lower() in VIDEO_EXT:
            self._video = cv2.VideoCapture(str(self.path))
            if not self._video.isOpened():
                raise CameraError(f"cannot open video {self.path}: check the file and codec")
            return
        if not self.path.is_dir():
            raise CameraError(f"replay folder {self.path} does not exist")
        self._files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_EXT)
        if not self._files:
            raise CameraError(f"replay folder {self.path} has no images ({sorted(IMAGE_EXT)})")
        self._idx = 0

    def _pace(self) -> None:
        if self.fps > 0:
            wait = self._last + 1.0 / self.fps - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last = time.monotonic()

    def read(self) -> np.ndarray | None:
        self._pace()
        if self._video is not None:
            ok, frame = self._video.read()
            if not ok and self.loop:
                self._video.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, frame = self._video.read()
            return frame if ok else None
        while self._files:
            if self._idx >= len(self._files):
                if not self.loop:
                    return None
                self._idx = 0
            path = self._files[self._idx]
            self._idx += 1
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is not None:
                return frame
            if not path.exists():
                raise CameraError(f"replay image {path} vanished")
            log.warning(
                "camera_bad_image",
                source=self.name,
                file=str(path),
                hint="file is not a readable image; it is skipped",
            )
        return None

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
            self._video = None


class OpenCVSource:
    """V4L2 device (index or /dev/videoN) or RTSP/HTTP URL through cv2.VideoCapture."""

    def __init__(self, device_or_url: int | str) -> None:
        self.target = device_or_url
        self.name = f"opencv:{device_or_url}"
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        self._cap = cv2.VideoCapture(self.target)
        if not self._cap.isOpened():
            raise CameraError(
                f"cannot open camera {self.target}: check cable/power, the URL, "
                "user and password, and that the stream is H.264"
            )
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # latest frame, not a stale queue

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            return None
        ok, frame = self._cap.read()
        return frame if ok else None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class PiCameraSource:
    """Raspberry Pi camera via picamera2 (only on a Pi with python3-picamera2)."""

    def __init__(self, size: tuple[int, int] = (1920, 1080)) -> None:
        self.size = size
        self.name = "picamera2"
        self._cam = None

    def open(self) -> None:
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError as exc:
            raise CameraError(
                "picamera2 is not installed: apt install python3-picamera2 "
                "(Raspberry Pi OS) or use an opencv camera source"
            ) from exc
        self._cam = Picamera2()
        cfg = self._cam.create_video_configuration(main={"size": self.size, "format": "BGR888"})
        self._cam.configure(cfg)
        self._cam.start()

    def read(self) -> np.ndarray | None:
        return None if self._cam is None else self._cam.capture_array()

    def close(self) -> None:
        if self._cam is not None:
            self._cam.stop()
            self._cam.close()
            self._cam = None


class ResilientSource:
    """Wraps a source: read with a timeout, reconnect with backoff, report ``ok``/``lost``."""

    def __init__(
        self,
        source: FrameSource,
        read_timeout: float = 2.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.source = source
        self.name = source.name
        self.read_timeout = read_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.state = "lost"
        self.last_error = ""  # why it was last lost, for health and the camera probe
        self._backoff = backoff_initial
        self._next_try = 0.0
        self._opened = False
        self._busy: threading.Thread | None = None
        self._result: list = []

    def open(self) -> None:
        self._try_open()

    def _try_open(self) -> bool:
        if time.monotonic() < self._next_try:
            return False
        try:
            self.source.close()
            self.source.open()
        except Exception as exc:
            self._mark_lost(f"open failed: {exc}")
            return False
        self._opened = True
        self._backoff = self.backoff_initial
        if self.state != "ok":
            log.info("camera_ok", source=self.name)
        self.state = "ok"
        return True

    def _mark_lost(self, why: str) -> None:
        if self.state != "lost" or self._opened:
            log.warning(
                "camera_lost",
                source=self.name,
                reason=why,
                retry_s=round(self._backoff, 2),
                hint="check camera power/cable/network; gate falls back to RFID/manual",
            )
        self.state = "lost"
        self.last_error = why
        self._opened = False
        self._next_try = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.backoff_max)

    def read(self) -> np.ndarray | None:
        """A frame, or None (lost / timed out) within about ``read_timeout`` seconds."""
        if self._busy is not None and self._busy.is_alive():
            return None  # the previous read is still stuck in the driver
        if not self._opened and not self._try_open():
            return None
        result: list = []

        def work() -> None:
            try:
                result.append(self.source.read())
            except Exception as exc:
                result.append(exc)

        t = threading.Thread(target=work, name=f"camera-read-{self.name}", daemon=True)
        t.start()
        t.join(self.read_timeout)
        if t.is_alive():
            self._busy = t
            self._mark_lost(f"read took over {self.read_timeout}s")
            return None
        value = result[0] if result else None
        if isinstance(value, Exception) or value is None:
            self._mark_lost(f"read failed: {value}" if value is not None else "no frame")
            return None
        return value

    def close(self) -> None:
        self.source.close()
        self._opened = False
        self.state = "lost"
