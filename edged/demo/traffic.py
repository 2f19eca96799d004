"""A simulated gate for ``edged demo``: vehicles arrive on real device interfaces.

No hardware is faked above the wire: the ground loop is a gpiozero mock pin
that the simulator drives, the RFID reader is a simulator speaking the R2000
binary protocol on a pty that the real driver reads, and the camera delivers
rendered scenes of each vehicle's plate to the real recogniser.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edged.logs import get_logger

log = get_logger("demo")


@dataclass(frozen=True)
class DemoVehicle:
    plate: str
    colour: str
    tag: str | None
    note: str


# One of each case an environment officer cares about (see config/demo-vehicles.csv).
FLEET = (
    DemoVehicle("冀B12345", "yellow", "E2003412B802011512345678", "国六 diesel: allowed"),
    DemoVehicle("冀A8K302", "yellow", "E2003412B802011599990001", "国四 diesel: denied"),
    DemoVehicle("京AD12345", "green", None, "electric: allowed (new energy)"),
    DemoVehicle("晋C55667", "yellow", "E2003412B802011588880002", "blacklisted: denied"),
    DemoVehicle("豫D99881", "blue", None, "not in registry: unknown-vehicle policy"),
    DemoVehicle("冀B12345", "yellow", "E2003412B802011599990001", "tag of another truck: flagged"),
)


class SceneSource:
    """Frame source showing the vehicle now in front of the camera (or an empty lane)."""

    name = "demo-camera"

    def __init__(self, size: tuple[int, int] = (1280, 720)) -> None:
        self.size = size
        self.frame: np.ndarray | None = None
        self._empty = np.full((size[1], size[0], 3), 90, np.uint8)

    def open(self) -> None:
        return None

    def read(self) -> np.ndarray:
        return self.frame if self.frame is not None else self._empty

    def close(self) -> None:
        return None


class DemoGate:
    """Drives vehicles through the gate one by one and stops the daemon when done."""

    def __init__(self, daemon: Any, passages: int, interval: float = 3.0) -> None:
        self.daemon = daemon
        self.passages = passages
        self.interval = interval
        self.camera = SceneSource()
        self.master, self.slave = os.openpty()
        self.rfid_port = os.ttyname(self.slave)
        self.rfid_sim: Any = None
        self._thread: threading.Thread | None = None

    def start_rfid(self) -> None:
        from drivers.rfid.simulator import R2000Simulator

        self.rfid_sim = R2000Simulator(self.master, {}).start()

    def run(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="demo", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        from gpiozero import Device

        from edged.lpr.synth import render_scene

        deadline = time.monotonic() + 120
        while self.daemon.gate is None and time.monotonic() < deadline:
            time.sleep(0.05)
        gate = self.daemon.gate
        while (
            gate.recognizer is None or gate.io is None or gate.camera is None
        ) and time.monotonic() < deadline:
            if self.daemon.stop_event.wait(0.2):
                return
        time.sleep(0.5)
        loop_cfg = self.daemon.cfg.gpio.ground_loop
        pin = Device.pin_factory.pin(loop_cfg.pin)
        active = (lambda: pin.drive_low()) if loop_cfg.pull_up else (lambda: pin.drive_high())
        idle = (lambda: pin.drive_high()) if loop_cfg.pull_up else (lambda: pin.drive_low())
        n = 0
        while not self.daemon.stop_event.is_set() and (self.passages == 0 or n < self.passages):
            v = FLEET[n % len(FLEET)]
            log.info("demo_vehicle_arrives", plate=v.plate, expect=v.note)
            self.camera.frame = render_scene(v.plate, v.colour, size=self.camera.size, seed=n)
            if self.rfid_sim is not None:
                self.rfid_sim.set_tags({v.tag: -55} if v.tag else {})
            time.sleep(0.3)  # camera thread picks the frame up; reader inventories the tag
            before = gate.passages
            active()
            deadline = time.monotonic() + 20
            while gate.passages == before and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            idle()
            self.camera.frame = None
            if self.rfid_sim is not None:
                self.rfid_sim.set_tags({})
            n += 1
            self.daemon.stop_event.wait(self.interval)
        if self.passages:
            log.info("demo_finished", passages=n)
            self.daemon.request_stop()

    def close(self) -> None:
        if self.rfid_sim is not None:
            self.rfid_sim.close()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
