"""Weighbridge indicators (地磅仪表): continuous serial output to stable weights.

Truck scales at Chinese plants almost all end in an XK3190-family indicator
(or a clone) that streams the displayed weight several times a second. Two
output styles are supported, chosen in config:

* ``xk3190``: the framed "tf=0" continuous output, 12 bytes per frame::

      STX(0x02) sign('+'/'-') 6 digits (high first) dp('0'..'4')
      XOR-high XOR-low ETX(0x03)

  ``dp`` is the number of decimals counted from the right; the check is the
  XOR of the sign, digits and dp bytes, sent as two upper-case ASCII hex
  digits (nibble + 0x30, or + 0x37 above 9).
* ``ascii``: one weight per line, found by a configurable regex (named group
  ``weight``, optional ``unit``).

The indicator says nothing reliable about "stable" in these modes, so
:class:`StableDetector` decides it: the weight stayed within a tolerance for
a configured time. :class:`TareGross` pairs weigh-in and weigh-out of one
vehicle into gross/tare/net. Parsers and both classes are pure.
"""

from __future__ import annotations

import collections
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from drivers.serialport import LineSplitter, SerialLine
from edged.logs import get_logger

log = get_logger("scale")

STX, ETX = 0x02, 0x03
FRAME_LEN = 12
DEFAULT_ASCII_REGEX = r"(?P<weight>[+-]?\s*\d+(?:\.\d+)?)\s*(?P<unit>kg|t|g|lb)?"
UNIT_TO_KG = {"kg": 1.0, "t": 1000.0, "g": 0.001, "lb": 0.45359237}


@dataclass(frozen=True)
class ScaleConfig:
    enabled: bool = field(default=False, metadata={"doc": "weighbridge present (地磅)"})
    port: str = field(default="/dev/ttyUSB1", metadata={"doc": "serial port of the indicator"})
    baudrate: int = field(default=9600, metadata={"doc": "indicator baud rate (XK3190 bt=9600)"})
    format: Literal["xk3190", "ascii"] = field(
        default="xk3190",
        metadata={"doc": "xk3190 = framed continuous output (tf=0), ascii = one weight per line"},
    )
    regex: str = field(
        default=DEFAULT_ASCII_REGEX,
        metadata={"doc": "ascii format: regex with group 'weight' and optional group 'unit'"},
    )
    unit: Literal["kg", "t", "g", "lb"] = field(
        default="kg", metadata={"doc": "unit the indicator displays when the line names none"}
    )
    stable_tolerance_kg: float = field(
        default=20.0, metadata={"doc": "weight counts as stable within +/- this band (稳定)"}
    )
    stable_seconds: float = field(
        default=3.0, metadata={"doc": "how long the weight must stay in the band"}
    )
    min_load_kg: float = field(
        default=500.0, metadata={"doc": "below this the platform is considered empty"}
    )
    stale_seconds: float = field(
        default=3.0, metadata={"doc": "no frame for this long: weight unknown (indicator off?)"}
    )
    tare_gross: bool = field(
        default=False,
        metadata={"doc": "site weighs in and out: pair into gross/tare/net (皮重/毛重)"},
    )

    def __post_init__(self) -> None:
        if self.baudrate <= 0:
            raise ValueError(f"baudrate: expected a positive speed, found {self.baudrate}")
        try:
            pattern = re.compile(self.regex)
        except re.error as exc:
            raise ValueError(f"regex: not a valid regular expression ({exc})") from None
        if "weight" not in pattern.groupindex:
            raise ValueError(f"regex: needs a named group (?P<weight>...), found {self.regex!r}")
        if self.stable_tolerance_kg < 0:
            raise ValueError(
                f"stable_tolerance_kg: expected >= 0, found {self.stable_tolerance_kg}"
            )
        if self.stable_seconds <= 0:
            raise ValueError(f"stable_seconds: expected > 0, found {self.stable_seconds}")
        if self.stale_seconds <= 0:
            raise ValueError(f"stale_seconds: expected > 0, found {self.stale_seconds}")


