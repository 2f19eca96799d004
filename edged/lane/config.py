"""``[[lanes]]``: what one lane of the gate is made of, and how it tells direction.

A box usually drives an entry and an exit lane side by side. Each lane has
its own loops, barrier and alarm, camera, and optionally an RFID reader and
a weighbridge, and a display with voice for the driver. Where the hardware
is shared (one reader with an antenna per lane, one weighbridge or one
display between two lanes) a lane *shares* the device of another lane: the
device still has one owner thread, the lanes only read from it or feed it.

A one-lane box can leave out ``[[lanes]]`` and write the lane's sections at
the top level (``[lane]``, ``[camera]``, ``[gpio]``, ``[rfid]``, ``[scale]``,
``[display]``, ``[trigger]``), as before lanes existed; :mod:`edged.config.root` turns that
short form into a single lane.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from drivers.camera import CameraConfig
from drivers.camera.opencv import OpenCVConfig
from drivers.config import Invalid
from drivers.display import DisplayConfig
from drivers.gpio import GpioConfig
from drivers.rfid import RfidConfig
from drivers.scale import ScaleConfig
from edged.config.schema import doc
from edged.video.config import VideoConfig

SHAREABLE = ("rfid", "scale", "display")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")


@dataclass(frozen=True)
class TriggerConfig:
    """How a lane reads a vehicle once its loop fires: a short burst of frames, voted."""

    removed_keys: ClassVar[dict[str, str]] = {
        "mode": "a lane is triggered by its loops (gpio.ground_loop, gpio.inner_loop)",
        "holdoff_seconds": "a lane is triggered by its loops, once per vehicle",
        "rfid_window_seconds": "the tag window is the reader's window_before_s/window_after_s",
    }

    burst_frames: int = field(
        default=5,
        metadata=doc(
            "Frames read per vehicle and voted over, character by character", min=1, max=30
        ),
    )
    burst_interval_ms: int = field(
        default=80, metadata=doc("Time between frames of a burst", min=0, max=2000)
    )
    min_plate_confidence: float = field(
        default=0.80,
        metadata=doc(
            "Below this voted confidence a plate is treated as unread (falls back to RFID or"
            " the guard)",
            min=0.0,
            max=1.0,
        ),
    )


@dataclass(frozen=True)
class LaneConfig:
    """One lane: its name and direction, its devices and its trigger."""

    name: str = field(
        default="main",
        metadata=doc("Lane name in the ledger, MQTT and status, e.g. entry / exit (车道)"),
    )
    direction: Literal["in", "out", "both"] = field(
        default="in",
        metadata=doc("Traffic this lane records: in (进厂), out (出厂) or both (two-way lane)"),
    )
    both_rule: Literal["loop_order", "presence"] = field(
        default="loop_order",
        metadata=doc(
            "How a two-way lane tells direction: loop_order (gpio.ground_loop on the road side"
            " reached first = in, gpio.inner_loop first = out) or presence (a vehicle whose last"
            " passage was in is going out); when it cannot tell, the row says unknown, never in"
        ),
    )
    rfid_antennas: list[int] = field(
        default_factory=list,
        metadata=doc(
            "Antennas of the RFID reader that face this lane (a reader shared by two lanes);"
            " empty = all"
        ),
    )
    weight_wait_s: float = field(
        default=5.0,
        metadata=doc(
            "How long a passage waits for the weighbridge to settle; after it the row is"
            " recorded without a weight (flagged) and the barrier acts: it never waits longer",
            min=0,
            max=60,
        ),
    )
    shares: dict[str, str] = field(
        default_factory=dict,
        metadata=doc(
            'Devices this lane uses from another lane, e.g. { rfid = "entry", scale = "entry" }:'
            " one reader, weighbridge or display serving two lanes"
        ),
    )
    camera: CameraConfig = field(
        default_factory=OpenCVConfig, metadata=doc("Plate camera (车牌识别摄像机)")
    )
    trigger: TriggerConfig = field(
        default_factory=TriggerConfig, metadata=doc("Frame burst when a vehicle arrives")
    )
    gpio: GpioConfig = field(
        default_factory=GpioConfig, metadata=doc("Barrier (道闸), alarm and loops of this lane")
    )
    rfid: RfidConfig | None = field(
        default=None, metadata=doc("UHF RFID reader (电子标签); not fitted unless given")
    )
    scale: ScaleConfig | None = field(
        default=None, metadata=doc("Weighbridge indicator (地磅仪表); not fitted unless given")
    )
    video: VideoConfig = field(
        default_factory=VideoConfig,
        metadata=doc("Where this lane's video is (录像), and clips kept on the box"),
    )
    display: DisplayConfig | None = field(
        default=None,
        metadata=doc(
            "Display and voice for the driver (LED 显示屏、语音播报); not fitted unless given"
        ),
    )

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        if not _NAME.fullmatch(self.name):
            problems.append(
                ("name", f"expected 1-32 letters, digits, '-' or '_', found {self.name!r}")
            )
        if self.direction == "both" and self.both_rule == "loop_order":
            for key in ("ground_loop", "inner_loop"):
                if getattr(self.gpio, key).pin is None:
                    problems.append(
                        (
                            f"gpio.{key}.pin",
                            "a two-way lane with both_rule = loop_order needs both loops:"
                            " ground_loop (road side) and inner_loop (plant side); or set"
                            ' both_rule = "presence"',
                        )
                    )
        for kind, owner in self.shares.items():
            if kind not in SHAREABLE:
                problems.append(
                    (f"shares.{kind}", f"only {', '.join(SHAREABLE)} can be shared, found {kind!r}")
                )
            elif getattr(self, kind) is not None:
                problems.append(
                    (
                        f"shares.{kind}",
                        f"this lane has its own [{kind}] and also shares {owner!r}'s: keep one",
                    )
                )
        loops = (self.gpio.ground_loop.pin, self.gpio.inner_loop.pin)
        if loops == (None, None) and not getattr(self.camera, "triggers_passages", False):
            problems.append(
                (
                    "gpio.ground_loop.pin",
                    "this lane has no trigger: set the ground loop's pin (地感), or use a camera"
                    " that pushes its plate reads",
                )
            )
        if getattr(self.display, "port", None) == "camera" and self.camera.type != "zhenshi":
            problems.append(
                (
                    "display.port",
                    'port = "camera" passes the frames through a Zhenshi camera\'s RS-485 port;'
                    f" this lane's camera is {self.camera.type!r}",
                )
            )
        if self.video.clip and not self.clip_url:
            problems.append(
                (
                    "video.url",
                    "clips need a stream: set video.url (rtsp://...), or use an opencv camera"
                    " whose device is an rtsp:// URL",
                )
            )
        if any(not 1 <= a <= 8 for a in self.rfid_antennas):
            problems.append(
                ("rfid_antennas", f"expected antennas 1..8, found {self.rfid_antennas}")
            )
        if problems:
            raise Invalid(problems)

    @property
    def has_camera(self) -> bool:
        return self.camera.type != "none"

    @property
    def clip_url(self) -> str:
        """The stream clips are taken from: video.url, else the camera's rtsp:// device."""
        device = str(getattr(self.camera, "device", ""))
        return self.video.url or (device if device.startswith("rtsp://") else "")

    @property
    def needs_recognizer(self) -> bool:
        """A frame camera, or a pushing one whose images the box reads too."""
        return self.has_camera and getattr(self.camera, "own_read", True)
