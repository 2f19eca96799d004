"""``edged status`` prints every figure of the health status as lines a technician reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edged.cli.status import format_status


def _reply() -> dict[str, Any]:
    return {
        "ok": True,
        "site": {"id": "p1", "name": "演示钢铁", "gate": "east", "gate_name": "东门"},
        "uptime_s": 3725.0,
        "passages": 3,
        "alert_level": "orange",
        "in_plant": {
            "count": 2,
            "vehicles": [
                {"plate": "冀B12345", "since": "t1", "entry_seq": 1, "lane": "entry"},
                {"plate": "晋C55667", "since": "t2", "entry_seq": 2, "lane": "entry"},
            ],
        },
        "components": {"ledger": {"state": "running", "error": ""}},
        "lanes": {
            "entry": {
                "direction": "in",
                "passages": 2,
                "queue": 0,
                "camera": {
                    "state": "lost",
                    "fps": 0.0,
                    "decoded_fps": 0.0,
                    "decode": "on_demand",
                    "frame_age_ms": 5100,
                    "passage_frame_age_ms": 31.5,
                    "source": "opencv:0",
                    "error": "no frame",
                },
                "last_read": {
                    "plate": "冀B12345",
                    "confidence": 0.97,
                    "valid": True,
                    "source": "camera",
                    "time": "2024-05-01T08:00:00.000+08:00",
                },
                "last_passage": {
                    "plate": "冀B12345",
                    "decision": "allow",
                    "direction": "in",
                    "seq": 3,
                    "time": "t",
                },
                "rfid": "entry.rfid",
                "scale": {"kg": 31000, "stable_kg": 31000},
                "display": {
                    "type": "led_voice",
                    "state": "failed",
                    "error": "no answer from the board",
                    "showing": [],
                    "shown": 7,
                    "spoken": 2,
                    "failures": 1,
                    "dropped": 0,
                },
            },
            "exit": {
                "direction": "out",
                "passages": 1,
                "queue": 1,
                "camera": {
                    "state": "ok",
                    "source": "zhenshi:10.0.0.5",
                    "silent_s": 2.0,
                    "pushes": {"new": 12, "duplicate_id": 3},
                    "error": None,
                },
                "video": {
                    "recorder": "NVR 10.0.0.64",
                    "channel": "3",
                    "clips": {
                        "state": "ok",
                        "error": None,
                        "source": "rtsp://***@10.0.0.5/ch1",
                        "buffered_s": 9.6,
                        "clips": 12,
                        "failed": 0,
                        "pending": 0,
                    },
                },
                "last_read": None,
                "last_passage": None,
                "rfid": "entry.rfid",
                "scale": None,
            },
        },
        "queues": {
            "lanes": {"entry": 0, "exit": 1},
            "mqtt_outbox": 12,
            "hj212_outbox": {"city": 4},
        },
        "outbox": {"connected": False, "backlog": 12},
        "hj212": {"city": {"connected": True}},
        "datalogger": {"fan1": "comm_fault", "fan2": "ok"},
        "meters": {
            "fan1": {
                "state": "comm_fault",
                "polls": 40,
                "ok": 30,
                "success_rate": 0.75,
                "recent_success_rate": 0.75,
                "last_ok": "2024-05-01T08:00:00+08:00",
                "last_error": "no response (after 3 tries)",
            },
            "fan2": {
                "state": "ok",
                "polls": 40,
                "ok": 40,
                "success_rate": 1.0,
                "recent_success_rate": 1.0,
                "last_ok": "2024-05-01T08:00:00+08:00",
                "last_error": None,
            },
        },
        "receiver": {
            "listening": "0.0.0.0:8088",
            "in_flight": 1,
            "refused": {"refused_address": 2},
            "spool_mb": 3.5,
        },
        "clips": {"clips": 12, "mb": 40.1, "days_held": 61.5, "retention_days": 183, "short": True},
        "disk": {
            "path": "/var/lib/edged",
            "total_mb": 29000.0,
            "free_mb": 20000.0,
            "used_pct": 31.0,
        },
        "cpu_temp_c": None,
        "memory": {"resident_mb": 176.4, "model_memory_releases": 3},
        "clock": {"ntp_synchronized": False, "platform_offset_s": -2.5, "platform_set_at": "x"},
        "ledger_head": {"passages": {"seq": 3, "hash": "ab" * 32}},
    }


def test_status_lines_name_every_figure() -> None:
    reply = _reply()
    lines = format_status(reply)
    for line in (
        "site: p1 演示钢铁, gate east 东门",
        "uptime: 01:02:05",
        "passages: 3",
        "alert level: orange",
        "component ledger: running",
        "lane entry: in, 2 passages, queue 0",
        "  camera: lost, opencv:0, 0.0 fps (no frame); on_demand, 0.0 decoded/s, newest frame"
        " 5100 ms old,"
        " passage frames p95 31.5 ms after arrival",
        "  last read: 冀B12345 conf 0.97 (camera) at 2024-05-01T08:00:00.000+08:00",
        "  last passage: seq 3 冀B12345 in allow at t",
        "  rfid: entry.rfid",
        "  scale: 31000 kg stable",
        "  display: led_voice failed (no answer from the board), 7 screens, 2 spoken,"
        " 1 failures, 0 dropped",
        "lane exit: out, 1 passages, queue 1",
        "  camera: ok, zhenshi:10.0.0.5 pushes: duplicate_id 3, new 12",
        "  last read: none yet",
        "  video: NVR 10.0.0.64 channel 3; clips ok, 12 written, 0 failed, 9.6 s buffered",
        "  last passage: none yet",
        "in plant: 2 vehicles (冀B12345, 晋C55667)",
        "queue mqtt outbox: 12 (NOT connected)",
        "queue hj212 city: 4 (connected)",
        "meter fan1: comm_fault, 30 of 40 polls answered (75.0%, last 100: 75.0%),"
        " last error: no response (after 3 tries)",
        "meter fan2: ok, 40 of 40 polls answered (100.0%, last 100: 100.0%)",
        "receiver 0.0.0.0:8088: 1 open, spool 3.5 MB, refused: refused_address 2",
        "clips: 12 (40.1 MB), disk holds 61.5 days at the current rate, SHORT of the 183 days kept",
        "disk /var/lib/edged: 20000 MB free of 29000 MB (31.0% used)",
        "cpu temperature: unknown",
        "memory: 176.4 MB resident, plate models' memory given back 3 times",
        "clock ntp: NOT synchronised",
        "clock platform offset: -2.5 s (set x)",
    ):
        assert line in lines, (line, lines)
    assert any(line.startswith("ledger passages: seq 3 abababab") for line in lines)
    # the exit lane's lines come after the entry lane's, each under its own lane line
    assert lines.index("lane exit: out, 1 passages, queue 1") > lines.index(
        "  scale: 31000 kg stable"
    )


def test_status_says_when_an_https_cameras_certificate_ends() -> None:
    reply = _reply()
    camera = reply["lanes"]["entry"]["camera"]
    camera.update(state="ok", source="snapshot:https://10.0.0.5/picture")
    camera["certificate_expires"] = "2027-11-30T08:00:00+08:00"
    text = "\n".join(format_status(reply))
    assert "after arrival; https certificate ends 2027-11-30" in text


def test_status_says_when_commands_are_not_subscribed() -> None:
    reply = _reply()
    # connected but the broker has not (or never) acknowledged the command topic
    reply["outbox"] = {"connected": True, "listening": False, "backlog": 12}
    text = "\n".join(format_status(reply))
    assert "queue mqtt outbox: 12 (connected, commands NOT subscribed" in text
    reply["outbox"]["listening"] = True
    assert "queue mqtt outbox: 12 (connected)" in "\n".join(format_status(reply))


def test_status_finds_the_socket_through_the_config_and_prints_only_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edged.cli.main import main
    from tests.box_rig import base_toml, running_box

    cfg = tmp_path / "edged.toml"
    extra = '[camera]\ntype = "none"\n'
    cfg.write_text(base_toml(tmp_path) + extra, encoding="utf-8")
    with running_box(tmp_path, extra):
        capsys.readouterr()
        assert main(["status", "--json", "--config", str(cfg)]) == 0
        out = capsys.readouterr().out
    status = json.loads(out)  # stdout holds the JSON object and nothing else
    assert status["site"]["id"] == "p1" and status["ok"] is True


def test_status_without_a_config_tries_the_installed_socket(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A technician types ``edged status`` on a box where no config file is readable:
    it must try the installed daemon's socket and say plainly that nothing answers."""
    from edged.cli.main import main
    from edged.config import load

    installed = Path("/var/lib/edged/state/control.sock")
    if installed.exists():
        pytest.skip("a daemon is installed on this machine")
    monkeypatch.delenv("EDGED_CONFIG", raising=False)
    monkeypatch.setattr(load, "DEFAULT_PATH", str(tmp_path / "edged.toml"))
    assert main(["status"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"no daemon answers on {installed} (no such socket)" in captured.err
    assert "systemctl status edged" in captured.err and "Traceback" not in captured.err
    # an explicit config that is missing is an error of its own, not a silent default
    assert main(["status", "--config", str(tmp_path / "other.toml")]) == 2
    assert "file not found" in capsys.readouterr().err