@dataclass(frozen=True)
class WeightReading:
    kg: float
    time: float


# -- XK3190 framed output ---------------------------------------------------------


def _hex_nibble(n: int) -> int:
    return n + 0x30 if n <= 9 else n + 0x37


def xk3190_check(body: bytes) -> bytes:
    """The two check characters for sign+digits+dp."""
    x = 0
    for b in body:
        x ^= b
    return bytes([_hex_nibble(x >> 4), _hex_nibble(x & 0x0F)])


def encode_xk3190(kg: float, decimals: int = 0) -> bytes:
    """Frame for a displayed weight (simulators and tests)."""
    if not 0 <= decimals <= 4:
        raise ValueError(f"decimals: expected 0..4, found {decimals}")
    units = round(abs(kg) * 10**decimals)
    if units > 999_999:
        raise ValueError(f"weight {kg} does not fit 6 digits with {decimals} decimals")
    body = (b"-" if kg < 0 else b"+") + f"{units:06d}".encode() + str(decimals).encode()
    return bytes([STX]) + body + xk3190_check(body) + bytes([ETX])


@dataclass
class ScaleParserStats:
    frames: int = 0
    garbage_bytes: int = 0
    bad_checksums: int = 0
    bad_frames: int = 0
    rejected_lines: int = 0
    overlong_lines: int = 0


class Xk3190Parser:
    """Bytes to weights (in the indicator's unit times ``to_kg``); resyncs on STX."""

    def __init__(self, to_kg: float = 1.0, name: str = "scale") -> None:
        self.to_kg = to_kg
        self.name = name
        self.stats = ScaleParserStats()
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[float]:
        buf = self._buf
        buf.extend(data)
        out: list[float] = []
        while buf:
            idx = buf.find(STX)
            if idx < 0:
                self.stats.garbage_bytes += len(buf)
                buf.clear()
                break
            if idx:
                self.stats.garbage_bytes += idx
                del buf[:idx]
            if len(buf) < FRAME_LEN:
                break
            frame = bytes(buf[:FRAME_LEN])
            value = self._decode(frame)
            if value is None:
                del buf[:1]
                continue
            del buf[:FRAME_LEN]
            self.stats.frames += 1
            out.append(value)
        return out

    def _decode(self, frame: bytes) -> float | None:
        body = frame[1:9]
        sign, digits, dp = body[0:1], body[1:7], body[7:8]
        if (
            frame[11] != ETX
            or sign not in (b"+", b"-")
            or not digits.isdigit()
            or dp not in b"01234"
            or len(dp) != 1
        ):
            self.stats.bad_frames += 1
            if self.stats.bad_frames % 100 == 1:  # a babbling line must not flood the journal
                log.warning(
                    "xk3190_bad_frame",
                    scale=self.name,
                    total=self.stats.bad_frames,
                    frame=frame.hex(),
                    hint="indicator not in tf=0 continuous mode, or wrong baud rate",
                )
            return None
        if xk3190_check(body) != frame[9:11]:
            self.stats.bad_checksums += 1
            if self.stats.bad_checksums % 100 == 1:  # first, then every 100th
                log.warning(
                    "xk3190_checksum_bad",
                    scale=self.name,
                    total=self.stats.bad_checksums,
                    frame=frame.hex(),
                    hint="noise on the RS232/RS422 cable: check shielding and length",
                )
            return None
        value = int(digits) / 10 ** int(dp)
        return (-value if sign == b"-" else value) * self.to_kg


