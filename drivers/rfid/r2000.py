"""Binary protocol of R2000-based UHF reader modules ("0xA0 protocol").

Most fixed UHF readers sold for Chinese vehicle gates wrap an Impinj R2000
module and speak the same serial framing::

    Head(0xA0) Len Address Cmd Data... Check

``Len`` counts the bytes after itself (Address, Cmd, Data, Check), and
``Check`` is the two's complement of the 8-bit sum of every byte before it,
so the sum of a whole frame is 0 mod 256. Vendors clone the module and change
details (another head byte, a plain sum or XOR check, renumbered commands),
so everything here is driven by :class:`R2000Variant`, which the config can
override without code.

Everything above :class:`R2000Reader` is pure: bytes in, frames/messages out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from drivers.config import Invalid, doc, driver
from drivers.log import get_logger
from drivers.rfid.base import RfidReader, SerialRfidConfig, TagCallback, TagRead
from drivers.serialport import SerialLine

log = get_logger("rfid")

ChecksumKind = Literal["twos_complement_sum", "sum", "xor"]

DEFAULT_COMMANDS: dict[str, int] = {
    "reset": 0x70,
    "set_uart_baudrate": 0x71,
    "get_firmware_version": 0x72,
    "set_reader_address": 0x73,
    "set_work_antenna": 0x74,
    "get_work_antenna": 0x75,
    "set_output_power": 0x76,
    "get_output_power": 0x77,
    "get_reader_temperature": 0x7B,
    "inventory": 0x80,
    "real_time_inventory": 0x89,
    "fast_switch_ant_inventory": 0x8A,
    "get_inventory_buffer": 0x90,
}

# Status codes the module answers with (one data byte). Partial table: the
# ones a gate installer actually meets; anything else is shown as hex.
ERROR_CODES: dict[int, str] = {
    0x10: "command_success",
    0x11: "command_fail",
    0x20: "mcu_reset_error",
    0x21: "cw_on_error",
    0x22: "antenna_missing_error",
    0x23: "write_flash_error",
    0x24: "read_flash_error",
    0x25: "set_output_power_error",
    0x31: "tag_inventory_error",
    0x32: "tag_read_error",
    0x33: "tag_write_error",
    0x34: "tag_lock_error",
    0x35: "tag_kill_error",
    0x36: "no_tag_error",
    0x38: "buffer_is_empty_error",
    0x41: "parameter_invalid",
}

ERROR_HINTS: dict[int, str] = {
    0x22: "antenna not connected on this port: check the coax cable or the antennas list in config",
    0x36: "no tag in the field (normal when no vehicle is present)",
    0x41: "the reader rejected a parameter: check antennas / reader address in config",
}


@dataclass(frozen=True)
class R2000Variant:
    """Everything that differs between clones of the protocol."""

    header: int = 0xA0
    checksum: ChecksumKind = "twos_complement_sum"
    commands: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_COMMANDS))
    rssi_offset_dbm: int = 129
    """dBm = (RSSI byte & 0x7F) - rssi_offset_dbm (the module's RSSI table is ~linear)."""
    rssi_high_bit_antenna: bool = True
    """8-port readers flag antennas 5-8 with bit 7 of the RSSI byte."""
    success_code: int = 0x10

    def __post_init__(self) -> None:
        if not 0 <= self.header <= 0xFF:
            raise ValueError(f"header: expected a byte 0..255, found {self.header}")
        if self.checksum not in ("twos_complement_sum", "sum", "xor"):
            raise ValueError(
                f"checksum: expected twos_complement_sum, sum or xor, found {self.checksum!r}"
            )
        missing = {"real_time_inventory", "set_work_antenna"} - set(self.commands)
        if missing:
            raise ValueError(f"commands: missing required command codes {sorted(missing)}")

    def code(self, name: str) -> int:
        return self.commands[name]


def checksum(data: bytes, kind: ChecksumKind = "twos_complement_sum") -> int:
    """Check byte over ``data`` (everything before the check byte)."""
    if kind == "xor":
        acc = 0
        for b in data:
            acc ^= b
        return acc
    total = sum(data) & 0xFF
    if kind == "sum":
        return total
    return (-total) & 0xFF


@dataclass(frozen=True)
class Frame:
    """A frame whose length and check byte were valid."""

    address: int
    cmd: int
    data: bytes
    raw: bytes


def encode_frame(
    address: int, cmd: int, data: bytes = b"", variant: R2000Variant | None = None
) -> bytes:
    """Build a frame; raises ValueError on out-of-range fields (a bug, not line noise)."""
    v = variant or R2000Variant()
    if not (0 <= address <= 0xFF and 0 <= cmd <= 0xFF):
        raise ValueError(f"address/cmd must be bytes, got {address}, {cmd}")
    length = len(data) + 3
    if length > 0xFF:
        raise ValueError(f"data too long for one frame: {len(data)} bytes")
    body = bytes([v.header, length, address, cmd]) + bytes(data)
    return body + bytes([checksum(body, v.checksum)])


# -- commands ---------------------------------------------------------------


def cmd_real_time_inventory(
    address: int = 0xFF, repeat: int = 1, variant: R2000Variant | None = None
) -> bytes:
    """Start ``repeat`` inventory rounds (0xFF: as fast as the module can)."""
    v = variant or R2000Variant()
    if not 1 <= repeat <= 0xFF:
        raise ValueError(f"repeat: expected 1..255, found {repeat}")
    return encode_frame(address, v.code("real_time_inventory"), bytes([repeat]), v)


def cmd_get_firmware_version(address: int = 0xFF, variant: R2000Variant | None = None) -> bytes:
    v = variant or R2000Variant()
    return encode_frame(address, v.code("get_firmware_version"), b"", v)


def cmd_set_work_antenna(
    antenna: int, address: int = 0xFF, variant: R2000Variant | None = None
) -> bytes:
    """Select antenna ``antenna`` (1-based, as printed on the reader) for the next round."""
    v = variant or R2000Variant()
    if not 1 <= antenna <= 8:
        raise ValueError(f"antenna: expected 1..8, found {antenna}")
    return encode_frame(address, v.code("set_work_antenna"), bytes([antenna - 1]), v)


def cmd_reset(address: int = 0xFF, variant: R2000Variant | None = None) -> bytes:
    v = variant or R2000Variant()
    return encode_frame(address, v.code("reset"), b"", v)


# -- streaming parser -------------------------------------------------------


@dataclass
class ParserStats:
    frames: int = 0
    garbage_bytes: int = 0
    bad_checksums: int = 0
    bad_lengths: int = 0
    stalled_resyncs: int = 0


class R2000Parser:
    """Cut a byte stream into frames; resync on the next header after any damage.

    The buffer never holds more than one maximal frame (257 bytes), so a
    flooding or babbling device cannot grow memory.
    """

    def __init__(self, variant: R2000Variant | None = None, name: str = "rfid") -> None:
        self.variant = variant or R2000Variant()
        self.name = name
        self.stats = ParserStats()
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        buf.extend(data)
        out: list[Frame] = []
        head = self.variant.header
        while buf:
            idx = buf.find(head)
            if idx < 0:
                self._garbage(bytes(buf))
                buf.clear()
                break
            if idx:
                self._garbage(bytes(buf[:idx]))
                del buf[:idx]
            if len(buf) < 2:
                break
            length = buf[1]
            if length < 3:
                self.stats.bad_lengths += 1
                if self.stats.bad_lengths % 100 == 1:  # a babbling line must not flood the journal
                    log.warning(
                        "r2000_bad_length",
                        reader=self.name,
                        length=length,
                        total=self.stats.bad_lengths,
                        hint="line noise or wrong protocol; check the reader protocol setting",
                    )
                del buf[:1]
                continue
            total = length + 2
            if len(buf) < total:
                break
            raw = bytes(buf[:total])
            if checksum(raw[:-1], self.variant.checksum) != raw[-1]:
                self.stats.bad_checksums += 1
                if self.stats.bad_checksums % 100 == 1:  # first, then every 100th
                    log.warning(
                        "r2000_checksum_bad",
                        reader=self.name,
                        total=self.stats.bad_checksums,
                        frame=raw.hex(),
                        hint="noise on the cable or wrong baud rate / checksum variant",
                    )
                del buf[:1]
                continue
            del buf[:total]
            self.stats.frames += 1
            out.append(Frame(address=raw[2], cmd=raw[3], data=raw[4:-1], raw=raw))
        return out

    def resync(self) -> list[Frame]:
        """Give up on a partial frame that never completed (a corrupt length byte
        makes the parser wait for up to 255 bytes); re-scan what follows it."""
        if not self._buf:
            return []
        self.stats.stalled_resyncs += 1
        log.warning(
            "r2000_partial_frame_dropped",
            reader=self.name,
            start=bytes(self._buf[:16]).hex(),
            hint="frame never completed: line noise or the reader stopped mid-frame",
        )
        del self._buf[:1]
        return self.feed(b"")

    @property
    def pending(self) -> int:
        return len(self._buf)

    def _garbage(self, junk: bytes) -> None:
        self.stats.garbage_bytes += len(junk)
        log.debug("r2000_garbage", reader=self.name, count=len(junk), data=junk[:32].hex())


# -- messages -----------------------------------------------------------------


@dataclass(frozen=True)
class InventoryTag:
    address: int
    epc: str
    pc: int
    rssi_dbm: int
    antenna: int
    freq_param: int


@dataclass(frozen=True)
class InventoryRoundEnd:
    address: int
    antenna: int
    read_rate: int
    total_read: int


@dataclass(frozen=True)
class StatusReply:
    """A one-byte status answer: success or an error code from the module."""

    address: int
    cmd: int
    code: int
    name: str

    @property
    def ok(self) -> bool:
        return self.code == 0x10


@dataclass(frozen=True)
class FirmwareVersion:
    address: int
    major: int
    minor: int


@dataclass(frozen=True)
class UnknownFrame:
    frame: Frame
    reason: str


Message = InventoryTag | InventoryRoundEnd | StatusReply | FirmwareVersion | UnknownFrame


def status_name(code: int) -> str:
    return ERROR_CODES.get(code, f"code_0x{code:02x}")


def decode(frame: Frame, variant: R2000Variant | None = None) -> Message:
    """Give a frame meaning. Never raises: odd contents become :class:`UnknownFrame`."""
    v = variant or R2000Variant()
    data = frame.data
    if len(data) == 1:
        code = data[0]
        return StatusReply(frame.address, frame.cmd, code, status_name(code))
    inventory_cmds = {
        v.commands.get("real_time_inventory"),
        v.commands.get("fast_switch_ant_inventory"),
    }
    if frame.cmd in inventory_cmds:
        if len(data) == 7:
            return InventoryRoundEnd(
                address=frame.address,
                antenna=data[0] + 1,
                read_rate=int.from_bytes(data[1:3], "big"),
                total_read=int.from_bytes(data[3:7], "big"),
            )
        if len(data) < 5:
            return UnknownFrame(frame, "inventory frame too short for freq/PC/RSSI")
        freq_ant, pc = data[0], int.from_bytes(data[1:3], "big")
        epc_len = (pc >> 11) * 2
        if epc_len == 0 or 3 + epc_len + 1 > len(data):
            epc_len = len(data) - 4  # trust the frame length over a damaged PC word
        epc = data[3 : 3 + epc_len]
        rssi_byte = data[3 + epc_len] if 3 + epc_len < len(data) else data[-1]
        antenna = (freq_ant & 0x03) + 1
        if v.rssi_high_bit_antenna and rssi_byte & 0x80:
            antenna += 4
        return InventoryTag(
            address=frame.address,
            epc=epc.hex().upper(),
            pc=pc,
            rssi_dbm=(rssi_byte & 0x7F) - v.rssi_offset_dbm,
            antenna=antenna,
            freq_param=freq_ant >> 2,
        )
    if frame.cmd == v.commands.get("get_firmware_version") and len(data) == 2:
        return FirmwareVersion(frame.address, data[0], data[1])
    return UnknownFrame(frame, "command not decoded")


# -- tag frames for simulators and tests ---------------------------------------


def tag_frame(
    epc_hex: str,
    *,
    antenna: int = 1,
    rssi_dbm: int = -55,
    freq_param: int = 7,
    address: int = 0xFF,
    variant: R2000Variant | None = None,
) -> bytes:
    """The frame a reader sends for one tag seen during real-time inventory."""
    v = variant or R2000Variant()
    epc = bytes.fromhex(epc_hex)
    if len(epc) % 2:
        raise ValueError(f"epc: expected whole 16-bit words, found {len(epc)} bytes")
    pc = (len(epc) // 2) << 11 | 0x0000
    rssi = max(0, min(0x7F, rssi_dbm + v.rssi_offset_dbm))
    ant0 = antenna - 1
    if ant0 >= 4:
        rssi |= 0x80
    data = bytes([(freq_param << 2) | (ant0 & 0x03)]) + pc.to_bytes(2, "big") + epc + bytes([rssi])
    return encode_frame(address, v.code("real_time_inventory"), data, v)


def round_end_frame(
    *,
    antenna: int = 1,
    read_rate: int = 0,
    total_read: int = 0,
    address: int = 0xFF,
    variant: R2000Variant | None = None,
) -> bytes:
    v = variant or R2000Variant()
    data = bytes([antenna - 1]) + read_rate.to_bytes(2, "big") + total_read.to_bytes(4, "big")
    return encode_frame(address, v.code("real_time_inventory"), data, v)


# -- the driver ------------------------------------------------------------------


class R2000Reader(RfidReader):
    """Keep an R2000 reader inventorying and report each tag it sees.

    The module only inventories when asked, so the driver re-issues the
    real-time inventory command after each end-of-round/error frame (cycling
    through the configured antennas) and again whenever the reader has been
    silent for ``resend_s`` (a lost command or a power-cycled reader).
    """

    def __init__(
        self,
        port: str,
        baudrate: int,
        on_read: TagCallback,
        *,
        name: str = "rfid",
        address: int = 0xFF,
        antennas: list[int] | None = None,
        repeat: int = 1,
        resend_s: float = 1.0,
        variant: R2000Variant | None = None,
        on_raw: Callable[[bytes], None] | None = None,
        on_message: Callable[[Message], None] | None = None,
        line_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name, on_read)
        self.variant = variant or R2000Variant()
        self.address = address
        self.antennas = list(antennas or [1])
        self.repeat = repeat
        self.resend_s = resend_s
        self.parser = R2000Parser(self.variant, name=name)
        self._on_raw = on_raw
        self._on_message = on_message
        self._ant_idx = 0
        self._last_rx = 0.0
        self.rounds = 0
        self.reader_errors = 0
        self.unknown_frames = 0
        self.resends = 0
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None
        self._parse_lock = threading.Lock()
        self.line = SerialLine(
            port,
            baudrate,
            self._on_bytes,
            name=name,
            on_connect=lambda _line: self._next_round(),
            **(line_kwargs or {}),
        )

    def start(self) -> R2000Reader:
        self._stop.clear()
        self.line.start()
        self._keeper = threading.Thread(
            target=self._keep_alive, name=f"{self.name}-keep", daemon=True
        )
        self._keeper.start()
        return self

    def close(self, timeout: float = 2.0) -> bool:
        self._stop.set()
        ok = self.line.close(timeout)
        if self._keeper is not None:
            self._keeper.join(timeout)
            ok = ok and not self._keeper.is_alive()
        return ok

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out.update(vars(self.parser.stats))
        out.update(
            rounds=self.rounds,
            reader_errors=self.reader_errors,
            unknown_frames=self.unknown_frames,
            resends=self.resends,
        )
        out.update({f"line_{k}": v for k, v in self.line.stats().items()})
        return out

    def _next_round(self) -> None:
        ant = self.antennas[self._ant_idx % len(self.antennas)]
        self._ant_idx += 1
        self._last_rx = time.monotonic()
        if len(self.antennas) > 1:
            self.line.write(cmd_set_work_antenna(ant, self.address, self.variant))
        self.line.write(cmd_real_time_inventory(self.address, self.repeat, self.variant))

    def _keep_alive(self) -> None:
        while not self._stop.wait(self.resend_s / 2):
            if self.line.connected and time.monotonic() - self._last_rx > self.resend_s:
                with self._parse_lock:
                    frames = self.parser.resync() if self.parser.pending else []
                self._handle_frames(frames)
                if frames:
                    continue
                self.resends += 1
                log.debug("r2000_resend_inventory", reader=self.name)
                self._next_round()

    def _on_bytes(self, chunk: bytes) -> None:
        if self._on_raw is not None:
            self._on_raw(chunk)
        with self._parse_lock:
            frames = self.parser.feed(chunk)
        self._handle_frames(frames)

    def _handle_frames(self, frames: list[Frame]) -> None:
        for frame in frames:
            self._last_rx = time.monotonic()
            msg = decode(frame, self.variant)
            if self._on_message is not None:
                self._on_message(msg)
            self._handle(msg)

    def _handle(self, msg: Message) -> None:
        if isinstance(msg, InventoryTag):
            self._emit(
                TagRead(
                    epc=msg.epc,
                    time=time.time(),
                    reader=self.name,
                    rssi=float(msg.rssi_dbm),
                    antenna=msg.antenna,
                )
            )
        elif isinstance(msg, InventoryRoundEnd):
            self.rounds += 1
            self._next_round()
        elif isinstance(msg, StatusReply):
            if msg.cmd == self.variant.code("real_time_inventory"):
                if msg.code != 0x36:  # "no tag" is the normal empty-lane answer
                    self.reader_errors += 1
                    log.warning(
                        "r2000_reader_error",
                        reader=self.name,
                        code=f"0x{msg.code:02x}",
                        error=msg.name,
                        hint=ERROR_HINTS.get(msg.code, "see the reader manual for this code"),
                    )
                self._next_round()
            elif msg.code != self.variant.success_code:
                self.reader_errors += 1
                log.warning(
                    "r2000_command_rejected",
                    reader=self.name,
                    cmd=f"0x{msg.cmd:02x}",
                    code=f"0x{msg.code:02x}",
                    error=msg.name,
                    hint=ERROR_HINTS.get(msg.code, "see the reader manual for this code"),
                )
        elif isinstance(msg, UnknownFrame):
            self.unknown_frames += 1
            log.debug("r2000_unknown_frame", reader=self.name, frame=msg.frame.raw.hex())


@dataclass(frozen=True)
class R2000Config(SerialRfidConfig):
    """Binary 0xA0-framed UHF readers built on the Impinj R2000 module, and their clones."""

    type: str = field(
        default="r2000",
        metadata=doc("Reader protocol; the keys below depend on it", was="protocol"),
    )
    address: int = field(
        default=0xFF, metadata=doc("Reader address byte (0xFF = broadcast/any)", min=0, max=0xFF)
    )
    antennas: list[int] = field(
        default_factory=lambda: [1],
        metadata=doc("Antenna ports to inventory in turn, 1-based (天线号)"),
    )
    repeat: int = field(default=1, metadata=doc("Inventory rounds per command", min=1, max=255))
    resend_s: float = field(
        default=1.0,
        metadata=doc("Re-issue the inventory if the reader is silent this long", above=0),
    )
    header: int = field(
        default=0xA0,
        metadata=doc("Frame head byte of R2000 clones", min=0, max=0xFF, was="r2000_header"),
    )
    checksum: ChecksumKind = field(
        default="twos_complement_sum",
        metadata=doc("Check byte kind of R2000 clones", was="r2000_checksum"),
    )
    commands: dict[str, int] = field(
        default_factory=dict,
        metadata=doc(
            "Override command codes by name, e.g. { real_time_inventory = 0x89 }",
            was="r2000_commands",
        ),
    )
    rssi_offset_dbm: int = field(
        default=129,
        metadata=doc("dBm = (RSSI byte & 0x7F) - this offset", was="r2000_rssi_offset_dbm"),
    )

    def __post_init__(self) -> None:
        problems = []
        if not self.antennas or any(not 1 <= a <= 8 for a in self.antennas):
            problems.append(
                ("antennas", f"expected a non-empty list of 1..8, found {self.antennas}")
            )
        unknown = set(self.commands) - set(DEFAULT_COMMANDS)
        if unknown:
            problems.append(
                (
                    "commands",
                    f"unknown command names {sorted(unknown)}, known: {sorted(DEFAULT_COMMANDS)}",
                )
            )
        bad = [c for c in self.commands.values() if not 0 <= c <= 0xFF]
        if bad:
            problems.append(("commands", f"codes must be bytes 0..255, found {bad}"))
        if problems:
            raise Invalid(problems)

    def variant(self) -> R2000Variant:
        """The protocol variant these keys describe."""
        commands = dict(DEFAULT_COMMANDS)
        commands.update(self.commands)
        return R2000Variant(
            header=self.header,
            checksum=self.checksum,
            commands=commands,
            rssi_offset_dbm=self.rssi_offset_dbm,
        )


@driver("rfid", "r2000", R2000Config, "binary 0xA0 frames (R2000 module and clones)")
def _build(
    cfg: R2000Config,
    *,
    on_read: TagCallback,
    name: str = "rfid",
    on_raw: Callable[[bytes], None] | None = None,
    line_kwargs: dict[str, Any] | None = None,
    **_: Any,
) -> R2000Reader:
    return R2000Reader(
        cfg.port,
        cfg.baudrate,
        on_read,
        name=name,
        address=cfg.address,
        antennas=list(cfg.antennas),
        repeat=cfg.repeat,
        resend_s=cfg.resend_s,
        variant=cfg.variant(),
        on_raw=on_raw,
        line_kwargs=line_kwargs,
    )
