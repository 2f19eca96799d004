"""``type = "folder"``: replay a folder of images or a video file (demos, tests, audits)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from drivers.camera import IMAGE_EXT, VIDEO_EXT, CameraConfig, CameraError
from drivers.config import Invalid, doc, driver
from drivers.log import get_logger

log = get_logger("camera")


@dataclass(frozen=True)
class FolderConfig(CameraConfig):
    type: str = field(
        default="folder", metadata=doc("Frame source; the keys below depend on it", was="source")
    )
    folder: str = field(
        default="",
        metadata=doc("Directory of images (or a video file) replayed in name order, looping"),
    )

    def __post_init__(self) -> None:
        if not self.folder:
            raise Invalid([("folder", 'a folder or video file is needed for type = "folder"')])


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
        self._current: Path | None = None  # the grabbed image
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
        if not self.grab():
            return None
        return self.retrieve()

    def grab(self) -> bool:
        """Move to the next image (or video frame) at the replay's pace, without decoding it.

        Like a camera's frame arriving: a vanished image is noticed here, a
        broken one only when it is decoded (and then skipped).
        """
        self._pace()
        if self._video is not None:
            ok = self._video.grab()
            if not ok and self.loop:
                self._video.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok = self._video.grab()
            return bool(ok)
        if not self._files:
            return False
        if self._idx >= len(self._files):
            if not self.loop:
                return False
            self._idx = 0
        self._current = self._files[self._idx]
        self._idx += 1
        if not self._current.exists():
            raise CameraError(f"replay image {self._current} vanished")
        return True

    def retrieve(self) -> np.ndarray | None:
        """The grabbed image decoded; a broken one is skipped for the next good one."""
        if self._video is not None:
            ok, frame = self._video.retrieve()
            return frame if ok else None
        for _ in range(len(self._files)):
            path = self._current
            if path is None:
                return None
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
            self._current = None
            if self._idx >= len(self._files) and not self.loop:
                return None
            self._idx %= len(self._files)
            self._current = self._files[self._idx]
            self._idx += 1
        return None

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
            self._video = None


@driver("camera", "folder", FolderConfig, "replay a folder of images or a video file")
def _build(cfg: FolderConfig) -> FolderSource:
    return FolderSource(cfg.folder, loop=True, fps=cfg.fps)