class AsciiWeightParser:
    """Line-oriented indicators: the regex picks the weight (and unit) out of each line."""

    def __init__(
        self,
        regex: str = DEFAULT_ASCII_REGEX,
        unit: str = "kg",
        max_line: int = 128,
        name: str = "scale",
    ) -> None:
        self._re = re.compile(regex, re.IGNORECASE)
        self.default_factor = UNIT_TO_KG[unit]
        self.max_line = max_line
        self.name = name
        self.stats = ScaleParserStats()
        self._lines = LineSplitter(bytes((0x0A, 0x0D, STX, ETX)), max_line)

    def feed(self, data: bytes) -> list[float]:
        lines, overlong = self._lines.feed(data)
        for dropped in overlong:
            self.stats.overlong_lines += 1
            self.stats.garbage_bytes += len(dropped)
            log.warning(
                "scale_line_too_long",
                scale=self.name,
                start=dropped[:32].hex(),
                hint="no line end seen: check baud rate and the indicator output mode",
            )
        return [v for v in map(self.parse_line, lines) if v is not None]

    def parse_line(self, raw: bytes) -> float | None:
        text = raw.decode("ascii", errors="replace")
        m = self._re.search(text)
        if m is None:
            self.stats.rejected_lines += 1
            log.warning(
                "scale_line_rejected",
                scale=self.name,
                line=raw[:64].hex(),
                hint="line does not match the configured weight regex",
            )
            return None
        try:
            value = float(m.group("weight").replace(" ", ""))
        except ValueError:
            self.stats.rejected_lines += 1
            return None
        unit = (m.groupdict().get("unit") or "").lower()
        self.stats.frames += 1
        return value * UNIT_TO_KG.get(unit, self.default_factor)


def make_parser(cfg: ScaleConfig, name: str = "scale") -> Xk3190Parser | AsciiWeightParser:
    if cfg.format == "xk3190":
        return Xk3190Parser(UNIT_TO_KG[cfg.unit], name=name)
    return AsciiWeightParser(cfg.regex, cfg.unit, name=name)


# -- stable weight ---------------------------------------------------------------


@dataclass(frozen=True)
class StableWeight:
    kg: float
    since: float
    until: float
    samples: int


