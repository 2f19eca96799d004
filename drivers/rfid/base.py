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
from typing import Any

from edged.logs import get_logger

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
