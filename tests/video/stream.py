"""An RTSP camera on this machine: an H.264 file made by ffmpeg, served by GStreamer's server."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"


def missing() -> str | None:
    """Why an RTSP test stream cannot be served here, or None."""
    if shutil.which("ffmpeg") is None:
        return "ffmpeg is not installed (scripts/setup.sh --test installs it)"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        return (
            "GStreamer's RTSP server is not installed (scripts/setup.sh --test installs"
            " gir1.2-gst-rtsp-server-1.0 and the GStreamer plugins)"
        )
    return None


def make_h264(path: Path, seconds: int = 30, size: str = "640x360", fps: int = 25) -> Path:
    """A test pattern encoded once by ffmpeg, a keyframe each second, as a camera sends."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
         f"testsrc2=size={size}:rate={fps}", "-t", str(seconds), "-c:v", "libx264",
         "-preset", "veryfast", "-g", str(fps), "-pix_fmt", "yuv420p", "-y", str(path)],
        check=True,
    )  # fmt: skip
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def rtsp_camera(video: Path) -> Iterator[str]:
    """``rtsp://127.0.0.1:PORT/test`` streaming ``video`` in real time while inside."""
    port = free_port()
    proc = subprocess.Popen(
        [SYSTEM_PYTHON, str(HERE / "rtsp_server.py"), str(video), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        yield f"rtsp://127.0.0.1:{port}/test"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
