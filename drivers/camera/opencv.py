"""``type = "opencv"``: a V4L2 device or an RTSP/HTTP stream through OpenCV."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from drivers.camera import CameraConfig, CameraError
from drivers.config import doc, driver


@dataclass(frozen=True)
class OpenCVConfig(CameraConfig):
    type: str = field(
        default="opencv", metadata=doc("Frame source; the keys below depend on it", was="source")
    )
    device: str = field(
        default="/dev/video0",
        metadata=doc("V4L2 device path, device index, or rtsp:// URL of an IP camera (抓拍机)"),
    )
    width: int = field(
        default=1920,
        metadata=doc("Frame width asked of a V4L2 device (streams keep theirs)", min=1),
    )
    height: int = field(
        default=1080,
        metadata=doc("Frame height asked of a V4L2 device (streams keep theirs)", min=1),
    )


class OpenCVSource:
    """V4L2 device (index or /dev/videoN) or RTSP/HTTP URL through cv2.VideoCapture."""

    def __init__(self, device_or_url: int | str, size: tuple[int, int] | None = None) -> None:
        self.target = device_or_url
        self.size = size
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
        if self.size is not None and not str(self.target).startswith(("rtsp:", "http")):
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            return None
        ok, frame = self._cap.read()
        return frame if ok else None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


@driver("camera", "opencv", OpenCVConfig, "V4L2 device or RTSP/HTTP stream")
def _build(cfg: OpenCVConfig) -> OpenCVSource:
    target: int | str = int(cfg.device) if cfg.device.isdigit() else cfg.device
    return OpenCVSource(target, (cfg.width, cfg.height))
