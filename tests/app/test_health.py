"""Health figures from files the kernel and systemd write, read from stand-ins."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from edged.app.health import (
    RateMeter,
    clock_status,
    clock_synchronized,
    cpu_temperature_c,
    disk_use,
)
from edged.cli.status import format_status
from edged.hj212.clock import OffsetClock


def test_cpu_temperature_from_thermal_zone(tmp_path: Path) -> None:
    zone = tmp_path / "temp"
    zone.write_text("48312\n")
    assert cpu_temperature_c(zone) == 48.3
    zone.write_text("61\n")  # a vendor kernel that reports whole degrees
    assert cpu_temperature_c(zone) == 61.0
    zone.write_text("not a number\n")
    assert cpu_temperature_c(zone) is None
    assert cpu_temperature_c(tmp_path / "missing") is None


def test_disk_use_of_the_data_dir(tmp_path: Path) -> None:
    use = disk_use(tmp_path)
    assert use is not None
    assert use["path"] == str(tmp_path)
    assert 0 < use["free_mb"] <= use["total_mb"]
    assert 0 <= use["used_pct"] <= 100
    assert disk_use(tmp_path / "gone") is None


def test_ntp_marker_and_unknown(tmp_path: Path) -> None:
    marker = tmp_path / "synchronized"
    assert clock_synchronized(marker, kernel=False) is None
    marker.touch()
    assert clock_synchronized(marker, kernel=False) is True
    assert clock_status(marker=marker, kernel=False)["ntp_synchronized"] is True


def test_platform_offset_only_once_a_platform_set_the_time(tmp_path: Path) -> None:
    clock = OffsetClock()
    status = clock_status(clock, None, marker=tmp_path / "none", kernel=False)
    assert status == {
        "ntp_synchronized": None,
        "platform_offset_s": None,
        "platform_set_at": None,
    }
    clock.set(datetime.now() + timedelta(seconds=90))
    set_at = datetime.now()
    status = clock_status(clock, set_at, marker=tmp_path / "none", kernel=False)
    assert 89 < status["platform_offset_s"] < 91
    assert status["platform_set_at"] == set_at.isoformat(timespec="seconds")


def test_rate_meter_counts_frames_in_its_window() -> None:
    meter = RateMeter(window=2.0)
    assert meter.rate(now=0.0) == 0.0
    for i in range(21):  # 10 frames a second for 2 s
        meter.tick(now=100.0 + i * 0.1)
    assert 9.5 <= meter.rate(now=102.0) <= 10.0
    # the camera stalls: the figure falls, then reaches zero once the window is empty
    assert meter.rate(now=103.0) < 9.0
    assert meter.rate(now=104.5) == 0.0


def test_status_lines_name_every_figure() -> None:
    reply = {
        "ok": True,
        "uptime_s": 3725.0,
        "passages": 3,
        "components": {"ledger": {"state": "running", "error": ""}},
        "camera": {"state": "lost", "fps": 0.0, "source": "opencv:0", "error": "no frame"},
        "last_read": {
            "plate": "冀B12345",
            "confidence": 0.97,
            "valid": True,
            "source": "camera",
            "time": "2024-05-01T08:00:00.000+08:00",
        },
        "last_passage": {"plate": "冀B12345", "decision": "allow", "seq": 3, "time": "t"},
        "gate_queue": 0,
        "queues": {"gate": 0, "mqtt_outbox": 12, "hj212_outbox": {"city": 4}},
        "outbox": {"connected": False, "backlog": 12},
        "hj212": {"city": {"connected": True}},
        "datalogger": {"fan1": "comm_fault"},
        "disk": {
            "path": "/var/lib/edged",
            "total_mb": 29000.0,
            "free_mb": 20000.0,
            "used_pct": 31.0,
        },
        "cpu_temp_c": None,
        "clock": {"ntp_synchronized": False, "platform_offset_s": -2.5, "platform_set_at": "x"},
        "ledger_head": {"passages": {"seq": 3, "hash": "ab" * 32}},
    }
    text = "\n".join(format_status(reply))
    for line in (
        "uptime: 01:02:05",
        "component ledger: running",
        "camera: lost, 0.0 fps (no frame)",
        "last read: 冀B12345 conf 0.97 (camera)",
        "last passage: seq 3 冀B12345 allow",
        "queue gate: 0",
        "queue mqtt outbox: 12 (NOT connected)",
        "queue hj212 city: 4 (connected)",
        "meter fan1: comm_fault",
        "disk /var/lib/edged: 20000 MB free of 29000 MB (31.0% used)",
        "cpu temperature: unknown",
        "clock ntp: NOT synchronised",
        "clock platform offset: -2.5 s",
        "ledger passages: seq 3 abababab",
    ):
        assert line in text, line
    # connected but the broker has not (or never) acknowledged the command topic
    reply["outbox"] = {"connected": True, "listening": False, "backlog": 12}
    text = "\n".join(format_status(reply))
    assert "queue mqtt outbox: 12 (connected, commands NOT subscribed" in text
    reply["outbox"]["listening"] = True
    assert "queue mqtt outbox: 12 (connected)" in "\n".join(format_status(reply))
