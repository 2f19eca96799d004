"""Supervisor restarts, heartbeat judgement and the systemd notify protocol."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from edged.app.lifecycle import Heartbeat, judge_previous
from edged.app.sdnotify import Notifier, watchdog_interval
from edged.app.supervisor import Supervisor


class Flaky:
    """A component whose device is missing for the first ``fail`` starts."""

    def __init__(self, name: str, fail: int) -> None:
        self.name, self.fail, self.starts, self.stops = name, fail, 0, 0

    def start(self) -> None:
        self.starts += 1
        if self.starts <= self.fail:
            raise OSError("/dev/ttyUSB0: no such device")

    def stop(self) -> None:
        self.stops += 1


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_failed_component_is_retried_with_backoff_and_recovers() -> None:
    clock = Clock()
    changes: list[tuple[str, str]] = []
    sup = Supervisor(
        backoff_min=1, backoff_max=8, clock=clock, on_change=lambda n, s, e: changes.append((n, s))
    )
    ledger, rfid = Flaky("ledger", 0), Flaky("rfid", 3)
    sup.add(ledger, critical=True)
    sup.add(rfid)
    sup.start_all()
    assert sup.states()["rfid"]["state"] == "failed"
    assert sup.healthy()  # a missing reader does not make the gate unhealthy
    sup.tick()
    assert rfid.starts == 1  # backoff not over
    clock.t = 1.0
    sup.tick()
    assert rfid.starts == 2
    clock.t = 2.5
    sup.tick()
    assert rfid.starts == 2  # second backoff is 2 s: next try at 3.0
    clock.t = 3.0
    sup.tick()
    clock.t = 10.0
    sup.tick()
    assert rfid.starts == 4
    assert sup.state("rfid") == "running"
    assert ("rfid", "running") in changes
    assert sup.stop_all(2) == []
    assert ledger.stops == 1 and rfid.stops == 1


def test_critical_failure_makes_daemon_unhealthy() -> None:
    sup = Supervisor(clock=Clock())
    sup.add(Flaky("ledger", 5), critical=True)
    sup.start_all()
    assert not sup.healthy()


def test_runtime_failure_report_restarts_later() -> None:
    clock = Clock()
    sup = Supervisor(backoff_min=2, clock=clock)
    cam = Flaky("camera", 0)
    sup.add(cam)
    sup.start_all()
    sup.report_failure("camera", "no frame for 2 s")
    assert sup.states()["camera"] == {"state": "failed", "error": "no frame for 2 s", "failures": 1}
    assert cam.stops == 1
    clock.t = 2.0
    sup.tick()
    assert sup.state("camera") == "running"


def test_heartbeat_reports_clean_and_unclean_stops(tmp_path: Path) -> None:
    hb = Heartbeat(tmp_path / "hb.json")
    assert judge_previous(hb.read(), 100.0).first_start
    hb.beat()
    state = hb.read()
    assert state is not None
    prev = judge_previous(state, state["last_heartbeat"] + 42)
    assert not prev.clean and prev.down_seconds == 42.0
    hb.mark_clean()
    state = hb.read()
    assert state is not None
    prev = judge_previous(state, state["stopped_at"] + 7)
    assert prev.clean and prev.down_seconds == 7.0 and prev.stopped_at


def test_corrupt_heartbeat_counts_as_unclean(tmp_path: Path) -> None:
    path = tmp_path / "hb.json"
    path.write_text('{"pid": 1, "last_hea')
    prev = judge_previous(Heartbeat(path).read(), 10.0)
    assert not prev.first_start and not prev.clean


def test_notifier_speaks_the_notify_protocol(tmp_path: Path) -> None:
    addr = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(addr)
    server.settimeout(2)
    n = Notifier(addr)
    assert n.ready("2 components running")
    assert server.recv(4096) == b"READY=1\nSTATUS=2 components running"
    assert n.watchdog()
    assert server.recv(4096) == b"WATCHDOG=1"
    n.close()
    server.close()


def test_notifier_is_silent_outside_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not Notifier().ready()


def test_watchdog_interval_is_half_of_watchdog_sec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 10.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog_interval() is None
