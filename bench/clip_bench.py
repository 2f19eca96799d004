"""Clips cost a copy, not a decoder: CPU seconds per minute of camera stream, recording vs decoding.

    python bench/clip_bench.py [--quick] [--seconds N] [--size WxH]

An RTSP camera is served on this machine (tests/rtsp.py: ffmpeg sends an
H.264 stream made once, a keyframe a second, 25 fps, through a relay that
serves it as a camera does).
The same stream is then taken two ways, each alone for the same time:

- recording: the lane's clip recorder (PyAV demux, packets kept in memory,
  a 10 s clip remuxed to MP4 every 10 s of stream, as a busy lane asks);
- decoding (baseline): OpenCV reading every frame, as a frame camera's
  feed does.

Figures: CPU seconds (this process, all threads) per minute of stream for
each, and recording / decoding. The camera (ffmpeg and the relay) runs in
its own process and is not counted. Needs ffmpeg and PyAV
(scripts/setup.sh --test).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit
from edged.video.config import VideoConfig
from edged.video.recorder import ClipRecorder, ClipRequest
from tests.rtsp import find_ffmpeg, make_clip

REPO = Path(__file__).resolve().parent.parent
SERVE = (
    "import sys; from pathlib import Path; from tests.rtsp import rtsp_camera\n"
    "with rtsp_camera(Path(sys.argv[1])) as cam:\n"
    "    print(cam.url, flush=True); sys.stdin.read()\n"
)


@contextlib.contextmanager
def camera(video: Path) -> Iterator[str]:
    """The RTSP camera (ffmpeg and the relay) in a process of its own: its CPU is not ours."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(video)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def record(url: str, seconds: float, folder: Path) -> tuple[float, int]:
    """CPU seconds of ``seconds`` of stream through the recorder, and clips written."""
    cfg = VideoConfig(clip=True, url=url, clip_before_s=5, clip_after_s=5)
    done: list[object] = []
    rec = ClipRecorder("bench.video", url, cfg, done.append, lambda *a, **k: None)
    rec.start()
    deadline = time.monotonic() + 15
    while rec.buffered_s() < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    cpu0, t0 = time.process_time(), time.monotonic()
    n = 0
    while time.monotonic() - t0 < seconds:
        time.sleep(min(10.0, seconds - (time.monotonic() - t0)))
        now = time.time()
        rec.clip(ClipRequest(f"c{n}", now - 5, now + 5, folder / f"c{n}.mp4"))
        n += 1
    cpu = time.process_time() - cpu0
    rec.stop()
    return cpu, len(done)


def decode(url: str, seconds: float) -> tuple[float, int]:
    """CPU seconds of ``seconds`` of stream decoded frame by frame with OpenCV, and frames."""
    import cv2

    cap = cv2.VideoCapture(url)
    if not cap.isOpened():
        raise SystemExit(f"OpenCV cannot open {url}")
    ok, _ = cap.read()
    frames = 0
    cpu0, t0 = time.process_time(), time.monotonic()
    while time.monotonic() - t0 < seconds:
        ok, _frame = cap.read()
        if not ok:
            break
        frames += 1
    cpu = time.process_time() - cpu0
    cap.release()
    return cpu, frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="20 s of 1280x720 instead of 60 s")
    ap.add_argument("--seconds", type=float, help="stream seconds per measurement")
    ap.add_argument("--size", help="frame size of the stream (default 1920x1080, quick 1280x720)")
    args = ap.parse_args()
    if find_ffmpeg() is None:
        raise SystemExit("clip_bench: ffmpeg is not installed (scripts/setup.sh --test)")
    seconds = args.seconds or (20.0 if args.quick else 60.0)
    size = args.size or ("1280x720" if args.quick else "1920x1080")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        w, h = (int(x) for x in size.split("x"))
        video = make_clip(folder / "camera.mp4", (w, h), 25, 30, bitrate="4M", gop=25)
        with camera(video) as url:
            rec_cpu, clips = record(url, seconds, folder)
        with camera(video) as url:
            dec_cpu, frames = decode(url, seconds)
    per_min = 60.0 / seconds
    print(f"stream: {size} H.264 25 fps over RTSP, {seconds:g} s per measurement")
    print(f"recording: {rec_cpu:.2f} CPU s ({clips} clips written)")
    print(f"decoding:  {dec_cpu:.2f} CPU s ({frames} frames)")
    emit("clip recording CPU", round(rec_cpu * per_min, 2), "s/min of stream")
    emit("frame decoding CPU (baseline)", round(dec_cpu * per_min, 2), "s/min of stream")
    ratio = rec_cpu / dec_cpu if dec_cpu else float("inf")
    emit("recording / decoding", round(ratio, 3), "ratio")


if __name__ == "__main__":
    main()
