"""A lane's devices as supervised parts: GPIO, RFID reader, weighbridge.

Each part owns its device and the thread that reads it; when the device
fails the supervisor restarts the part, and the lane sees the new device
object through the part. A reader or weighbridge shared by two lanes is
one part (one owner thread) with one listener per lane.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drivers import config as driver_config
from drivers.gpio import GateIO
from drivers.rfid import TagRead, open_reader


class GpioPart:
    """The lane's barrier, alarm and loops (``<lane>.gpio``)."""

    def __init__(self, lane: Any, pins: Any) -> None:
        self.name = f"{lane.name}.gpio"
        self.lane = lane
        self.pins = pins  # PinSource: the process's one pin factory

    def start(self) -> None:
        lane = self.lane
        lane.io = GateIO(
            lane.cfg.gpio,
            on_event=lambda kind, **d: lane.ctx.sink.event(
                kind, "warning", kind.replace("_", " "), lane=lane.name, **d
            ),
            on_loop=lane.on_loop,
            pin_factory=self.pins.get(),
        )

    def stop(self) -> None:
        if self.lane.io is not None:
            self.lane.io.close()
            self.lane.io = None


class RfidPart:
    """One reader and the lanes listening to it (``<lane>.rfid``)."""

    def __init__(self, owner: str, cfg: Any, pins: Any) -> None:
        self.name = f"{owner}.rfid"
        self.cfg = cfg
        self.pins = pins
        self.listeners: list[Callable[[TagRead], None]] = []
        self.reader: Any = None

    def _fan_out(self, read: TagRead) -> None:
        for listener in self.listeners:
            listener(read)

    def start(self) -> None:
        wiegand = self.cfg.type == "wiegand"  # the one reader type on GPIO pins
        self.reader = open_reader(
            self.cfg,
            self._fan_out,
            name=self.name,
            pin_factory=self.pins.get() if wiegand else None,
        )
        self.reader.start()

    def stop(self) -> None:
        if self.reader is not None:
            self.reader.close(3.0)
            self.reader = None

    def status(self) -> dict[str, Any]:
        return self.reader.stats() if self.reader is not None else {}


class ScalePart:
    """One weighbridge indicator, read by every lane that shares it (``<lane>.scale``)."""

    def __init__(self, owner: str, cfg: Any) -> None:
        self.name = f"{owner}.scale"
        self.cfg = cfg
        self.reader: Any = None

    def start(self) -> None:
        self.reader = driver_config.build(self.cfg, name=self.name).start()

    def stop(self) -> None:
        if self.reader is not None:
            self.reader.close(3.0)
            self.reader = None

    def status(self) -> dict[str, Any]:
        if self.reader is None:
            return {}
        latest, stable = self.reader.latest, self.reader.stable
        return {
            "kg": None if latest is None else round(latest.kg),
            "stable_kg": None if stable is None else round(stable.kg),
        }
