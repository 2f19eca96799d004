"""The frame thread: frames taken after the asking moment, and pictures made only when asked.

Against an H.264 RTSP stream at 25 fps (ffmpeg into the loopback relay of
tests/rtsp.py) whose pictures carry their frame number, and against a
folder replay.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from drivers.camera.folder import FolderConfig, FolderSource
from drivers.camera.opencv import OpenCVConfig, OpenCVSource
from edged.lane.camera_feed import CameraFeed
from tests.rtsp import find_ffmpeg, make_clip, rtsp_camera

needs_ffmpeg = pytest.mark.skipif(
    find_ffmpeg() is None, reason="ffmpeg not installed: scripts/setup.sh --test installs it"
)


class Events(list):
    def __call__(self, kind: str, severity: str, message: str, **details: Any) -> None:
        self.append(kind)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if find_ffmpeg() is None:
        pytest.skip("ffmpeg not installed: scripts/setup.sh --test installs it")
    return make_clip(tmp_path_factory.mktemp("clip") / "numbered.mp4", seconds=12)


def _feed(source: Any, cfg: Any) -> CameraFeed:
    feed = CameraFeed("test.camera", source, cfg, Events())
    feed.start()
    return feed


def _wait_ok(feed: CameraFeed, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while feed.latest() is None:
        assert time.monotonic() < deadline, f"no frame: {feed.status()}"
        time.sleep(0.05)


@needs_ffmpeg
def test_on_demand_frames_are_sent_after_the_trigger_and_fresh(clip: Path) -> None:
    with rtsp_camera(clip) as cam:
        cfg = OpenCVConfig(device=cam.url, fps=10.0, read_timeout_s=5.0)
        feed = _feed(OpenCVSource(cam.url, read_timeout_s=6.0, decode_threads=2), cfg)
        try:
            _wait_ok(feed)
            time.sleep(1.0)  # between vehicles: frames taken, none decoded
            idle = feed.status()
            assert idle["decode"] == "on_demand" and idle["fps"] > 15, idle
            ages, early = [], 0
            for _ in range(15):
                time.sleep(0.23)
                trigger = time.monotonic()
                got = feed.frame_after(trigger)
                assert got is not None
                frame, arrived = got
                sent = cam.sent_at(frame)
                assert sent is not None and arrived > trigger
                early += sent < trigger - 0.040  # at most the frame in flight at the trigger
                ages.append(time.monotonic() - sent)
            assert early == 0
            assert sorted(ages)[-2] < 0.200, ages  # the frame-age budget, p95 at 25 fps
            status = feed.status()
            assert status["passage_frame_age_ms"] is not None
            assert status["decoded_fps"] < status["fps"] / 2, status
        finally:
            feed.stop()


@needs_ffmpeg
def test_reading_every_frame_slower_than_the_stream_gets_stale_frames(clip: Path) -> None:
    """What on_demand avoids: at camera.fps = 10 behind a 25 fps stream, frames queue."""
    with rtsp_camera(clip) as cam:
        cfg = OpenCVConfig(device=cam.url, fps=10.0, decode="every_frame", read_timeout_s=5.0)
        feed = _feed(OpenCVSource(cam.url, read_timeout_s=6.0), cfg)
        try:
            _wait_ok(feed)
            time.sleep(3.0)
            got = feed.frame_after(time.monotonic())
            assert got is not None
            sent = cam.sent_at(got[0])
            assert sent is not None and time.monotonic() - sent > 0.5
        finally:
            feed.stop()


def _folder(tmp_path: Path, n: int = 4) -> Path:
    d = tmp_path / "frames"
    d.mkdir()
    for i in range(n):
        cv2.imwrite(str(d / f"{i:03d}.png"), np.full((48, 64, 3), 40 * i, np.uint8))
    return d


def test_folder_on_demand_decodes_only_what_is_asked(tmp_path: Path) -> None:
    d = _folder(tmp_path)
    cfg = FolderConfig(folder=str(d), fps=20.0)
    feed = _feed(FolderSource(d, fps=20.0), cfg)
    try:
        _wait_ok(feed)
        time.sleep(1.5)
        status = feed.status()
        assert status["fps"] > 12 and status["decoded_fps"] < 2, status
        t = time.monotonic()
        first = feed.frame_after(t)
        assert first is not None and first[1] > t
        second = feed.frame_after(first[1])
        assert second is not None and second[1] > first[1]
        assert int(second[0][0, 0, 0]) == (int(first[0][0, 0, 0]) + 40) % 160  # the next image
    finally:
        feed.stop()


def test_every_frame_decodes_at_fps(tmp_path: Path) -> None:
    d = _folder(tmp_path)
    cfg = FolderConfig(folder=str(d), fps=20.0, decode="every_frame")
    feed = _feed(FolderSource(d, fps=20.0), cfg)
    try:
        _wait_ok(feed)
        time.sleep(1.5)
        status = feed.status()
        assert status["decode"] == "every_frame" and status["decoded_fps"] > 12, status
    finally:
        feed.stop()


def test_a_lost_camera_gives_no_frame_at_once(tmp_path: Path) -> None:
    d = _folder(tmp_path)
    cfg = FolderConfig(folder=str(d), fps=20.0, read_timeout_s=2.0, reconnect_max_s=0.2)
    events = Events()
    feed = CameraFeed("test.camera", FolderSource(d, fps=20.0), cfg, events)
    feed.start()
    try:
        _wait_ok(feed)
        d.rename(tmp_path / "gone")
        deadline = time.monotonic() + 5
        while feed.status()["state"] != "lost":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        t = time.monotonic()
        assert feed.frame_after(t) is None and time.monotonic() - t < 0.5
        assert events == ["camera_lost"]
        (tmp_path / "gone").rename(d)
        _wait_ok(feed)
        assert events == ["camera_lost", "camera_restored"]
    finally:
        feed.stop()


def test_snapshot_camera_is_asked_only_for_frames_wanted_after_the_trigger() -> None:
    from drivers import config as driver_config
    from drivers.camera.snapshot import SnapshotConfig
    from drivers.simulators import SnapshotCameraSimulator

    sim = SnapshotCameraSimulator(size=(320, 180)).start()
    cfg = SnapshotConfig(
        url=sim.url, username="admin", password="cam-pass", check_every_s=1.0, reconnect_max_s=0.2
    )
    events = Events()
    feed = CameraFeed("test.camera", driver_config.build(cfg), cfg, events)
    feed.start()
    try:
        _wait_ok(feed)
        before = len(sim.requests)
        time.sleep(2.5)  # between vehicles: one check a second, nothing else
        assert 1 <= len(sim.requests) - before <= 3, sim.requests
        sim.show(np.full((180, 320, 3), 30, np.uint8))  # the lane before the vehicle
        time.sleep(0.2)
        trigger = time.monotonic()
        sim.show(np.full((180, 320, 3), 220, np.uint8))  # the vehicle, at the trigger
        got = feed.frame_after(trigger)
        assert got is not None and got[1] > trigger
        assert abs(int(got[0][90, 160, 0]) - 220) < 4, "a picture from before the trigger"
        assert any(t > trigger for t in sim.requests)
        status = feed.status()
        assert status["decode"] == "on_request" and status["state"] == "ok", status
        sim.stop()
        deadline = time.monotonic() + 5
        while feed.status()["state"] != "lost":  # the next check finds it gone
            assert time.monotonic() < deadline, feed.status()
            time.sleep(0.05)
        t = time.monotonic()
        assert feed.frame_after(t) is None and time.monotonic() - t < 0.5
        assert events == ["camera_lost"]
    finally:
        feed.stop()


@pytest.mark.parametrize(("days", "warned"), [(10, True), (400, False)])
def test_an_https_cameras_certificate_end_is_shown_and_warned_once(
    tmp_path: Path, days: int, warned: bool
) -> None:
    from cryptography import x509

    from drivers import config as driver_config
    from drivers.camera.snapshot import SnapshotConfig
    from drivers.simulators import SnapshotCameraSimulator, self_signed_certificate

    cert, key = self_signed_certificate(tmp_path, "camera", days=days)
    ends = x509.load_pem_x509_certificate(Path(cert).read_bytes()).not_valid_after_utc
    sim = SnapshotCameraSimulator(size=(320, 180), tls=(cert, key)).start()
    cfg = SnapshotConfig(
        url=sim.url, username="admin", password="cam-pass", tls_ca_file=cert, check_every_s=1.0
    )
    events = Events()
    feed = CameraFeed("test.camera", driver_config.build(cfg), cfg, events)
    feed.start()
    try:
        _wait_ok(feed)
        for _ in range(3):  # frames after the first: still one warning
            assert feed.frame_after(time.monotonic()) is not None
        status = feed.status()
        assert datetime.fromisoformat(status["certificate_expires"]) == ends.replace(
            microsecond=0
        ), status
        assert events == (["camera_certificate_expiring"] if warned else []), events
    finally:
        feed.stop()
        sim.stop()