class StableDetector:
    """Stable = every sample of the last ``stable_s`` lies within ``tolerance_kg`` band.

    Fed with (time, kg); :meth:`feed` returns a :class:`StableWeight` once each
    time the weight *becomes* stable, and :attr:`stable` tells the current state.
    Samples older than needed are dropped, so memory stays bounded however long
    a truck stands on the bridge.
    """

    def __init__(self, tolerance_kg: float = 20.0, stable_s: float = 3.0) -> None:
        self.tolerance_kg = tolerance_kg
        self.stable_s = stable_s
        self._samples: collections.deque[tuple[float, float]] = collections.deque()
        self._stable: StableWeight | None = None

    def feed(self, t: float, kg: float) -> StableWeight | None:
        s = self._samples
        if s and t < s[-1][0]:
            s.clear()  # clock went backwards: start over rather than guess
        s.append((t, kg))
        while len(s) > 1:
            ws = [w for _, w in s]
            if max(ws) - min(ws) <= self.tolerance_kg:
                break
            s.popleft()
        while len(s) > 2 and t - s[1][0] >= self.stable_s:
            s.popleft()
        was = self._stable
        if t - s[0][0] >= self.stable_s:
            ws = sorted(w for _, w in s)
            median = ws[len(ws) // 2]
            since = (
                was.since
                if was is not None and abs(was.kg - median) <= self.tolerance_kg
                else s[0][0]
            )
            self._stable = StableWeight(median, since, t, len(ws))
            return self._stable if was is None else None
        self._stable = None
        return None

    @property
    def stable(self) -> StableWeight | None:
        return self._stable

    def reset(self) -> None:
        self._samples.clear()
        self._stable = None


# -- tare / gross -----------------------------------------------------------------


@dataclass(frozen=True)
class Weighing:
    """Result of one weighing of a vehicle.

    ``kind`` is ``first`` (waiting for the second weighing) or ``complete``.
    When complete, gross is the heavier and tare the lighter of the two, so a
    delivery (in loaded) and a shipment (in empty) both come out right.
    """

    plate: str
    kind: Literal["first", "complete"]
    kg: float
    time: float
    gross_kg: float | None = None
    tare_kg: float | None = None
    net_kg: float | None = None
    first_time: float | None = None


class TareGross:
    """Pair weigh-in and weigh-out per plate. Open tickets expire after ``max_open_s``."""

    def __init__(self, max_open_s: float = 24 * 3600.0) -> None:
        self.max_open_s = max_open_s
        self._open: dict[str, tuple[float, float]] = {}

    def weigh(
        self, plate: str, kg: float, t: float, preset_tare_kg: float | None = None
    ) -> Weighing:
        """Record a stable weight; ``preset_tare_kg`` (from the registry) completes at once."""
        if preset_tare_kg is not None:
            gross, tare = max(kg, preset_tare_kg), min(kg, preset_tare_kg)
            return Weighing(plate, "complete", kg, t, gross, tare, gross - tare)
        prev = self._open.pop(plate, None)
        if prev is not None and 0 <= t - prev[1] <= self.max_open_s:
            first_kg, first_t = prev
            gross, tare = max(kg, first_kg), min(kg, first_kg)
            return Weighing(plate, "complete", kg, t, gross, tare, gross - tare, first_t)
        self._open[plate] = (kg, t)
        return Weighing(plate, "first", kg, t)

    def open_tickets(self) -> dict[str, tuple[float, float]]:
        """plate -> (kg, time) of first weighings, for persisting across restarts."""
        return dict(self._open)

    def restore(self, tickets: dict[str, tuple[float, float]]) -> None:
        self._open.update(tickets)


# -- the driver ---------------------------------------------------------------------


class ScaleReader:
    """Indicator on a serial line -> latest weight, stable weight, callbacks."""

    def __init__(
        self,
        cfg: ScaleConfig,
        *,
        name: str = "scale",
        on_weight: Callable[[WeightReading], None] | None = None,
        on_stable: Callable[[StableWeight], None] | None = None,
        on_raw: Callable[[bytes], None] | None = None,
        clock: Callable[[], float] = time.time,
        line_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self.name = name
        self.parser = make_parser(cfg, name)
        self.detector = StableDetector(cfg.stable_tolerance_kg, cfg.stable_seconds)
        self._on_weight = on_weight
        self._on_stable = on_stable
        self._on_raw = on_raw
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: WeightReading | None = None
        self.callback_errors = 0
        self.line = SerialLine(
            cfg.port, cfg.baudrate, self._on_bytes, name=name, **(line_kwargs or {})
        )

    def start(self) -> ScaleReader:
        self.line.start()
        return self

    def close(self, timeout: float = 2.0) -> bool:
        return self.line.close(timeout)

    @property
    def latest(self) -> WeightReading | None:
        """Last weight, or None when the indicator has been silent ``stale_seconds``."""
        with self._lock:
            r = self._latest
        if r is None or self._clock() - r.time > self.cfg.stale_seconds:
            return None
        return r

    @property
    def stable(self) -> StableWeight | None:
        """Current stable weight, or None (moving, or no fresh data)."""
        if self.latest is None:
            return None
        with self._lock:
            return self.detector.stable

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(vars(self.parser.stats))
        out["callback_errors"] = self.callback_errors
        out.update({f"line_{k}": v for k, v in self.line.stats().items()})
        return out

    def _on_bytes(self, chunk: bytes) -> None:
        if self._on_raw is not None:
            self._on_raw(chunk)
        for kg in self.parser.feed(chunk):
            now = self._clock()
            reading = WeightReading(kg, now)
            with self._lock:
                self._latest = reading
                became = self.detector.feed(now, kg)
            self._call(self._on_weight, reading)
            if became is not None:
                log.info("scale_stable", scale=self.name, kg=became.kg)
                self._call(self._on_stable, became)

    def _call(self, fn: Callable[[Any], None] | None, arg: Any) -> None:
        if fn is None:
            return
        try:
            fn(arg)
        except Exception as exc:
            self.callback_errors += 1
            log.error("scale_callback_failed", scale=self.name, error=repr(exc))
