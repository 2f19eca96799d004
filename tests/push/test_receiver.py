"""Plate cameras pushing to a running box: passages with their images, each vendor's contract
kept, duplicates counted and dropped, offline resends recorded once, hostile clients refused without
stalling a lane. Real HTTP clients (http.client) against the box's real receiver."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from edged.lpr.models import check_models
from edged.lpr.synth import render_scene
from tests.box_rig import passage, running_box
from tests.ptys import wait_for
from tests.push import shapes

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = Path(os.environ.get("EDGED_MODEL_DIR", REPO / "models" / "onnx"))
NOW = int(time.time())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml(port: int, camera: str, own_read: bool = False, extra: str = "") -> str:
    return f"""
[camera]
type = "{camera}"
address = "127.0.0.1"
own_read = {"true" if own_read else "false"}
dedupe_window_s = 10
silence_s = 3
[gpio.ground_loop]
pin = "none"
[receiver]
bind = "127.0.0.1"
port = {port}
request_timeout_s = 2
max_body_mb = 4
[lpr]
model_dir = "{MODEL_DIR}"
[mqtt]
enabled = false
{extra}
"""


PARTS = ["ledger", "registry", "main.gpio", "main.worker", "receiver"]


def post(
    port: int, body: bytes, ctype: str, source: str | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(source, 0) if source else None
    )
    try:
        conn.request("POST", "/push", body=body, headers={"Content-Type": ctype})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _rows(box: Any) -> list[Any]:
    return [p.record for p in box.ledger.passages()]


def _images() -> tuple[bytes, bytes]:
    scene = render_scene("冀B12345", "yellow", seed=3)
    return shapes.jpeg(scene), shapes.jpeg(scene[300:420, 500:800])


def test_zhenshi_pushes_make_passages_and_resends_are_dropped(tmp_path: Path) -> None:
    port = _free_port()
    full, crop = _images()
    with running_box(tmp_path, _toml(port, "zhenshi"), PARTS) as box:
        status, body = post(port, shapes.zhenshi_plate("冀B12345", 21085, NOW, full=full, crop=crop),
                            "application/json")  # fmt: skip
        assert status == 200
        assert json.loads(body) == {"Response_AlarmInfoPlate": {"info": "no", "plateid": 21085}}
        assert wait_for(lambda: len(_rows(box)) == 1, 10)
        row = _rows(box)[0]
        assert (row.plate, row.lane, row.id_source) == ("冀B12345", "main", "plate")
        assert "camera_read_only" in row.flags
        shots = {Path(s.path).name.rsplit("_", 1)[1]: s for s in row.snapshots}
        assert shots["frame.jpg"].sha256 == hashlib.sha256(full).hexdigest()
        assert shots["plate.jpg"].sha256 == hashlib.sha256(crop).hexdigest()
        images = box.ctx.ledger_service.images_dir
        assert (images / shots["frame.jpg"].path).read_bytes() == full

        # The same read again (a resend), and the same truck read twice within the window.
        assert (
            post(port, shapes.zhenshi_plate("冀B12345", 21085, NOW), "application/json")[0] == 200
        )
        assert (
            post(port, shapes.zhenshi_plate("冀B12345", 21086, NOW + 4), "application/json")[0]
            == 200
        )
        # A resend of offline reads: answered with the continuation once each is a late row
        # (tests/lane/test_offline.py has what the rows say).
        for pid in (20001, 20002, 20002):
            status, body = post(
                port,
                shapes.zhenshi_plate("冀A8K302", pid, NOW - 3600 * (pid - 20000), offline=True),
                "application/json",
            )
            reply = json.loads(body)["Response_AlarmInfoPlate"]
            assert status == 200 and reply["ContinuePushOffline"] == {"plateid": pid, "continue": 1}
        hb, ctype = shapes.zhenshi_heartbeat()
        status, body = post(port, hb, ctype)
        assert status == 200 and json.loads(body) == {"Response_AlarmInfoPlate": {"info": "no"}}
        time.sleep(0.5)
        rows = _rows(box)
        assert len(rows) == 3, "no passage for duplicates or heartbeats"
        assert [r.reason_code for r in rows[1:]] == ["offline_read", "offline_read"]
        cam = box.lane("main").status()["camera"]
        assert cam["state"] == "ok" and cam["source"] == "zhenshi:127.0.0.1"
        assert cam["pushes"] == {
            "new": 1,
            "duplicate_id": 2,
            "duplicate_window": 1,
            "offline": 2,
            "offline_record": 2,
            "heartbeat": 1,
        }
        # Silence: no push nor heartbeat for silence_s (3 s) is a lost camera, as for frames.
        assert wait_for(lambda: box.lane("main").status()["camera"]["state"] == "lost", 8)
        assert "camera_lost" in [e.kind for e in box.ledger.recent_events(50)]
        post(port, hb, ctype)
        assert box.lane("main").status()["camera"]["state"] == "ok"
        assert "camera_restored" in [e.kind for e in box.ledger.recent_events(50)]
    spool = tmp_path / "data" / "pushes"
    assert len(list(spool.rglob("*.bin"))) == 3, "the new read and the two offline ones, kept"


def test_hikvision_multipart_pushes_get_200_once_stored(tmp_path: Path) -> None:
    port = _free_port()
    full, crop = _images()
    when = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.localtime(NOW))
    with running_box(tmp_path, _toml(port, "hikvision"), PARTS) as box:
        body, ctype = shapes.hik_multipart(
            shapes.hik_alert("冀B12345", when, uid="u-1"), full, crop
        )
        assert post(port, body, ctype) == (200, b"OK\n")
        assert post(port, body, ctype) == (200, b"OK\n"), "a duplicate is answered as stored"
        beat = shapes.hik_alert("", when, event="videoloss", state="inactive")
        assert post(port, beat, "application/xml") == (200, b"OK\n")
        assert wait_for(lambda: len(_rows(box)) == 1, 10)
        row = _rows(box)[0]
        assert row.plate == "冀B12345" and len(row.snapshots) == 2
        assert row.snapshots[0].sha256 == hashlib.sha256(full).hexdigest()
        bad = b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><EventNotificationAlert/>"
        assert post(port, bad, "application/xml")[0] == 400
        counts = box.lane("main").status()["camera"]["pushes"]
        assert counts == {"new": 1, "duplicate_id": 1, "heartbeat": 1, "bad": 1}


@pytest.mark.skipif(bool(check_models(MODEL_DIR)), reason="models not fetched: models/fetch.py")
def test_the_box_reads_the_pushed_image_too_and_flags_a_disagreement(tmp_path: Path) -> None:
    port = _free_port()
    full, crop = _images()  # the scene shows 冀B12345
    parts = ["ledger", "registry", "recognizer", "main.gpio", "main.worker", "receiver"]
    with running_box(tmp_path, _toml(port, "zhenshi", own_read=True), parts) as box:
        push = shapes.zhenshi_plate("冀B12346", 7, NOW, full=full, crop=crop, confidence=70)
        assert post(port, push, "application/json")[0] == 200
        push = shapes.zhenshi_plate("冀B12345", 8, NOW + 60, full=full, crop=crop)
        assert post(port, push, "application/json")[0] == 200
        assert wait_for(lambda: len(_rows(box)) == 2, 20)
        first, second = _rows(box)
    assert "camera_read_disagrees" in first.flags
    assert first.plate == "冀B12345" and first.raw_plate == "冀B12345", "the surer read wins"
    assert "camera_read_disagrees" not in second.flags and second.plate == "冀B12345"


def test_hostile_clients_are_refused_and_no_lane_stalls(tmp_path: Path) -> None:
    port = _free_port()
    with running_box(tmp_path, _toml(port, "zhenshi"), PARTS) as box:
        # 1. Not a configured camera: closed at accept, nothing read, nothing answered.
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            post(port, shapes.zhenshi_plate("冀B00001", 1, NOW), "application/json", "127.0.0.2")
        # 2. A slow body: headers, then a byte now and then, forever.
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{")  # fmt: skip
        cut = threading.Event()

        def trickle() -> None:
            try:
                for _ in range(40):
                    time.sleep(0.2)
                    slow.sendall(b" ")
            except OSError:
                cut.set()

        threading.Thread(target=trickle, daemon=True).start()
        # 3. A 100 MB body, streamed: refused from its headers.
        started = time.monotonic()

        def hundred_mb() -> Any:
            for _ in range(100):
                yield b"x" * (1024 * 1024)

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.putrequest("POST", "/push")
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(100 * 1024 * 1024))
            conn.endheaders()
            try:
                for chunk in hundred_mb():
                    conn.send(chunk)
            except OSError:
                pass  # the box closed the connection after its 413
            status = conn.getresponse().status
        except (ConnectionError, http.client.HTTPException):
            status = 413  # the refusal raced the client's writes; the box's count says so below
        finally:
            conn.close()
        assert status == 413 and time.monotonic() - started < 5
        # Meanwhile the lane and the camera are served as ever.
        t = time.monotonic()
        out = passage(box, plate="冀B77777", wait=5)
        assert out.seq is not None and time.monotonic() - t < 1.5
        status, _ = post(port, shapes.zhenshi_plate("冀B12345", 5, NOW), "application/json")
        assert status == 200 and wait_for(lambda: len(_rows(box)) == 2, 10)
        assert cut.wait(5), "the slow client was cut off within request_timeout_s"
        refused = box.health()["receiver"]["refused"]
        slow.close()
    assert refused["refused_address"] == 1 and refused["refused_size"] == 1
    assert refused["cut_slow"] == 1


def test_on_a_lane_with_a_loop_the_push_joins_the_loops_passage(tmp_path: Path) -> None:
    from edged.lane.passage import Trigger

    port = _free_port()
    full, crop = _images()
    toml = _toml(port, "zhenshi").replace('[gpio.ground_loop]\npin = "none"', "")
    toml = toml.replace("silence_s = 3", "silence_s = 3\njoin_s = 1.0")
    with running_box(tmp_path, toml, PARTS) as box:
        lane = box.lane("main")
        push = shapes.zhenshi_plate("冀B12345", 31, NOW, full=full, crop=crop)
        assert post(port, push, "application/json")[0] == 200
        time.sleep(0.3)
        assert _rows(box) == [], "a push on a loop lane waits for the loop"
        joined = lane.run(Trigger("loop"), wait=10)
        assert joined.plate == "冀B12345" and len(joined.record["snapshots"]) == 2
        started = time.monotonic()
        alone = lane.run(Trigger("loop"), wait=10)  # no push comes: after join_s, unread
        assert alone.plate is None and 0.9 < time.monotonic() - started < 3
        counts = box.receiver.spool.counts()
    assert counts == {"joined": 1}


def test_a_board_behind_the_zhenshi_camera_gets_its_frames_in_the_replies(tmp_path: Path) -> None:
    import base64

    from drivers.display.ledproto import FrameParser, decode_speech, decode_text

    port = _free_port()
    board = 'type = "led_voice"\nport = "camera"\nexpect_ack = false\nhold_s = 30'
    toml = _toml(port, "zhenshi") + f"[display]\n{board}\n"
    with running_box(tmp_path, toml, [*PARTS[:3], "main.display", *PARTS[3:]]) as box:
        from edged.admission.model import BlacklistEntry

        box.registry.add_blacklist(BlacklistEntry("冀A8K302", "超标排放，列入黑名单"))
        assert post(port, shapes.zhenshi_plate("冀A8K302", 41, NOW), "application/json")[0] == 200
        assert wait_for(lambda: len(_rows(box)) == 1, 10)
        assert wait_for(lambda: box.lane("main").status()["display"]["spoken"] == 1, 5)
        hb, ctype = shapes.zhenshi_heartbeat()
        status, body = post(port, hb, ctype)
    serial = json.loads(body)["Response_AlarmInfoPlate"]["serialData"]
    assert status == 200 and {s["serialChannel"] for s in serial} == {0}
    raw = b"".join(base64.b64decode(s["data"]) for s in serial)
    assert all(len(base64.b64decode(s["data"])) == s["dataLen"] for s in serial)
    frames = FrameParser().feed(raw)
    rows = dict(decode_text(f.data) for f in frames if f.cmd == 0x62)
    said = [decode_speech(f.data)[1] for f in frames if f.cmd == 0x30]
    assert rows[0] == "冀A8K302" and rows[1] == "禁止通行" and said[-1].startswith("冀A8K302,")
