import shutil
import time

import cv2
import numpy as np
import pytest

from drivers.camera import CameraError, FolderSource, OpenCVSource, PiCameraSource, ResilientSource


def _folder(tmp_path, n=3):
    d = tmp_path / "frames"
    d.mkdir()
    for i in range(n):
        cv2.imwrite(str(d / f"{i:03d}.png"), np.full((20, 30, 3), i * 40, np.uint8))
    (d / "notes.txt").write_text("ignored")
    return d


def test_folder_source_replays_sorted_and_loops(tmp_path):
    src = FolderSource(_folder(tmp_path), loop=True)
    src.open()
    values = [int(src.read()[0, 0, 0]) for _ in range(4)]
    assert values == [0, 40, 80, 0]
    src.close()


def test_folder_source_no_loop_and_bad_image(tmp_path):
    d = _folder(tmp_path, 2)
    (d / "001b.jpg").write_bytes(b"garbage")
    src = FolderSource(d, loop=False)
    src.open()
    got = [src.read() for _ in range(3)]
    assert [int(g[0, 0, 0]) for g in got[:2]] == [0, 40] and got[2] is None


def test_folder_source_errors(tmp_path):
    with pytest.raises(CameraError, match="does not exist"):
        FolderSource(tmp_path / "nope").open()
    (tmp_path / "empty").mkdir()
    with pytest.raises(CameraError, match="no images"):
        FolderSource(tmp_path / "empty").open()


def test_video_file_replay(tmp_path):
    path = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (32, 24))
    for i in range(3):
        w.write(np.full((24, 32, 3), 60 * i, np.uint8))
    w.release()
    src = FolderSource(path, loop=True)
    src.open()
    frames = [src.read() for _ in range(4)]
    assert all(f is not None and f.shape == (24, 32, 3) for f in frames)


def test_resilient_source_folder_removed_and_restored(tmp_path):
    d = _folder(tmp_path)
    backup = tmp_path / "backup"
    shutil.copytree(d, backup)
    cam = ResilientSource(FolderSource(d), read_timeout=1.0, backoff_initial=0.05, backoff_max=0.1)
    cam.open()
    assert cam.state == "ok" and cam.read() is not None
    shutil.rmtree(d)
    results = [cam.read() for _ in range(3)]
    assert cam.state == "lost" and all(r is None for r in results)
    shutil.copytree(backup, d)
    deadline = time.monotonic() + 3
    frame = None
    while frame is None and time.monotonic() < deadline:
        frame = cam.read()
        time.sleep(0.02)
    assert frame is not None and cam.state == "ok"


class _Stuck:
    name = "stuck"

    def open(self):
        pass

    def read(self):
        time.sleep(1.0)
        return np.zeros((2, 2, 3), np.uint8)

    def close(self):
        pass


def test_resilient_source_never_hangs_the_caller():
    cam = ResilientSource(_Stuck(), read_timeout=0.1, backoff_initial=0.01)
    cam.open()
    t0 = time.monotonic()
    assert cam.read() is None
    assert time.monotonic() - t0 < 0.5 and cam.state == "lost"
    assert cam.read() is None  # still stuck: returns at once


def test_opencv_and_picamera_sources_fail_clearly(tmp_path):
    with pytest.raises(CameraError, match="cannot open camera"):
        OpenCVSource(str(tmp_path / "no-such-video.mp4")).open()
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(CameraError, match="picamera2 is not installed"):
            PiCameraSource().open()
