"""A lane's display: a refused passage is shown and spoken; a dead display costs the barrier nothing."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero import Device

from drivers.simulators import LedVoiceSimulator
from edged.admission.model import BlacklistEntry, Vehicle
from tests.box_rig import passage, running_box
from tests.ptys import wait_for

PARTS = ["ledger", "registry", "main.gpio", "main.display", "main.worker"]


def _lane_toml(display: str) -> str:
    return f"""
[camera]
type = "none"
[mqtt]
enabled = false
[display]
{display}
"""


@pytest.fixture
def board() -> Iterator[tuple[LedVoiceSimulator, str]]:
    master, slave = os.openpty()
    sim = LedVoiceSimulator(master).start()
    yield sim, os.ttyname(slave)
    sim.close()
    for fd in (master, slave):
        os.close(fd)


def test_a_refused_passage_is_shown_and_spoken_then_the_idle_screen(
    tmp_path: Path, board: tuple[LedVoiceSimulator, str]
) -> None:
    sim, port = board
    display = f"""type = "led_voice"
port = "{port}"
hold_s = 1
messages = {{ blacklisted = "黑名单车辆" }}
prompts = {{ blacklisted = "{{plate}},黑名单车辆,禁止入场" }}
"""
    with running_box(tmp_path, _lane_toml(display), PARTS) as box:
        assert wait_for(lambda: len(sim.screen()) == 4, 5), sim.screen()
        assert sim.screen()[:2] == ["p1", "g1"] and sim.screen()[3] == "无重污染预警"
        box.registry.add_blacklist(BlacklistEntry("冀A8K302", "超标排放，列入黑名单"))
        out = passage(box, plate="冀A8K302")
        assert out.decision == "deny" and out.reason_code == "blacklisted"
        assert wait_for(lambda: sim.spoken == ["冀A8K302,黑名单车辆,禁止入场"], 5), sim.spoken
        assert sim.screen()[:3] == ["冀A8K302", "禁止通行", "黑名单车辆"]
        passage(box, plate="冀B99999")  # not registered: held, and said so
        assert wait_for(lambda: len(sim.spoken) == 2, 5)
        assert sim.screen()[1] == "请等待确认"
        assert wait_for(lambda: sim.screen()[:2] == ["p1", "g1"], 5), "idle after hold_s"
        status = box.lane("main").status()["display"]
        assert status["state"] == "ok" and status["spoken"] == 2 and status["failures"] == 0
    assert sim.bad_frames == 0


class _BlackHole:
    """A board on TCP that takes the connection and never answers a frame."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.server.close()
        for c in self.conns:
            c.close()


def test_a_dead_display_changes_nothing_at_the_barrier(tmp_path: Path) -> None:
    hole = _BlackHole()
    display = f"""type = "led_voice"
port = "socket://127.0.0.1:{hole.port}"
ack_timeout_s = 2.0
"""
    try:
        with running_box(tmp_path, _lane_toml(display), PARTS) as box:
            relay = Device.pin_factory.pin(17)
            box.registry.upsert_vehicles(
                [Vehicle(f"冀B1234{i}", emission_stage="国6a") for i in range(6)]
            )
            timings = []
            for i in range(6):
                started = time.monotonic()
                out = passage(box, plate=f"冀B1234{i}", wait=5)
                timings.append(time.monotonic() - started)
                assert out.seq == i + 1 and out.trigger_to_relay_ms is not None
                assert out.frame_wait_ms is None  # a plate given: no camera waited for
                assert out.decision == "allow"
            opened = sum(1 for s in relay.states if s.state)
            assert wait_for(lambda: box.lane("main").status()["display"]["state"] == "failed", 10)
            status = box.lane("main").status()["display"]
            events = [e.kind for e in box.ledger.recent_events(50)]
    finally:
        hole.close()
    # Each passage waited for nothing of the board (each frame holds up the board's own thread
    # 2 s): a passage is its 0.5 s relay pulse and a few milliseconds.
    assert opened == 6, "the barrier opened for each"
    assert max(timings) < 1.5, timings
    assert "no answer from the board" in status["error"]
    assert status["dropped"] >= 1, status
    assert events.count("display_failed") == 1, events


def test_two_lanes_share_one_board(tmp_path: Path, board: tuple[LedVoiceSimulator, str]) -> None:
    sim, port = board
    toml = f"""
[mqtt]
enabled = false
[[lanes]]
name = "entry"
[lanes.camera]
type = "none"
[lanes.display]
type = "led_voice"
port = "{port}"
passage_lines = ["{{lane}} {{plate}}", "{{decision}}"]
[[lanes]]
name = "exit"
direction = "out"
shares = {{ display = "entry" }}
[lanes.camera]
type = "none"
[lanes.gpio.barrier_open]
pin = 24
[lanes.gpio.alarm]
pin = 25
[lanes.gpio.ground_loop]
pin = 5
[lanes.gpio.ir_beam]
pin = 6
"""
    parts = ["ledger", "registry", "entry.gpio", "entry.display", "entry.worker", "exit.gpio",
             "exit.worker"]  # fmt: skip
    with running_box(tmp_path, toml, parts) as box:
        passage(box, plate="冀B55555", lane="exit")
        assert wait_for(lambda: sim.screen()[:2] == ["exit 冀B55555", "允许通行"], 5), sim.screen()
        assert box.lane("exit").status()["display"]["shown"] >= 1
