"""``type = "picamera2"``: the Raspberry Pi camera (needs python3-picamera2 from the OS)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from drivers.camera import CameraConfig, CameraError
from drivers.config import doc, driver


@dataclass(frozen=True)
class PiCameraConfig(CameraConfig):
    type: str = field(
        default="picamera2", metadata=doc("Frame source; the keys below depend on it", was="source")
    )
    width: int = field(default=1920, metadata=doc("Frame width of the Pi camera", min=1))
    height: int = field(default=1080, metadata=doc("Frame height of the Pi camera", min=1))


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


@driver("camera", "picamera2", PiCameraConfig, "Raspberry Pi camera (picamera2)")
def _build(cfg: PiCameraConfig) -> PiCameraSource:
    return PiCameraSource((cfg.width, cfg.height))
