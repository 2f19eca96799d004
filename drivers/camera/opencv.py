"""``type = "opencv"``: a V4L2 device or an RTSP/HTTP stream through OpenCV.

``grab()`` takes the next frame without making it a picture: for a V4L2
camera that skips the JPEG or YUV conversion, for an H.264 stream the
conversion to BGR and its copy (the H.264 decoding itself cannot be skipped:
each frame refers to the ones before it). Keeping up with the stream this
way is what keeps frames from queueing in the socket, so that the frame a
passage asks for is one the camera just sent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import cv2
import numpy as np

from drivers.camera import CameraConfig, CameraError, safe_url
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
    decode_threads: int = field(
        default=2,
        metadata=doc(
            "Threads decoding an RTSP/HTTP stream; each thread past the first holds"
            " back one frame (40 ms at 25 fps) and adds decoding speed: 2 keeps a"
            " 1080p stream fresh on a Pi 4, 1 is the freshest where one core keeps up;"
            " 0: one per CPU core",
            min=0,
            max=16,
        ),
    )


def is_stream(target: int | str) -> bool:
    """An URL read through FFmpeg (RTSP, HTTP, ...) rather than a local V4L2 device."""
    return "://" in str(target)


class OpenCVSource:
    """V4L2 device (index or /dev/videoN) or RTSP/HTTP URL through cv2.VideoCapture."""

    def __init__(
        self,
        device_or_url: int | str,
        size: tuple[int, int] | None = None,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 10.0,
        decode_threads: int = 0,
    ) -> None:
        self.target = device_or_url
        self.size = size
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.decode_threads = decode_threads
        # Frames a stream's decoder holds back: FFmpeg's H.264 parser hands a frame
        # out when the next one begins, and each decoding thread past the first
        # holds one more (frame threading).
        threads = decode_threads or min(os.cpu_count() or 1, 16)
        self.held_frames = threads if is_stream(device_or_url) else 0
        self.name = f"opencv:{safe_url(str(device_or_url))}"
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        if is_stream(self.target):
            # FFmpeg's own timeouts (30 s by default) end a read stuck on a dead
            # network, so the read thread that waited on it is not left behind.
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(self.open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(self.read_timeout_s * 1000),
            ]
            if self.decode_threads:
                params += [cv2.CAP_PROP_N_THREADS, self.decode_threads]
            self._cap = cv2.VideoCapture(str(self.target), cv2.CAP_FFMPEG, params)
        else:
            self._cap = cv2.VideoCapture(self.target)
        if not self._cap.isOpened():
            raise CameraError(
                f"cannot open camera {safe_url(str(self.target))}: check cable/power, the URL, "
                "user and password, and that the stream is H.264"
            )
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # latest frame, not a stale queue
        if self.size is not None and not is_stream(self.target):
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            return None
        ok, frame = self._cap.read()
        return frame if ok else None

    def grab(self) -> bool:
        """Take the camera's next frame without converting it to a picture."""
        return self._cap is not None and bool(self._cap.grab())

    def retrieve(self) -> np.ndarray | None:
        """The last grabbed frame as a BGR picture."""
        if self._cap is None:
            return None
        ok, frame = self._cap.retrieve()
        return frame if ok else None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


@driver("camera", "opencv", OpenCVConfig, "V4L2 device or RTSP/HTTP stream")
def _build(cfg: OpenCVConfig) -> OpenCVSource:
    target: int | str = int(cfg.device) if cfg.device.isdigit() else cfg.device
    # FFmpeg gives up on a read a little after the frame thread has called the
    # camera lost, so the thread stuck in it comes back soon after.
    return OpenCVSource(
        target,
        (cfg.width, cfg.height),
        open_timeout_s=max(5.0, 2 * cfg.read_timeout_s),
        read_timeout_s=cfg.read_timeout_s + 1.0,
        decode_threads=cfg.decode_threads,
    )
