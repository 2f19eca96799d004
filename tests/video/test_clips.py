"""A clip around a passage, copied from a real RTSP stream without re-encoding, its hash chained."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from edged.cli.main import main
from edged.ledger.verify import VerifyResult, check_clips, verify_db
from tests.box_rig import passage, running_box
from tests.ptys import wait_for
from tests.rtsp import find_ffmpeg, make_clip, rtsp_camera

av = pytest.importorskip("av", reason="PyAV is not installed: pip install av (the [video] extra)")
pytestmark = pytest.mark.skipif(
    find_ffmpeg() is None, reason="ffmpeg is not installed: scripts/setup.sh --test installs it"
)


def _audit(box, action: str) -> list[dict]:
    out = []
    for _seq, _hash, _prev, fields in box.ledger.audit_rows():
        entry = json.loads(fields)
        if entry.get("action") == action:
            out.append(entry)
    return out


def _slices(path: Path) -> list[bytes]:
    """The coded picture slices (H.264 NAL types 1 and 5) of a file, length-prefixed units.

    Parameter sets may travel in-band over RTSP and not in the file, so the
    comparison is of the pictures themselves: a re-encode would change them all.
    """
    out = []
    with av.open(str(path)) as c:
        for packet in c.demux(c.streams.video[0]):
            data = bytes(packet)
            i = 0
            while i + 4 <= len(data):
                n = int.from_bytes(data[i : i + 4], "big")
                unit = data[i + 4 : i + 4 + n]
                if unit and unit[0] & 0x1F in (1, 5):
                    out.append(unit)
                i += 4 + n
    return out


def test_clip_around_a_passage_is_the_stream_copied_and_hashed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = make_clip(tmp_path / "camera.mp4", seconds=30, gop=25)
    with rtsp_camera(source) as camera:
        url = camera.url
        toml = f"""
[camera]
type = "none"
[mqtt]
enabled = false
[video]
recorder = "NVR 10.0.0.64"
channel = "3"
before_s = 60
after_s = 60
clip = true
url = "{url}"
clip_before_s = 2
clip_after_s = 2
"""
        parts = ["ledger", "registry", "clips", "main.gpio", "main.video", "main.worker"]
        with running_box(tmp_path, toml, parts) as box:
            lane = box.lane("main")
            assert wait_for(lambda: lane.recorder.buffered_s() >= 3, 20), lane.recorder.status()
            out = passage(box, plate="冀B12345")
            video = out.record["video"]
            assert (video["recorder"], video["channel"]) == ("NVR 10.0.0.64", "3")
            assert video["clip"].endswith(f"{out.record['event_id']}.mp4")
            assert wait_for(lambda: _audit(box, "clip_recorded"), 15), lane.recorder.status()
            entry = _audit(box, "clip_recorded")[0]["details"]
            clips = box.health()["clips"]
            status = lane.status()["video"]
    clip = tmp_path / "data" / "clips" / video["clip"]
    assert entry["clip"] == video["clip"] and entry["ledger_seq"] == out.seq
    assert entry["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
    assert entry["partial"] is False
    # Without re-encoding: every picture of the clip is, byte for byte, one the camera sent.
    camera = set(_slices(source))
    copied = _slices(clip)
    assert len(copied) >= 3 * 25 and all(p in camera for p in copied)
    with av.open(str(clip)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and (s.width, s.height) == (640, 360)
        assert 3.0 <= float(c.duration / av.time_base) <= 6.5
    assert clips["clips"] == 1 and clips["days_held"] is not None
    assert status["clips"]["state"] == "ok" and status["clips"]["clips"] == 1

    # The inspector's verify checks the clip against the audit chain, and catches an edit.
    db, folder = tmp_path / "data" / "ledger.db", tmp_path / "data" / "clips"
    verify = ["ledger", "verify", "--db", str(db), "--clips", str(folder)]
    capsys.readouterr()
    assert main(verify) == 0
    assert "clips: 1 verified, 0 removed" in capsys.readouterr().out
    clip.write_bytes(clip.read_bytes() + b"\0")
    assert main(verify) == 1
    assert "clip_mismatch" in capsys.readouterr().out
    clip.unlink()
    assert main(verify) == 1
    assert "clip_missing" in capsys.readouterr().out
    later = datetime.fromisoformat(entry["first"]) + timedelta(days=184)
    res = verify_db(db, clips_dir=folder, clip_retention_days=183)
    assert res.problem is not None and res.problem.kind == "clip_missing"
    with sqlite3.connect(db) as conn:  # past its retention, a clip may be gone
        aged = VerifyResult()
        assert check_clips(conn, folder, aged, 183, now=later) is None
    assert aged.clips_removed == 1
