"""An entry and an exit lane side by side, and a two-way lane telling in from out.

Real parts throughout: gpiozero mock pins for the loops and relays, an R2000
reader simulator on a pty serving both lanes through two antennas, a real
mosquitto for the one outbox.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from gpiozero import Device

from drivers.simulators import R2000Simulator
from edged.admission.model import Vehicle
from tests.box_rig import passage, running_box
from tests.broker import Mosquitto
from tests.ptys import PtyCable, wait_for

ENTRY_TAG = "E2003412B802011512345678"
EXIT_TAG = "E2003412B802011588880002"


class SlowReader:
    """A recogniser that takes its time and finds nothing: the entry's burst is long."""

    ready = True

    def read(self, frame: np.ndarray) -> list[Any]:
        time.sleep(0.25)
        return []


def two_lanes(reader_port: str, broker_port: int) -> str:
    return f"""
[[lanes]]
name = "entry"
direction = "in"
rfid_antennas = [1]
[lanes.camera]
type = "mock"
[lanes.trigger]
burst_frames = 4
burst_interval_ms = 0
[lanes.gpio.ground_loop]
pin = 22
debounce_ms = 0
[lanes.rfid]
type = "r2000"
port = "{reader_port}"
antennas = [1, 2]
resend_s = 0.2
window_before_s = 3.0
window_after_s = 0.2

[[lanes]]
name = "exit"
direction = "out"
rfid_antennas = [2]
shares = {{ rfid = "entry" }}
[lanes.camera]
type = "none"
[lanes.gpio.barrier_open]
pin = 24
[lanes.gpio.alarm]
pin = 25
[lanes.gpio.ground_loop]
pin = 5
debounce_ms = 0
[lanes.gpio.ir_beam]
pin = 6

[mqtt]
host = "127.0.0.1"
port = {broker_port}
"""


def _subscribe(port: int) -> tuple[mqtt.Client, queue.Queue[dict[str, Any]]]:
    got: queue.Queue[dict[str, Any]] = queue.Queue()
    ready = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_message = lambda _c, _u, m: got.put(json.loads(m.payload))
    c.on_subscribe = lambda *_a: ready.set()
    c.connect("127.0.0.1", port)
    c.subscribe("edged/p1/g1/passage", qos=1)
    c.loop_start()
    assert ready.wait(10)
    return c, got


def test_entry_and_exit_share_a_reader_and_pass_at_once(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    cable = PtyCable(tmp_path / "ttyRFID")
    sim = R2000Simulator(cable.master, {}).start()
    backend, messages = _subscribe(mosquitto.port)
    try:
        with running_box(tmp_path, two_lanes(cable.port, mosquitto.port)) as box:
            box.ctx.recognizer = SlowReader()
            box.registry.apply(
                "vehicles",
                "upsert",
                [
                    Vehicle(
                        "冀B12345", fuel="diesel", emission_stage="国6b", rfid_tags=(ENTRY_TAG,)
                    ),
                    Vehicle(
                        "晋C55667", fuel="diesel", emission_stage="国6b", rfid_tags=(EXIT_TAG,)
                    ),
                ],
                actor="test",
                source="test",
            )
            entry, exit_ = box.lane("entry"), box.lane("exit")
            # one truck at each lane: each antenna sees its own
            sim.set_tags({ENTRY_TAG: -50}, antenna=1)
            sim.set_tags({EXIT_TAG: -50}, antenna=2)
            assert wait_for(lambda: len(entry.tags) and len(exit_.tags), 10), "no tags read"
            assert {t.epc for t in entry.tags.window(time.time(), 3, 0)} == {ENTRY_TAG}
            assert {t.epc for t in exit_.tags.window(time.time(), 3, 0)} == {EXIT_TAG}
            entry.camera_source.show(np.zeros((720, 1280, 3), np.uint8))
            assert wait_for(lambda: entry.camera.latest() is not None, 5)
            pins = Device.pin_factory
            pins.pin(22).drive_high()  # the entry's burst takes about a second
            time.sleep(0.05)
            pins.pin(5).drive_high()  # the exit's truck must not wait behind it
            assert wait_for(lambda: exit_.passages == 1, 5)
            assert entry.passages == 0, "the exit waited for nothing: the lanes ran at once"
            assert wait_for(lambda: entry.passages == 1, 10)
            ins, outs = entry.last.record, exit_.last.record
            assert (ins["lane"], ins["direction"], ins["plate"]) == ("entry", "in", "冀B12345")
            assert (outs["lane"], outs["direction"], outs["plate"]) == ("exit", "out", "晋C55667")
            assert ins["id_source"] == "rfid" and outs["id_source"] == "rfid"
            assert outs["decision"] == "allow" and outs["reason_code"] == "exit_open"
            # one ledger for the box: both rows, one chain
            assert box.ledger.heads()["passages"][0] == 2
            assert {r.record.lane for r in box.ledger.passages()} == {"entry", "exit"}
            # one outbox: both passages reach the backend, each with its lane
            sent = [messages.get(timeout=10)["payload"] for _ in range(2)]
            assert {(m["lane"], m["direction"]) for m in sent} == {("entry", "in"), ("exit", "out")}
            status = box.health()
            assert set(status["lanes"]) == {"entry", "exit"}
            assert status["lanes"]["exit"]["rfid"] == "entry.rfid"  # the shared reader
            assert status["components"]["entry.rfid"]["state"] == "running"
            assert "exit.rfid" not in status["components"]  # one owner thread
    finally:
        backend.loop_stop()
        backend.disconnect()
        sim.close()
        cable.close()


TWO_WAY = """
[lane]
name = "yard"
direction = "both"
[camera]
type = "none"
[gpio.ground_loop]
pin = 22
debounce_ms = 0
[gpio.inner_loop]
pin = 24
debounce_ms = 0
[mqtt]
enabled = false
"""


def test_a_two_way_lane_takes_direction_from_the_loop_reached_first(tmp_path: Path) -> None:
    with running_box(tmp_path, TWO_WAY) as box:
        lane = box.lane("yard")
        road, plant = Device.pin_factory.pin(22), Device.pin_factory.pin(24)

        def crossing(first: Any, second: Any) -> dict[str, Any]:
            before = lane.passages
            first.drive_high()
            assert wait_for(lambda: lane.passages == before + 1, 5)
            second.drive_high()  # under the raised arm: the same vehicle
            first.drive_low()
            second.drive_low()
            time.sleep(0.2)
            assert lane.passages == before + 1, "the second loop started another passage"
            return lane.last.record

        assert crossing(road, plant)["direction"] == "in"
        assert crossing(plant, road)["direction"] == "out"
        assert crossing(road, plant)["direction"] == "in"
        rows = [r.record.direction for r in box.ledger.passages()]
        assert rows == ["in", "out", "in"]


PRESENCE = """
[lane]
name = "yard"
direction = "both"
both_rule = "presence"
[camera]
type = "none"
[mqtt]
enabled = false
[policy]
unknown_action = "allow_flag"
"""


def test_a_two_way_lane_by_presence_never_records_an_unknown_vehicle_as_entering(
    tmp_path: Path,
) -> None:
    with running_box(tmp_path, PRESENCE) as box:
        assert passage(box, "冀B12345").direction == "in"
        assert passage(box, "冀B12345").direction == "out"  # it was in: it leaves
        assert passage(box, "冀B12345").direction == "in"
        unread = passage(box)
        assert unread.direction == "unknown"
        assert "direction_unknown" in unread.record["flags"]
