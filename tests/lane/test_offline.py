"""Reads a Zhenshi camera kept while it could not reach the box become ledger rows.

Real HTTP clients post the camera's offline resends to a running box: each
read is a late row at the camera's time (the box not acting), or the
correction of the plateless passage the lane recorded for that vehicle; a
read the box could not record is refused, so the camera sends it again.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gpiozero import Device

from drivers.simulators import ZhenshiCameraSimulator
from edged import sitetime
from edged.admission.model import BlacklistEntry, Vehicle
from edged.cli.main import main
from edged.cli.status import _lane_lines
from edged.lane.offline import unread_row_near
from edged.lane.passage import Trigger
from edged.ledger.store import LedgerFullError
from edged.ledger.verify import verify_db
from tests.box_rig import passage, running_box
from tests.ptys import wait_for
from tests.push import shapes
from tests.push.test_receiver import PARTS, _free_port, _images, _toml, post

HOUR = 3600


def _rows(box: Any) -> list[Any]:
    return list(box.ledger.passages())


def _offline(port: int, plate: str, plateid: int, sec: int, **images: bytes) -> dict[str, Any]:
    status, body = post(
        port, shapes.zhenshi_plate(plate, plateid, sec, offline=True, **images), "application/json"
    )
    return {"status": status, **(json.loads(body) if status == 200 else {})}


def _at(sec: float) -> str:
    return sitetime.local(datetime.fromtimestamp(sec).astimezone()).isoformat(
        timespec="milliseconds"
    )


def test_the_nearest_unread_row_in_the_window_is_picked() -> None:
    t = datetime.fromisoformat("2026-12-01T08:00:00+08:00")

    def row(
        seq: int, off_s: float, plate: str | None = None, fix: int | None = None, by: str = "none"
    ) -> Any:
        at = (t + timedelta(seconds=off_s)).isoformat()
        rec = SimpleNamespace(plate=plate, correction_of=fix, time=at, id_source=by)
        return SimpleNamespace(seq=seq, record=rec)

    rows = [
        row(1, -8, by="manual"),  # a guard's open that named no plate
        row(2, 3),
        row(3, 1, plate="冀B12345", by="plate"),
        row(4, 0, fix=9),
        row(5, -2),
        row(6, 0.5, by="rfid"),  # a machine without a plate, known by its tag
    ]
    assert unread_row_near(rows, t, 10, set()).seq == 5, "nearest without a plate"
    assert unread_row_near(rows, t, 10, {5}).seq == 2, "a row already corrected is left alone"
    assert unread_row_near(rows, t, 1.5, {5}) is None, "nothing within the window"
    assert unread_row_near(rows, t, 10, {2, 5}).seq == 1
    assert unread_row_near(rows, t, 10, {1, 2, 5}) is None


def test_offline_reads_become_late_rows_and_never_move_the_barrier(tmp_path: Path) -> None:
    port = _free_port()
    full, crop = _images()
    now = int(datetime.now().timestamp())
    with running_box(tmp_path, _toml(port, "zhenshi"), PARTS) as box:
        relay = Device.pin_factory.pin(17)
        box.registry.upsert_vehicles([Vehicle("冀B12345", emission_stage="国6a", vin="V1")])
        box.registry.add_blacklist(BlacklistEntry("冀A8K302", "超标排放，列入黑名单"))
        since, until = (datetime.now().astimezone() + timedelta(hours=h) for h in (-3, 3))
        box.registry.declare_cargo("冀B12345", "焦煤", until, "logistics", valid_from=since, uses=1)
        sent = _offline(port, "冀B12345", 501, now - 2 * HOUR, full=full, crop=crop)
        assert sent["status"] == 200
        reply = sent["Response_AlarmInfoPlate"]["ContinuePushOffline"]
        assert reply == {"plateid": 501, "continue": 1}
        assert _offline(port, "冀A8K302", 502, now - HOUR)["status"] == 200
        assert _offline(port, "冀A8K302", 502, now - HOUR)["status"] == 200  # sent twice
        assert _offline(port, "_无_", 503, now - HOUR // 2)["status"] == 200  # saw no plate
        assert _offline(port, "冀B12399", 504, 0)["status"] == 200  # a camera without a time
        rows = _rows(box)
        cam = box.lane("main").status()["camera"]["pushes"]
        spool = box.receiver.spool.counts()
        images = box.ctx.ledger_service.images_dir
        opened = [s for s in relay.states if s.state]
        now_in = passage(box, plate="冀B12345")  # the truck at the gate today
    assert now_in.record["cargo"] == "焦煤", "the late row used up no one-passage declaration"
    assert [r.seq for r in rows] == [1, 2, 3, 4], "one row a read; the resend is a duplicate"
    ok, banned, plateless, untimed = (r.record for r in rows)
    assert "camera_clock_off" in untimed.flags and "the camera gave no time" in untimed.reason_en
    assert "camera_clock_off" not in ok.flags
    assert (plateless.plate, plateless.id_source, plateless.decision) == (None, "none", "hold")
    assert "offline_read" in plateless.flags and plateless.missing["plate"]
    assert ok.time == _at(now - 2 * HOUR) and banned.time == _at(now - HOUR), "the camera's time"
    assert (ok.plate, ok.vin, ok.id_source, ok.identified_by) == (
        "冀B12345",
        "V1",
        "plate",
        "exact",
    )
    assert (ok.decision, ok.reason_code, ok.cargo) == ("hold", "offline_read", "焦煤")
    assert {"offline_read", "would_allow"} <= set(ok.flags)
    assert "本机未控制道闸" in ok.reason_zh and "would have said allow" in ok.reason_en
    assert {"offline_read", "would_deny", "blacklisted"} <= set(banned.flags)
    assert "rules would have said deny" in banned.reason_en
    assert ok.missing["weight_kg"].startswith("read while the camera could not reach the box")
    shots = {Path(s.path).name.rsplit("_", 1)[1]: s for s in ok.snapshots}
    assert shots["frame.jpg"].sha256 == hashlib.sha256(full).hexdigest()
    assert (images / shots["plate.jpg"].path).read_bytes() == crop
    assert banned.snapshots == () and banned.missing["snapshots"] == "the camera pushed no image"
    assert opened == [], "a read from the past opens nothing"
    assert cam == {"offline": 4, "offline_record": 4, "duplicate_id": 1}
    assert spool == {"offline_record": 4}
    assert verify_db(tmp_path / "data" / "ledger.db").ok, "rows out of time order chain as any"


def test_an_offline_read_corrects_the_unread_passage_of_its_vehicle(
    tmp_path: Path, capsys: Any
) -> None:
    port = _free_port()
    full, crop = _images()
    toml = _toml(port, "zhenshi").replace('[gpio.ground_loop]\npin = "none"', "")
    toml = toml.replace("silence_s = 3", "silence_s = 3\njoin_s = 0.2")
    with running_box(tmp_path, toml, PARTS) as box:
        box.registry.upsert_vehicles([Vehicle("冀B12345", emission_stage="国6a", vin="V1")])
        unread = box.lane("main").run(Trigger("loop"), wait=10)  # the camera is away
        assert unread.plate is None
        at = datetime.fromisoformat(unread.record["time"]).timestamp()
        sent = _offline(port, "冀B12345", 601, int(at) + 2, full=full, crop=crop)
        other = _offline(port, "冀B66666", 602, int(at) + 3)  # the unread row is taken
        far = _offline(port, "冀B77777", 603, int(at) - 600)
        assert sent["status"] == other["status"] == far["status"] == 200
        rows = _rows(box)
        current = box.ledger.current(unread.seq)
        audit = [json.loads(f) for _, _, _, f in box.ledger.audit_rows()]
        cam = box.lane("main").status()["camera"]["pushes"]
    assert [r.seq for r in rows] == [1, 2, 3, 4]
    fix = rows[1].record
    assert current is not None and current.seq == 2 and fix.correction_of == 1
    assert (fix.plate, fix.vin, fix.id_source, fix.operator) == ("冀B12345", "V1", "plate", "edged")
    assert fix.time == unread.record["time"], "the passage keeps its own time"
    assert "offline_read" in fix.flags and "plate" not in fix.missing
    assert [hashlib.sha256(full).hexdigest(), hashlib.sha256(crop).hexdigest()] == [
        s.sha256 for s in fix.snapshots
    ]
    corr = [a for a in audit if a["action"] == "correction"]
    assert len(corr) == 1 and corr[0]["details"]["original_seq"] == 1
    assert "601" in corr[0]["details"]["reason"] and corr[0]["actor"] == "edged"
    assert [(r.record.plate, r.record.reason_code) for r in rows[2:]] == [
        ("冀B66666", "offline_read"),
        ("冀B77777", "offline_read"),
    ]
    assert cam["offline_joined"] == 1 and cam["offline_record"] == 2
    # an inspector lists them: the corrected passage and the two late rows
    capsys.readouterr()
    db = tmp_path / "data" / "ledger.db"
    assert (
        main(["ledger", "query", "--db", str(db), "--flag", "offline_read", "--format", "json"])
        == 0
    )
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["seq"], r["plate"], r["correction_of"]) for r in found] == [
        (2, "冀B12345", 1),
        (3, "冀B66666", None),
        (4, "冀B77777", None),
    ]


def test_a_read_the_box_could_not_record_is_refused_and_taken_when_sent_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    now = int(datetime.now().timestamp())
    cam = ZhenshiCameraSimulator(f"http://127.0.0.1:{port}/")
    cam.offline = True  # its link is down: it keeps what it reads
    for i in range(3):
        cam.read(f"冀B1234{i}", now - HOUR + 60 * i)
    cam.offline = False
    with running_box(tmp_path, _toml(port, "zhenshi"), PARTS) as box:
        real, calls = box.ledger.append_passage, []

        def full_on_the_second(rec: Any) -> Any:
            calls.append(rec.plate)
            if len(calls) == 2:
                raise LedgerFullError("the disk is full")
            return real(rec)

        monkeypatch.setattr(box.ledger, "append_passage", full_on_the_second)
        first = cam.replay()
        left = [r["plate"] for r in cam.kept]
        events = [e for e in box.ledger.recent_events(20) if e.kind == "offline_read_not_recorded"]
        second = cam.replay()
        rows = _rows(box)
        spool = box.receiver.spool.counts()
    assert (first, left) == (1, ["冀B12341", "冀B12342"]), "the camera stops at the refused read"
    assert cam.replies[1][0] == 503, "not recorded: the camera keeps it and sends it again"
    assert len(events) == 1 and events[0].details["record_id"] == "2"
    assert second == 2 and cam.kept == []
    assert [r.record.plate for r in rows] == ["冀B12340", "冀B12341", "冀B12342"]
    assert spool == {"offline_record": 3}, "the refused read, sent again, was recorded once"


def test_a_camera_whose_clock_is_off_is_told_and_its_late_rows_say_so(tmp_path: Path) -> None:
    port = _free_port()
    toml = _toml(port, "zhenshi").replace('[gpio.ground_loop]\npin = "none"', "")
    toml = toml.replace("silence_s = 3", "silence_s = 3\njoin_s = 1.0")
    skew = -600  # the camera's clock runs ten minutes behind the box's
    with running_box(tmp_path, toml, PARTS) as box:
        lane = box.lane("main")
        now = datetime.now().timestamp()
        live = shapes.zhenshi_plate("冀B11111", 801, int(now + skew))
        assert post(port, live, "application/json")[0] == 200
        lane.run(Trigger("loop"), wait=10)  # takes the live push: a passage with its plate
        unread = lane.run(Trigger("loop"), wait=10)  # then the camera drops off: unread
        at = datetime.fromisoformat(unread.record["time"]).timestamp()
        joined = _offline(port, "冀B12345", 802, int(at + skew) + 1)  # stamped by its clock
        late = _offline(port, "冀B66666", 803, int(at + skew) - 3600)
        assert joined["status"] == late["status"] == 200
        cam = lane.status()["camera"]
        events = [e for e in box.ledger.recent_events(50) if e.kind == "camera_clock_off"]
        rows = _rows(box)
        reply = {"lanes": {"main": lane.status()}}
    assert -602 <= cam["clock_offset_s"] <= -598, cam
    assert len(events) == 1 and "10 min behind" in events[0].message
    assert "set the camera's NTP server" in events[0].message
    fix, row = rows[2].record, rows[3].record
    assert (fix.correction_of, fix.plate) == (2, "冀B12345"), "joined at the box's time"
    assert "camera_clock_off" not in fix.flags, "the corrected row keeps the box's own time"
    assert row.plate == "冀B66666" and {"offline_read", "camera_clock_off"} <= set(row.flags)
    assert "the camera's clock was 10 min behind" in row.reason_en
    line = next(x for x in _lane_lines("main", reply["lanes"]["main"]) if "camera:" in x)
    assert line.endswith("; clock 10 min behind the box's"), line


def _loop_lane(port: int, offline_join_s: float = 4.0) -> str:
    toml = _toml(port, "zhenshi").replace('[gpio.ground_loop]\npin = "none"', "")
    return toml.replace(
        "silence_s = 3", f"silence_s = 3\njoin_s = 1.0\noffline_join_s = {offline_join_s}"
    )


def test_a_push_no_loop_passage_takes_becomes_a_row_or_names_the_unread_passage(
    tmp_path: Path,
) -> None:
    port = _free_port()
    full, crop = _images()
    now = int(datetime.now().timestamp())
    with running_box(tmp_path, _loop_lane(port), PARTS) as box:
        lane = box.lane("main")
        box.registry.upsert_vehicles(
            [Vehicle(p, emission_stage="国6a") for p in ("冀B12345", "冀B88888")]
        )
        # 1. The truck stopped short of the loop: the camera's read is all there is.
        push = shapes.zhenshi_plate("冀B12345", 901, now, full=full, crop=crop)
        assert post(port, push, "application/json")[0] == 200
        assert wait_for(lambda: len(_rows(box)) == 1, 10)
        # 2. The truck reached the loop after the join window: the loop's passage is
        # unread, and the read that came before it names it.
        assert post(port, shapes.zhenshi_plate("冀B66666", 902, now), "application/json")[0] == 200
        time.sleep(1.5)  # longer than join_s: the loop comes too late for it
        unread = lane.run(Trigger("loop"), wait=10)
        assert wait_for(lambda: len(_rows(box)) == 3, 10)
        # 3. A read displaced by the next before any loop passage took it is not dropped.
        for pid, plate in ((903, "冀B77777"), (904, "冀B88888")):
            push = shapes.zhenshi_plate(plate, pid, now)
            assert post(port, push, "application/json")[0] == 200
        taken = lane.run(Trigger("loop"), wait=10)
        assert wait_for(lambda: len(_rows(box)) == 5, 10)
        rows = _rows(box)
        events = [e.kind for e in box.ledger.recent_events(50)]
        spool = box.receiver.spool.counts()
        opened = [s for s in Device.pin_factory.pin(17).states if s.state]
    alone = rows[0].record
    assert (alone.plate, alone.decision, alone.reason_code) == ("冀B12345", "hold", "unjoined_read")
    assert {"unjoined_read", "would_allow"} <= set(alone.flags) and len(alone.snapshots) == 2
    assert alone.missing["weight_kg"] == "no vehicle came over the loop: not weighed"
    assert "no vehicle came over the loop" in alone.reason_en
    assert unread.plate is None and rows[1].seq == unread.seq
    fix = rows[2].record
    assert (fix.correction_of, fix.plate, fix.operator) == (unread.seq, "冀B66666", "edged")
    assert "unjoined_read" in fix.flags
    assert taken.plate == "冀B88888", "the loop passage takes the latest read"
    assert (rows[4].record.plate, rows[4].record.reason_code) == ("冀B77777", "unjoined_read")
    assert events.count("camera_read_unjoined") == 3
    assert spool == {"unjoined_record": 2, "unjoined_joined": 1, "joined": 1}
    assert len(opened) == 1, "only the loop passage with a plate opened the barrier"


def test_a_hikvision_cameras_retransmitted_reads_are_history_not_trucks(tmp_path: Path) -> None:
    port = _free_port()
    full, crop = _images()
    earlier = (datetime.now().astimezone() - timedelta(hours=3)).isoformat(timespec="seconds")
    with running_box(tmp_path, _toml(port, "hikvision"), PARTS) as box:
        relay = Device.pin_factory.pin(17)
        box.registry.upsert_vehicles([Vehicle("冀B12345", emission_stage="国6a")])
        xml = shapes.hik_alert("冀B12345", earlier, uid="r-1", retransmitted=True)
        body, ctype = shapes.hik_multipart(xml, full, crop)
        assert post(port, body, ctype) == (200, b"OK\n")
        rows = _rows(box)
        opened = [s for s in relay.states if s.state]
        cam = box.lane("main").status()["camera"]["pushes"]
    assert len(rows) == 1 and opened == [], "sent after the link came back: no barrier moves"
    row = rows[0].record
    assert (row.plate, row.reason_code, row.decision) == ("冀B12345", "offline_read", "hold")
    assert datetime.fromisoformat(row.time) == datetime.fromisoformat(earlier)
    assert len(row.snapshots) == 2 and cam == {"offline": 1, "offline_record": 1}


def test_a_read_sent_as_live_but_taken_long_before_moves_no_barrier(tmp_path: Path) -> None:
    port = _free_port()
    now = int(datetime.now().timestamp())
    with running_box(tmp_path, _toml(port, "zhenshi"), PARTS) as box:
        relay = Device.pin_factory.pin(17)
        box.registry.upsert_vehicles(
            [Vehicle(p, emission_stage="国6a") for p in ("冀B12345", "冀B66666")]
        )
        # a live read first: the camera's clock is right
        assert post(port, shapes.zhenshi_plate("冀B12345", 1001, now), "application/json")[0] == 200
        assert wait_for(lambda: len(_rows(box)) == 1, 10)
        time.sleep(0.6)  # the relay pulse of the first passage is over
        opens = len([s for s in relay.states if s.state])
        # then a read taken two hours ago, sent without the offline mark
        status, body = post(
            port, shapes.zhenshi_plate("冀B66666", 1002, now - 7200), "application/json"
        )
        assert status == 200 and json.loads(body)["Response_AlarmInfoPlate"]["plateid"] == 1002
        time.sleep(0.5)
        rows = _rows(box)
        events = [e for e in box.ledger.recent_events(20) if e.kind == "camera_read_stale"]
        after = len([s for s in relay.states if s.state])
        cam = box.lane("main").status()["camera"]
    assert opens == after == 1, "the old read opened nothing"
    late = rows[1].record
    assert (late.plate, late.reason_code) == ("冀B66666", "offline_read")
    assert datetime.fromisoformat(late.time).timestamp() == now - 7200
    assert len(events) == 1 and "2 h 0 min before it came" in events[0].message
    assert cam["pushes"]["stale"] == 1 and abs(cam["clock_offset_s"]) < 5, "the clock is right"
