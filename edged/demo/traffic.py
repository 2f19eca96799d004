"""Traffic for ``edged demo``: vehicles arrive at the entry and leave by the exit.

No hardware is faked above the wire: each lane's ground loop is a gpiozero
mock pin that the traffic drives, the RFID reader (one, serving both lanes
through two antennas) is a simulator speaking the R2000 binary protocol on
a pty that the real driver reads, the entry's camera is a mock source and
the exit's an IP camera's snapshot URL (a loopback HTTP server with Digest
authentication), both showing rendered scenes of the vehicle's plate to the
real recogniser, and
the entry's LED board with voice is a simulator on a pty that decodes the
real driver's frames; the demo prints what it shows and says. The west side
lane's plate camera is a Zhenshi camera simulator posting the camera's own
JSON to the box's receiver: first the reads it kept while its link was down
(they become late ledger rows), then a live read.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from edged import sitetime
from edged.logs import get_logger

log = get_logger("demo")


@dataclass(frozen=True)
class DemoVehicle:
    lane: str
    plate: str | None  # None: a machine without a plate, known by its tag
    colour: str
    tag: str | None
    note: str
    kg: int  # gross weight on the weighbridge
    card: str | None = None  # a waybill card (运单卡) the driver carries with the load


#: The waybill card logistics hands the loaded truck leaving by the exit, and its cargo.
WAYBILL_CARD, WAYBILL_CARGO = "E200C0FFEE00000000000B01", "螺纹钢"


# One of each case an environment officer cares about (see config/demo-vehicles.csv).
FLEET = (
    DemoVehicle(
        "entry", "冀B12345", "yellow", "E2003412B802011512345678", "国六 diesel: allowed", 16800
    ),
    DemoVehicle(
        "entry", "冀A8K302", "yellow", "E2003412B802011599990001", "国四 diesel: denied", 31200
    ),
    DemoVehicle("entry", "京AD12345", "green", None, "electric: allowed (new energy)", 47900),
    DemoVehicle(
        "exit",
        "冀B12345",
        "yellow",
        "E2003412B802011512345678",
        "leaves loaded with a waybill card: trip weighed, cargo from the card",
        49150,
        WAYBILL_CARD,
    ),
    DemoVehicle(
        "entry", "晋C55667", "yellow", "E2003412B802011588880002", "blacklisted: denied", 29500
    ),
    DemoVehicle("entry", "豫D99881", "blue", None, "not in registry: held for the guard", 9800),
    DemoVehicle("exit", "京AD12345", "green", None, "leaves empty: trip weighed", 17300),
    DemoVehicle(
        "entry",
        "冀B12345",
        "yellow",
        "E2003412B802011599990001",
        "tag of another truck: flagged",
        16900,
    ),
    DemoVehicle(
        "entry",
        "冀B0C001",
        "yellow",
        "E2003412B802011577770003",
        "in-plant transport vehicle: allowed, recorded as in_plant",
        24300,
    ),
    DemoVehicle(
        "entry",
        None,
        "",
        "E2003412B802011566660004",
        "loader (国三 machinery) by its tag: recorded with its registry code",
        17600,
    ),
    DemoVehicle(
        "west",
        "冀B0C001",
        "yellow",
        None,
        "side lane: the plant's own Zhenshi camera reads the plate and pushes it",
        0,
    ),
)
#: What the west lane's camera read while its link to the box was down, before the demo
#: began (plate, colour, minutes ago, what the rules say): sent once the box answers.
WEST_KEPT = (
    ("京AD12345", "green", 130, "electric: the rules would allow"),
    ("冀A8K302", "yellow", 75, "国四 diesel: the rules would refuse"),
)
#: The shared reader's antenna facing each lane (config/demo.toml: rfid_antennas).
ANTENNA = {"entry": 1, "exit": 2}


class DemoTraffic:
    """Drives vehicles through the lanes one by one and stops the daemon when done."""

    def __init__(
        self, daemon: Any, passages: int, interval: float = 3.0, cert_dir: Any = None
    ) -> None:
        self.daemon = daemon
        self.passages = passages
        self.interval = interval
        self.master, self.slave = os.openpty()
        self.rfid_port = os.ttyname(self.slave)
        self.rfid_sim: Any = None
        self.scale_master, self.scale_slave = os.openpty()
        self.scale_port = os.ttyname(self.scale_slave)
        self.scale_sim: Any = None
        self.display_master, self.display_slave = os.openpty()
        self.display_port = os.ttyname(self.display_slave)
        self.display_sim: Any = None
        from drivers.simulators import SnapshotCameraSimulator, self_signed_certificate

        # bound now, so that its URL goes into the config; answers once started. With
        # cert_dir it serves https with its own certificate, which the config pins.
        self.exit_camera_cert: str | None = None
        tls = None
        if cert_dir is not None:
            tls = self_signed_certificate(cert_dir, "exit-camera")
            self.exit_camera_cert = tls[0]
        self.exit_camera = SnapshotCameraSimulator(
            size=(1280, 720), password="demo-camera", tls=tls
        )
        from drivers.simulators import ZhenshiCameraSimulator, free_port

        # the west lane's camera pushes to the box's receiver, on a port taken now for the
        # config; its link was down until the demo starts
        self.receiver_port = free_port()
        self.west_camera = ZhenshiCameraSimulator(f"http://127.0.0.1:{self.receiver_port}/")
        self.west_camera.offline = True
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from drivers.simulators import LedVoiceSimulator, R2000Simulator, ScaleSimulator

        try:
            import PIL  # noqa: F401  # the scenes' Chinese characters are drawn with it
        except ImportError:
            raise SystemExit(
                "edged demo draws its plate scenes with pillow, which the appliance leaves out:"
                " run the demo from a clone (make demo), or pip install 'edged[demo]'"
            ) from None

        self.rfid_sim = R2000Simulator(self.master, {}).start()
        self.scale_sim = ScaleSimulator(self.scale_master, 0, rate_hz=10).start()
        self.display_sim = LedVoiceSimulator(self.display_master).start()
        self.exit_camera.start()
        self._thread = threading.Thread(target=self._loop, name="demo", daemon=True)
        self._thread.start()

    def _ready(self, box: Any) -> bool:
        rec = box.ctx.recognizer
        receiving = box.receiver is None or box.receiver.port != 0
        return (
            (rec is None or rec.ready)
            and receiving
            and all(
                lane.io is not None
                and (lane.camera_source is not None or lane.push_camera is not None)
                for lane in box.lanes
            )
        )

    def _west_camera_back(self) -> None:
        """The west camera's link comes back: it sends what it read meanwhile."""
        from edged.lpr.synth import render_scene

        cam = self.west_camera
        now = time.time()
        for i, (plate, colour, minutes, note) in enumerate(WEST_KEPT):
            log.info("demo_camera_kept_read", lane="west", plate=plate, minutes_ago=minutes,
                     expect=note)  # fmt: skip
            scene = render_scene(plate, colour, size=(1280, 720), seed=100 + i)
            cam.read(plate, now - 60 * minutes, full=_jpeg(scene), colour=colour)
        cam.offline = False
        sent = cam.replay()
        log.info("demo_camera_back", lane="west", sent_kept_reads=sent, left=len(cam.kept))

    def _push(self, v: DemoVehicle, n: int) -> None:
        """The west camera reads the vehicle itself and pushes the read."""
        from edged.lpr.synth import render_scene

        assert v.plate is not None
        scene = render_scene(v.plate, v.colour, size=(1280, 720), seed=n)
        self.west_camera.read(v.plate, full=_jpeg(scene), colour=v.colour)

    def _loop(self) -> None:
        from gpiozero import Device

        from edged.lpr.synth import render_scene

        deadline = time.monotonic() + 120
        while self.daemon.box is None and time.monotonic() < deadline:
            time.sleep(0.05)
        box = self.daemon.box
        while not self._ready(box) and time.monotonic() < deadline:
            if self.daemon.stop_event.wait(0.2):
                return
        time.sleep(0.5)
        self._declare_waybill(box)
        self._west_camera_back()
        n = 0
        while not self.daemon.stop_event.is_set() and (self.passages == 0 or n < self.passages):
            v = FLEET[n % len(FLEET)]
            lane = box.lane(v.lane)
            if v.lane == "west":
                log.info("demo_vehicle_arrives", lane=v.lane, plate=v.plate, expect=v.note)
                before = lane.passages
                self._push(v, n)
                deadline = time.monotonic() + 20
                while lane.passages == before and time.monotonic() < deadline:
                    time.sleep(0.05)
                n += 1
                self.daemon.stop_event.wait(self.interval)
                continue
            loop_cfg = lane.cfg.gpio.ground_loop
            pin = Device.pin_factory.pin(loop_cfg.pin)
            log.info("demo_vehicle_arrives", lane=v.lane, plate=v.plate or "-", expect=v.note)
            # what the lane's camera sees: the mock source itself, or the IP camera
            camera = self.exit_camera if v.lane == "exit" else lane.camera_source
            if v.plate is not None:
                camera.show(render_scene(v.plate, v.colour, size=camera.size, seed=n))
            tags = {t: -55 for t in (v.tag, v.card) if t}
            self.rfid_sim.set_tags(tags, antenna=ANTENNA[v.lane])
            self.scale_sim.kg = v.kg  # the truck drives onto the weighbridge
            time.sleep(0.3)  # camera thread picks the frame up; reader inventories the tag
            before = lane.passages
            (pin.drive_low if loop_cfg.pull_up else pin.drive_high)()
            deadline = time.monotonic() + 20
            while lane.passages == before and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            if v.lane == "entry":
                self._show_board()
            (pin.drive_high if loop_cfg.pull_up else pin.drive_low)()
            camera.show(None)
            self.rfid_sim.set_tags({}, antenna=ANTENNA[v.lane])
            self.scale_sim.kg = 0
            n += 1
            self.daemon.stop_event.wait(self.interval)
        if self.passages:
            log.info("demo_finished", passages=n)
            self.daemon.request_stop()

    @staticmethod
    def _declare_waybill(box: Any) -> None:
        """Logistics declares what the waybill card's load is, as its system would."""
        until = sitetime.now() + timedelta(days=30)
        box.registry.declare_cargo("", WAYBILL_CARGO, until, "demo logistics", tag=WAYBILL_CARD)

    def _show_board(self) -> None:
        """What the entry's board shows and says now, as the driver sees and hears it."""
        sim = self.display_sim
        if sim is None:
            return
        spoken = sim.spoken[-1] if sim.spoken else None
        log.info("demo_display", lane="entry", shows=" | ".join(sim.screen()), says=spoken)
        sim.spoken.clear()

    def close(self) -> None:
        for sim in (self.rfid_sim, self.scale_sim, self.display_sim):
            if sim is not None:
                sim.close()
        with contextlib.suppress(Exception):
            self.exit_camera.stop()
        for fd in (
            self.master,
            self.slave,
            self.scale_master,
            self.scale_slave,
            self.display_master,
            self.display_slave,
        ):
            with contextlib.suppress(OSError):
                os.close(fd)


def _jpeg(image: Any) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("the demo scene could not be encoded as JPEG")
    return bytes(buf.tobytes())
