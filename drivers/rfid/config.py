"""``[rfid]`` config section."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from drivers.rfid.r2000 import DEFAULT_COMMANDS


@dataclass(frozen=True)
class RfidConfig:
    enabled: bool = field(default=False, metadata={"doc": "RFID reader present (电子标签读写器)"})
    protocol: Literal["r2000", "asciihex", "wiegand"] = field(
        default="r2000",
        metadata={"doc": "reader protocol: r2000 binary 0xA0 frames, asciihex lines, wiegand GPIO"},
    )
    port: str = field(
        default="/dev/ttyUSB0",
        metadata={"doc": "serial port or pyserial URL (r2000/asciihex)"},
    )
    baudrate: int = field(default=115200, metadata={"doc": "serial speed (R2000 default 115200)"})
    address: int = field(
        default=0xFF, metadata={"doc": "R2000 reader address byte (0xFF = broadcast/any)"}
    )
    antennas: list[int] = field(
        default_factory=lambda: [1],
        metadata={"doc": "antenna ports to inventory in turn, 1-based (天线号)"},
    )
    repeat: int = field(default=1, metadata={"doc": "R2000 inventory rounds per command (1..255)"})
    resend_s: float = field(
        default=1.0, metadata={"doc": "re-issue inventory if the reader is silent this long"}
    )
    window_before_s: float = field(
        default=2.0, metadata={"doc": "tag reads counted this many seconds before the trigger"}
    )
    window_after_s: float = field(
        default=2.0, metadata={"doc": "tag reads counted this many seconds after the trigger"}
    )
    min_rssi_dbm: float | None = field(
        default=None, metadata={"doc": "ignore reads weaker than this (stray tags in the queue)"}
    )
    r2000_header: int = field(default=0xA0, metadata={"doc": "frame head byte of R2000 clones"})
    r2000_checksum: Literal["twos_complement_sum", "sum", "xor"] = field(
        default="twos_complement_sum", metadata={"doc": "check byte kind of R2000 clones"}
    )
    r2000_commands: dict[str, int] = field(
        default_factory=dict,
        metadata={"doc": "override R2000 command codes by name, e.g. real_time_inventory = 0x89"},
    )
    r2000_rssi_offset_dbm: int = field(
        default=129, metadata={"doc": "dBm = (RSSI byte & 0x7F) - this offset"}
    )
    asciihex_prefix: str = field(
        default=r"^\s*(?:EPC|TAG|ID|UID)?\s*[:=#]?\s*",
        metadata={"doc": "regex stripped from the start of each ASCII tag line"},
    )
    asciihex_min_hex: int = field(default=8, metadata={"doc": "shortest accepted id, hex digits"})
    asciihex_max_hex: int = field(default=64, metadata={"doc": "longest accepted id, hex digits"})
    wiegand_d0_pin: int = field(default=17, metadata={"doc": "GPIO (BCM) of Wiegand D0 (绿线)"})
    wiegand_d1_pin: int = field(default=27, metadata={"doc": "GPIO (BCM) of Wiegand D1 (白线)"})
    wiegand_bits: list[int] = field(
        default_factory=lambda: [26, 34], metadata={"doc": "accepted Wiegand frame lengths"}
    )
    wiegand_timeout_s: float = field(
        default=0.025, metadata={"doc": "gap that ends a Wiegand frame"}
    )
    wiegand_id_format: Literal["decimal", "hex", "facility_card"] = field(
        default="decimal", metadata={"doc": "how a Wiegand card id is written for the registry"}
    )

    def __post_init__(self) -> None:
        if not 0 <= self.address <= 0xFF:
            raise ValueError(f"address: expected 0..255, found {self.address}")
        if self.baudrate <= 0:
            raise ValueError(f"baudrate: expected a positive speed, found {self.baudrate}")
        if not self.antennas or any(not 1 <= a <= 8 for a in self.antennas):
            raise ValueError(f"antennas: expected a non-empty list of 1..8, found {self.antennas}")
        if not 1 <= self.repeat <= 255:
            raise ValueError(f"repeat: expected 1..255, found {self.repeat}")
        if self.resend_s <= 0:
            raise ValueError(f"resend_s: expected > 0, found {self.resend_s}")
        if self.window_before_s < 0 or self.window_after_s < 0:
            raise ValueError(
                f"window_before_s: expected >= 0 windows, found "
                f"{self.window_before_s}/{self.window_after_s}"
            )
        if not 0 <= self.r2000_header <= 0xFF:
            raise ValueError(f"r2000_header: expected a byte 0..255, found {self.r2000_header}")
        unknown = set(self.r2000_commands) - set(DEFAULT_COMMANDS)
        if unknown:
            raise ValueError(
                f"r2000_commands: unknown command names {sorted(unknown)}, "
                f"known: {sorted(DEFAULT_COMMANDS)}"
            )
        bad = [c for c in self.r2000_commands.values() if not 0 <= c <= 0xFF]
        if bad:
            raise ValueError(f"r2000_commands: codes must be bytes 0..255, found {bad}")
        try:  # the reader compiles it at start; a bad one must be a config error, not a crash
            re.compile(self.asciihex_prefix)
        except re.error as exc:
            raise ValueError(f"asciihex_prefix: not a valid regular expression ({exc})") from None
        if not self.asciihex_min_hex <= self.asciihex_max_hex:
            raise ValueError(
                f"asciihex_min_hex: must be <= asciihex_max_hex, found "
                f"{self.asciihex_min_hex} > {self.asciihex_max_hex}"
            )
        if not self.wiegand_bits or any(b not in (26, 34) for b in self.wiegand_bits):
            raise ValueError(
                f"wiegand_bits: expected values from [26, 34], found {self.wiegand_bits}"
            )
        if self.wiegand_timeout_s <= 0:
            raise ValueError(f"wiegand_timeout_s: expected > 0, found {self.wiegand_timeout_s}")
