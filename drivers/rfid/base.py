"""What every RFID reader hands to the daemon, whatever its wire protocol.

Readers differ (binary UHF modules, ASCII-printing readers, Wiegand access
readers) but the gate only needs "this tag was seen, this strongly, on this
antenna, at this time": :class:`TagRead`. Each driver turns its own bytes or
pulses into those and calls one callback; the window collector and identity
fusion never see a protocol.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from drivers.config import DeviceConfig, doc
from drivers.log import get_logger

log = get_logger("rfid")


@dataclass(frozen=True)
class TagRead:
    """One sighting of a tag. ``epc`` is upper-case hex (or a Wiegand card id)."""

    epc: str
    time: float = field(default_factory=time.time)
    reader: str = "rfid"
    rssi: float | None = None
    antenna: int | None = None
    tid: str | None = None


TagCallback = Callable[[TagRead], None]


@dataclass(frozen=True)
class RfidConfig(DeviceConfig):
    """Keys every reader type has; each type adds its own (see its module)."""

    family: ClassVar[str] = "rfid"
    removed_keys: ClassVar[dict[str, str]] = {
        "enabled": "a reader is fitted when its [rfid] section exists: delete the section for none"
    }

    type: str = field(
        default="r2000",
        metadata=doc("Reader protocol; the keys below depend on it", was="protocol"),
    )
    window_before_s: float = field(
        default=2.0, metadata=doc("Tag reads counted this many seconds before the trigger", min=0)
    )
    window_after_s: float = field(
        default=2.0, metadata=doc("Tag reads counted this many seconds after the trigger", min=0)
    )
    min_rssi_dbm: float | None = field(
        default=None,
        metadata=doc("Ignore reads weaker than this, in dBm (stray tags of the queue behind)"),
    )


@dataclass(frozen=True)
class SerialRfidConfig(RfidConfig):
    """Readers on a serial line (RS232/RS485 or USB)."""

    port: str = field(
        default="/dev/ttyUSB0",
        metadata=doc(
            "Serial port (a /dev/serial/by-id/ name survives re-plugging) or pyserial URL"
        ),
    )
    baudrate: int = field(default=115200, metadata=doc("Serial speed", min=1))


class RfidReader:
    """Base for drivers: owns the callback and shields it from user bugs."""

    def __init__(self, name: str, on_read: TagCallback) -> None:
        self.name = name
        self._on_read = on_read
        self.reads = 0
        self.callback_errors = 0

    def _emit(self, read: TagRead) -> None:
        self.reads += 1
        try:
            self._on_read(read)
        except Exception as exc:
            self.callback_errors += 1
            log.error("rfid_callback_failed", reader=self.name, epc=read.epc, error=repr(exc))

    def start(self) -> RfidReader:
        return self

    def close(self, timeout: float = 2.0) -> bool:
        return True

    def stats(self) -> dict[str, Any]:
        return {"reads": self.reads, "callback_errors": self.callback_errors}

    def __enter__(self) -> RfidReader:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
