"""Register maps: what to read from a meter and how to turn words into values.

Meters disagree about everything: which function code holds a value, whether a
float's high word comes first, whether bytes inside a word are swapped, what
scale the integer carries. All of that is data in the config, so one decoder
serves every meter and a new meter is a new TOML file, not new code. This
module is pure (no I/O): the codec, the read planner and the config classes.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from edged.config.schema import Invalid, doc

DataType = Literal[
    "bool", "int16", "uint16", "int32", "uint32", "float32", "int64", "uint64", "float64"
]
WordOrder = Literal["ABCD", "CDAB", "BADC", "DCBA"]
CouMode = Literal["none", "sum", "delta", "integral"]

#: registers per value for each data type (bool is one coil / input bit or one register)
WIDTH: dict[str, int] = {
    "bool": 1,
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "float32": 2,
    "int64": 4,
    "uint64": 4,
    "float64": 4,
}
_STRUCT = {
    "int16": ">h",
    "uint16": ">H",
    "int32": ">i",
    "uint32": ">I",
    "float32": ">f",
    "int64": ">q",
    "uint64": ">Q",
    "float64": ">d",
}
#: the Modbus spec's limits per request: 125 registers, 2000 bits
MAX_REGISTERS = 125
MAX_BITS = 2000
_FACTOR_RE = re.compile(r"^[A-Za-z0-9]{6}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


class DecodeError(ValueError):
    """Words that do not make a usable value (NaN/inf float, wrong count)."""


@dataclass(frozen=True)
class RegisterPoint:
    """One value read from a meter (a row of the 现场安装调试信息表)."""

    name: str = field(
        default="", metadata=doc("Point name, unique within the device, e.g. 'ua' or 'fan_current'")
    )
    function: int = field(
        default=3,
        metadata=doc(
            "Modbus function code: 1 coils, 2 discrete inputs, 3 holding registers, 4 input "
            "registers",
            min=1,
            max=4,
        ),
    )
    address: int = field(
        default=0,
        metadata=doc(
            "Zero-based register/bit address as sent on the wire (meter manuals often print 40001 "
            "= address 0)",
            min=0,
            max=0xFFFF,
        ),
    )
    type: DataType = field(
        default="uint16",
        metadata=doc(
            "Data type: bool, int16, uint16, int32, uint32, float32, int64, uint64, float64"
        ),
    )
    order: WordOrder = field(
        default="ABCD",
        metadata=doc(
            "Byte order of multi-byte values: ABCD big-endian, CDAB word-swapped, BADC "
            "byte-swapped, DCBA little-endian"
        ),
    )
    bit: int | None = field(
        default=None,
        metadata=doc(
            "For type bool read from a register (function 3/4): bit number; unset means "
            "'register is non-zero'",
            min=0,
            max=15,
        ),
    )
    scale: float = field(
        default=1.0,
        metadata=doc(
            "Engineering value = raw * scale + offset (e.g. 0.1 for a value sent in tenths)"
        ),
    )
    offset: float = field(default=0.0, metadata=doc("Added after scaling"))
    unit: str = field(
        default="", metadata=doc("Engineering unit shown to people, e.g. V, A, kW, kWh, ℃")
    )
    factor: str = field(
        default="",
        metadata=doc(
            "HJ 212 factor code (监测因子编码), 6 characters: letter code + module number per the "
            "guide, e.g. 'i12001'; empty = stored locally, not uploaded"
        ),
    )
    low: float | None = field(
        default=None,
        metadata=doc(
            "Lower limit (超限下限); a value below it is flagged T and raises an over-limit event"
        ),
    )
    high: float | None = field(
        default=None,
        metadata=doc(
            "Upper limit (超限上限); a value above it is flagged T and raises an over-limit event"
        ),
    )
    cou: CouMode = field(
        default="none",
        metadata=doc(
            "How the period total Cou (累计值) is made: none; sum of samples; delta of a counter "
            "such as kWh; integral of a rate over time"
        ),
    )
    cou_unit_s: float = field(
        default=3600.0,
        metadata=doc(
            "For cou=integral: the rate's time unit in seconds (3600 for m³/h, 1 for L/s)",
            above=0,
            was="cou_per_seconds",
        ),
    )

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        if not self.name or not _NAME_RE.match(self.name):
            problems.append(
                ("name", f"expected letters, digits, '_', '.', '-', found {self.name!r}")
            )
        if self.type not in WIDTH:
            problems.append(("type", f"expected one of {', '.join(WIDTH)}, found {self.type!r}"))
        elif self.function in (1, 2) and self.type != "bool":
            problems.append(
                (
                    "type",
                    f"function {self.function} reads bits, so type must be bool, found"
                    f" {self.type!r}",
                )
            )
        elif 0 <= self.address <= 0xFFFF and self.address + self.width - 1 > 0xFFFF:
            problems.append(("address", f"{self.type} at {self.address} runs past register 65535"))
        if self.bit is not None and self.type != "bool":
            problems.append(("bit", f"expected type bool with a bit, found type {self.type}"))
        if self.factor and not _FACTOR_RE.match(self.factor):
            problems.append(
                ("factor", f"expected 6 letters/digits (e.g. 'i12001'), found {self.factor!r}")
            )
        if not math.isfinite(self.scale) or self.scale == 0:
            problems.append(("scale", f"expected a finite non-zero number, found {self.scale}"))
        if self.low is not None and self.high is not None and self.low > self.high:
            problems.append(("low", f"expected low <= high, found low={self.low} high={self.high}"))
        if problems:
            raise Invalid(problems)

    @property
    def width(self) -> int:
        """Registers (or bits) this point occupies."""
        return WIDTH[self.type]

    @property
    def is_bits(self) -> bool:
        return self.function in (1, 2)

    def over_limit(self, value: float) -> bool:
        return (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        )


def _ordered_bytes(words: Sequence[int], order: str) -> bytes:
    """Bring the words into big-endian (ABCD) byte order for struct."""
    ws = list(words)
    if order in ("CDAB", "DCBA"):
        ws.reverse()
    raw = b"".join((w & 0xFFFF).to_bytes(2, "big") for w in ws)
    if order in ("BADC", "DCBA"):
        raw = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    return raw


def decode_raw(point: RegisterPoint, words: Sequence[int] | Sequence[bool]) -> int | float:
    """Words (or bits) of one point → raw number before scale/offset.

    Integers stay int so 64-bit counters are exact here; :func:`decode`
    turns them into float like every engineering value.
    """
    if len(words) != point.width:
        raise DecodeError(f"{point.name}: expected {point.width} words, got {len(words)}")
    if point.type == "bool":
        w = int(words[0])
        if point.is_bits:
            return 1.0 if w else 0.0
        if point.order in ("BADC", "DCBA"):
            w = ((w & 0xFF) << 8) | (w >> 8)
        if point.bit is not None:
            return float((w >> point.bit) & 1)
        return 1.0 if w else 0.0
    (value,) = struct.unpack(
        _STRUCT[point.type], _ordered_bytes([int(w) for w in words], point.order)
    )
    if isinstance(value, float) and not math.isfinite(value):
        raise DecodeError(f"{point.name}: {point.type} is {value} (meter reports no valid value)")
    return value


def decode(point: RegisterPoint, words: Sequence[int] | Sequence[bool]) -> float:
    """Words of one point → engineering value (raw * scale + offset)."""
    raw = decode_raw(point, words)
    if point.type == "bool":
        return float(raw)
    return float(raw * point.scale + point.offset)


def encode(point: RegisterPoint, raw: float) -> list[int]:
    """Raw number → words as the meter would send them (for simulators and tests)."""
    if point.type == "bool":
        if point.is_bits:
            return [1 if raw else 0]
        w = (1 << point.bit) if (point.bit is not None and raw) else (1 if raw else 0)
        if point.order in ("BADC", "DCBA"):
            w = ((w & 0xFF) << 8) | (w >> 8)
        return [w]
    fmt = _STRUCT[point.type]
    num = raw if point.type.startswith("float") else int(raw)
    big = struct.pack(fmt, num)
    words = [int.from_bytes(big[i : i + 2], "big") for i in range(0, len(big), 2)]
    # each of the four orders is its own inverse, so reuse the reordering
    back = _ordered_bytes(words, point.order)
    return [int.from_bytes(back[i : i + 2], "big") for i in range(0, len(back), 2)]


@dataclass(frozen=True)
class ReadBlock:
    """One Modbus request and the points it carries."""

    function: int
    address: int
    count: int
    points: tuple[RegisterPoint, ...]

    def slice(self, point: RegisterPoint, data: Sequence[int] | Sequence[bool]) -> list:
        start = point.address - self.address
        return list(data[start : start + point.width])


def plan_reads(
    points: Sequence[RegisterPoint], max_gap: int = 0, max_registers: int = MAX_REGISTERS
) -> list[ReadBlock]:
    """Group points into as few requests as possible.

    Every request costs a round trip (on RS485 at 9600 baud, ~30 ms plus the
    meter's turnaround), so contiguous points share one read. ``max_gap``
    allows bridging small holes; it is 0 by default because many meters
    answer a read that touches an unmapped register with an exception.
    """
    blocks: list[ReadBlock] = []
    by_fc: dict[int, list[RegisterPoint]] = {}
    for p in points:
        by_fc.setdefault(p.function, []).append(p)
    for fc in sorted(by_fc):
        limit = MAX_BITS if fc in (1, 2) else max_registers
        cur: list[RegisterPoint] = []
        start = end = 0
        for p in sorted(by_fc[fc], key=lambda p: (p.address, p.width)):
            p_end = p.address + p.width
            if cur and p.address <= end + max_gap and max(end, p_end) - start <= limit:
                cur.append(p)
                end = max(end, p_end)
                continue
            if cur:
                blocks.append(ReadBlock(fc, start, end - start, tuple(cur)))
            cur, start, end = [p], p.address, p_end
        if cur:
            blocks.append(ReadBlock(fc, start, end - start, tuple(cur)))
    return blocks


@dataclass(frozen=True)
class PollGroup:
    """A set of devices read on the same interval (采集间隔)."""

    name: str = field(default="default", metadata=doc("Group name that devices refer to"))
    interval_s: float = field(
        default=300.0,
        metadata=doc(
            "Time between reads (采集间隔); the guide sets 5 min as default and maximum (it "
            "forbids sampling less often), real-time data is typically 30–60 s",
            min=1,
            max=300,
            was="interval_seconds",
        ),
    )

    def __post_init__(self) -> None:
        if not self.name:
            raise Invalid([("name", "expected a non-empty group name, found ''")])


@dataclass(frozen=True)
class ModbusDevice:
    """One meter or module on a bus (RS485 line or TCP gateway)."""

    name: str = field(
        default="", metadata=doc("Device name used in logs, events and stats, e.g. 'fan1_meter'")
    )
    transport: Literal["rtu", "tcp"] = field(
        default="rtu",
        metadata=doc("rtu: RS485 serial line; tcp: Modbus TCP meter or RS485-to-Ethernet gateway"),
    )
    host: str = field(default="", metadata=doc("For tcp: IP address or host name"))
    port: int = field(default=502, metadata=doc("For tcp: TCP port", min=1, max=65535))
    serial_port: str = field(
        default="/dev/ttyUSB0", metadata=doc("For rtu: serial device (or pyserial URL)")
    )
    baudrate: int = field(default=9600, metadata=doc("For rtu: baud rate (波特率)"))
    parity: Literal["N", "E", "O"] = field(
        default="N", metadata=doc("For rtu: parity N/E/O (校验位)")
    )
    stopbits: int = field(
        default=1, metadata=doc("For rtu: stop bits 1 or 2 (停止位)", min=1, max=2)
    )
    unit: int = field(
        default=1,
        metadata=doc("Modbus unit id / slave address (设备地址); RS485: 1..247", min=0, max=255),
    )
    timeout_s: float = field(
        default=1.0,
        metadata=doc(
            "Wait this long for an answer before the try counts as failed",
            min=0.05,
            max=30,
            was="timeout_seconds",
        ),
    )
    retries: int = field(
        default=2,
        metadata=doc(
            "Extra tries per read before the sample is flagged B (通讯异常)", min=0, max=10
        ),
    )
    poll_group: str = field(
        default="default", metadata=doc("Name of the poll group that sets this device's interval")
    )
    max_gap: int = field(
        default=0,
        metadata=doc(
            "Unmapped registers a single read may bridge; keep 0 unless the meter tolerates it",
            min=0,
            max=100,
        ),
    )
    enabled: bool = field(
        default=True, metadata=doc("false keeps the device in the file but stops polling it")
    )
    points: list[RegisterPoint] = field(
        default_factory=list, metadata=doc("Register map (寄存器表)")
    )

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        if not self.name or not _NAME_RE.match(self.name):
            problems.append(
                ("name", f"expected letters, digits, '_', '.', '-', found {self.name!r}")
            )
        if self.transport == "tcp" and not self.host:
            problems.append(("host", "expected an address for transport tcp, found ''"))
        if self.transport == "rtu" and not self.serial_port:
            problems.append(("serial_port", "expected a serial device for transport rtu, found ''"))
        names = [p.name for p in self.points]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            problems.append(("points", f"expected unique point names, found duplicates {dup}"))
        if problems:
            raise Invalid(problems)

    @property
    def bus(self) -> str:
        """Devices with the same bus share one connection and one thread."""
        if self.transport == "tcp":
            return f"tcp:{self.host}:{self.port}"
        return f"rtu:{self.serial_port}"


@dataclass(frozen=True)
class ModbusConfig:
    """The data logger's meters (数采仪 acquisition side): every device listed is polled."""

    removed_keys: ClassVar[dict[str, str]] = {
        "enabled": "every device under [[modbus.devices]] is polled; write enabled = false in a"
        " device's own table to stop polling it",
    }

    poll_groups: list[PollGroup] = field(
        default_factory=lambda: [PollGroup()],
        metadata=doc("Poll groups (采集间隔组); 'default' is 300 s"),
    )
    devices: list[ModbusDevice] = field(
        default_factory=list, metadata=doc("Meters and modules to poll")
    )

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        groups = [g.name for g in self.poll_groups]
        if len(set(groups)) != len(groups):
            problems.append(("poll_groups", f"expected unique names, found {groups}"))
        names = [d.name for d in self.devices]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            problems.append(("devices", f"expected unique device names, found duplicates {dup}"))
        for d in self.devices:
            if d.poll_group not in groups:
                problems.append(
                    (
                        "devices",
                        f"device {d.name!r} uses poll_group {d.poll_group!r}, defined groups"
                        f" are {groups}",
                    )
                )
        lines: dict[str, ModbusDevice] = {}
        for d in self.devices:
            first = lines.setdefault(d.bus, d)
            if d.transport == "rtu" and (d.baudrate, d.parity, d.stopbits) != (
                first.baudrate,
                first.parity,
                first.stopbits,
            ):
                problems.append(
                    (
                        "devices",
                        f"{d.name!r} and {first.name!r} share {d.serial_port} but differ in"
                        " baudrate/parity/stopbits; all meters on one RS485 line must use the same",
                    )
                )
        factors: dict[str, str] = {}
        for d in self.devices:
            for p in d.points:
                if p.factor and p.factor in factors:
                    problems.append(
                        (
                            "devices",
                            f"factor {p.factor!r} used by {factors[p.factor]} and"
                            f" {d.name}.{p.name}; each HJ 212 factor code must be unique",
                        )
                    )
                if p.factor:
                    factors[p.factor] = f"{d.name}.{p.name}"
        if problems:
            raise Invalid(problems)

    def interval(self, device: ModbusDevice) -> float:
        return next(g.interval_s for g in self.poll_groups if g.name == device.poll_group)

    def points_by_key(self) -> dict[str, RegisterPoint]:
        """Every point under the key its samples are stored with (see :func:`point_key`)."""
        return {point_key(d.name, p): p for d in self.devices for p in d.points}


def point_key(device: str, point: RegisterPoint) -> str:
    """Storage key: the HJ 212 factor code when there is one, else 'device.point'."""
    return point.factor or f"{device}.{point.name}"
