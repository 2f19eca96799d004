"""The camera path: how old the frames a passage reads are, and what the frame thread costs.

    python bench/camera_path_bench.py [--quick] [--idle-s S] [--triggers N]

An idle 1920x1080, 25 fps H.264 RTSP stream (a moving test picture at
4 Mbit/s, no B-frames, a key frame every 2 s, as an IP camera's main stream)
is served by ffmpeg through the loopback RTSP server of tests/rtsp.py; each
picture carries its frame number, and the server notes when it sent each
frame. The lane's frame thread (edged.lane.camera_feed.CameraFeed, the
opencv source, 2 decoding threads) reads it, each way in its own process:

- ``every_frame`` at 25 fps: the old way, every frame decoded (the baseline);
- ``every_frame`` at 10 fps: the old way at the old default rate, behind the stream;
- ``on_demand``: every frame taken, decoded only when a passage asks.

Then the camera's snapshot URL (``type = "snapshot"``: a loopback HTTP
camera with Digest authentication, showing the same numbered 1080p
pictures, a new one every 40 ms, and encoding a JPEG at each request),
asked only when a passage waits for a frame and once every 10 s to check it.

For each: CPU seconds per minute of the process while idle (no passage),
its peak resident memory,
then ``--triggers`` passages' bursts (three frames, 60 ms of plate reading
between them, as PassagePipeline.burst asks them): the age of each frame
handed to the burst, from the moment the server sent it. Then the same
CPU figure for a folder replay of Pi-camera-sized (2304x1296) JPEG frames
at 25 fps, every frame decoded vs on demand. The bench's own ffmpeg and
server run in this process and are not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit
from tests.rtsp import RtspCamera, find_ffmpeg, frame_number, make_clip

REPO = Path(__file__).resolve().parent.parent
PI_CAMERA = (2304, 1296)  # Camera Module 3's full-field binned mode


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child(args: argparse.Namespace) -> None:
    """One way of reading, in its own process: prints one JSON line of measurements."""
    from drivers.camera.folder import FolderConfig, FolderSource
    from drivers.camera.opencv import OpenCVConfig, OpenCVSource
    from drivers.camera.snapshot import SnapshotConfig, SnapshotSource
    from edged.lane.camera_feed import CameraFeed

    if args.snapshot:
        cfg = SnapshotConfig(url=args.snapshot, username="admin", password="cam-pass")
        source = SnapshotSource(args.snapshot, "admin", "cam-pass", timeout_s=5.0)
    elif args.folder:
        cfg = FolderConfig(folder=args.folder, fps=args.fps, decode=args.decode)
        source = FolderSource(args.folder, fps=args.fps)
    else:
        cfg = OpenCVConfig(device=args.url, fps=args.fps, decode=args.decode, read_timeout_s=5.0)
        source = OpenCVSource(args.url, read_timeout_s=6.0, decode_threads=2)
    feed = CameraFeed("bench.camera", source, cfg, lambda *a, **k: None)
    feed.start()
    deadline = time.monotonic() + 30
    while feed.latest() is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"no frame from the camera: {feed.status()}")
        time.sleep(0.1)
    time.sleep(2.0)  # past the start (the stream's first key frame, its backlog)
    c0, t0 = cpu_s(), time.monotonic()
    time.sleep(args.idle_s)
    idle = {"cpu_s": cpu_s() - c0, "wall_s": time.monotonic() - t0, "status": feed.status()}
    rng = random.Random(1)
    handed: list[tuple[int | None, float, float]] = []  # (number, trigger, handed at)
    for _ in range(args.triggers):
        time.sleep(rng.uniform(0.3, 1.0))
        trigger = since = time.monotonic()
        for _ in range(3):
            got = feed.frame_after(since)
            if got is None:
                break
            handed.append((frame_number(got[0]), trigger, time.monotonic()))
            since = got[1]
            time.sleep(0.06)  # the plate read of a frame
    feed.stop()
    status = Path("/proc/self/status").read_text().split("VmHWM:")
    peak_mb = int(status[1].split()[0]) / 1024 if len(status) > 1 else float("nan")
    print(json.dumps({"idle": idle, "handed": handed, "peak_mb": peak_mb}))


def run_child(extra: list[str], args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", "--idle-s", str(args.idle_s)]
    cmd += ["--triggers", str(args.triggers), *extra]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    if out.returncode:
        raise SystemExit(f"{' '.join(extra)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def p95(values: list[float]) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(0.95 * len(v)))] if v else float("nan")


def stream_ways(tmp: Path, args: argparse.Namespace) -> dict[str, tuple[float, ...]]:
    """Per way: (CPU s per minute, frame age p95 ms, the most ms a frame was sent before
    its trigger, peak MB of the process)."""
    clip = make_clip(tmp / "1080p.mp4", (1920, 1080), 25, args.clip_s, bitrate="4M")
    results = {}
    with RtspCamera(clip) as cam:
        for name, decode, fps in (
            ("every frame decoded, 25 fps", "every_frame", 25),
            ("every frame decoded, 10 fps", "every_frame", 10),
            ("on demand", "on_demand", 10),
        ):
            data = run_child(["--url", cam.url, "--decode", decode, "--fps", str(fps)], args)
            ages, early, unread, before = [], 0, 0, 0.0
            for number, trigger, at in data["handed"]:
                sent = None if number is None else cam.relay.sent_at(number, cam.clip_frames, at)
                if sent is None:
                    unread += 1
                    continue
                ages.append((at - sent) * 1000)
                early += sent < trigger
                before = max(before, (trigger - sent) * 1000)
            idle = data["idle"]
            cpu_min = idle["cpu_s"] / idle["wall_s"] * 60
            results[name] = (cpu_min, p95(ages), before, data["peak_mb"])
            st = idle["status"]
            print(
                f"  {name:30s} CPU {cpu_min:5.1f} s/min idle, peak {data['peak_mb']:.0f} MB"
                f" ({st['fps']:.1f} frames/s taken,"
                f" {st['decoded_fps']:.1f} decoded,"
                f" {cpu_min / 60 * 1000 / max(st['fps'], 0.1):.1f} ms a frame taken);"
                " burst frame age p50 "
                f"{sorted(ages)[len(ages) // 2] if ages else float('nan'):.0f} ms,"
                f" p95 {p95(ages):.0f} ms; {early} of {len(ages)} sent before the trigger"
                f" (the earliest {before:.0f} ms before)"
                + (f"; {unread} unreadable" if unread else ""),
                flush=True,
            )
        print(f"  (the server dropped {cam.relay.dropped()} packets for readers behind)")
    return results


def snapshot_way(tmp: Path, args: argparse.Namespace) -> tuple[float, ...]:
    """The snapshot camera: (CPU s per minute, frame age p95 ms, the most ms a picture was
    shown before its trigger, peak MB). The camera shows the first 2 s of the numbered
    1080p clip in a loop, a new picture every 40 ms; a picture's age runs from the
    moment it was shown."""
    import cv2

    from drivers.simulators import SnapshotCameraSimulator

    cap = cv2.VideoCapture(str(make_clip(tmp / "snap.mp4", (1920, 1080), 25, 2, bitrate="4M")))
    pictures = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        pictures.append(frame)
    cap.release()
    numbers = [frame_number(p) for p in pictures]
    sim = SnapshotCameraSimulator(size=(1920, 1080)).start()
    sim.play(pictures, 0.04)
    try:
        data = run_child(["--snapshot", sim.url], args)
    finally:
        sim.stop()
    shown: dict[int | None, list[float]] = {}
    for i, t in sim.shown:
        shown.setdefault(numbers[i], []).append(t)
    ages, before = [], 0.0
    for number, trigger, at in data["handed"]:
        times = [t for t in shown.get(number, []) if t <= at] if number is not None else []
        if not times:
            continue
        ages.append((at - times[-1]) * 1000)
        before = max(before, (trigger - times[-1]) * 1000)
    idle = data["idle"]
    cpu_min = idle["cpu_s"] / idle["wall_s"] * 60
    print(
        f"  {'snapshot on request':30s} CPU {cpu_min:5.1f} s/min idle, peak"
        f" {data['peak_mb']:.0f} MB ({len(sim.requests)} requests in all); burst frame age"
        f" p50 {sorted(ages)[len(ages) // 2] if ages else float('nan'):.0f} ms,"
        f" p95 {p95(ages):.0f} ms (the earliest shown {before:.0f} ms before its trigger)",
        flush=True,
    )
    return cpu_min, p95(ages), before, data["peak_mb"]


def folder_ways(tmp: Path, args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    import cv2

    folder = tmp / "picamera"
    folder.mkdir()
    gen = cv2.VideoCapture(f"{make_clip(tmp / 'pi.mp4', PI_CAMERA, 25, 1, bitrate='8M')}")
    for i in range(10):
        ok, frame = gen.read()
        assert ok
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    results = {}
    for name, decode in (("every frame decoded", "every_frame"), ("on demand", "on_demand")):
        data = run_child(["--folder", str(folder), "--decode", decode, "--fps", "25"], args)
        idle = data["idle"]
        cpu_min = idle["cpu_s"] / idle["wall_s"] * 60
        ages = [(at - trig) * 1000 for _, trig, at in data["handed"][::3]]
        results[name] = (cpu_min, p95(ages))
        print(
            f"  {name:30s} CPU {cpu_min:5.1f} s/min idle;"
            f" trigger to first frame p95 {p95(ages):.0f} ms",
            flush=True,
        )
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="15 s idle, 10 passages a way")
    ap.add_argument("--idle-s", type=float, default=60.0)
    ap.add_argument("--triggers", type=int, default=40)
    ap.add_argument("--clip-s", type=int, default=40, help="longer than any reader falls behind")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--snapshot", help=argparse.SUPPRESS)
    ap.add_argument("--decode", default="on_demand", help=argparse.SUPPRESS)
    ap.add_argument("--fps", type=float, default=10.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return 0
    if args.quick:
        args.idle_s, args.triggers = 15.0, 10
    if find_ffmpeg() is None:
        print("camera_path_bench: ffmpeg not installed (scripts/setup.sh --test installs it)")
        emit("ffmpeg missing: camera path not measured", 0, "")
        return 0
    print(
        f"camera path: idle {args.idle_s:g} s and {args.triggers} passages a way,"
        f" {os.cpu_count()} CPUs; the load of other jobs on this machine moves these figures"
    )
    with tempfile.TemporaryDirectory(prefix="edged-campath-") as t:
        tmp = Path(t)
        print("RTSP 1920x1080 25 fps H.264, 4 Mbit/s:", flush=True)
        rtsp = stream_ways(tmp, args)
        print("snapshot URL, 1920x1080 JPEG encoded at each request:", flush=True)
        snap = snapshot_way(tmp, args)
        print(f"folder of {PI_CAMERA[0]}x{PI_CAMERA[1]} JPEG frames at 25 fps:", flush=True)
        folder = folder_ways(tmp, args)
    old, slow, new = (
        rtsp["every frame decoded, 25 fps"],
        rtsp["every frame decoded, 10 fps"],
        rtsp["on demand"],
    )
    emit("RTSP 1080p25 burst frame age p95, on demand", new[1], "ms", "<= 200")
    emit("RTSP 1080p25 burst frame age p95, every frame at 10 fps", slow[1], "ms")
    emit("RTSP 1080p25 burst frame age p95, every frame at 25 fps", old[1], "ms")
    emit("RTSP 1080p25 earliest burst frame before its trigger, on demand", new[2], "ms", "<= 40")
    emit("RTSP 1080p25 idle CPU, on demand", new[0], "s/min")
    emit("RTSP 1080p25 idle CPU, every frame decoded", old[0], "s/min")
    emit("RTSP 1080p25 idle CPU on demand / every frame", new[0] / old[0], "ratio", "< 1")
    emit("RTSP 1080p25 process peak RSS, on demand", new[3], "MB")
    emit("snapshot 1080p burst frame age p95", snap[1], "ms", "<= 200")
    emit("snapshot 1080p idle CPU", snap[0], "s/min")
    emit("snapshot 1080p idle CPU / RTSP every frame", snap[0] / old[0], "ratio", "< 1")
    emit("snapshot 1080p process peak RSS", snap[3], "MB")
    emit("snapshot / RTSP on demand peak RSS", snap[3] / new[3], "ratio", "< 1")
    emit("Pi-camera folder idle CPU, on demand", folder["on demand"][0], "s/min")
    emit("Pi-camera folder idle CPU, every frame", folder["every frame decoded"][0], "s/min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
