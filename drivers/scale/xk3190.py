"""``type = "xk3190"``: the framed "tf=0" continuous output of XK3190 indicators.

12 bytes per frame::

    STX(0x02) sign('+'/'-') 6 digits (high first) dp('0'..'4')
    XOR-high XOR-low ETX(0x03)

``dp`` is the number of decimals counted from the right; the check is the
XOR of the sign, digits and dp bytes, sent as two upper-case ASCII hex
digits (nibble + 0x30, or + 0x37 above 9). The parser is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drivers.config import doc, driver
from drivers.log import get_logger
from drivers.scale import UNIT_TO_KG, ScaleConfig, ScaleParserStats
from drivers.scale.reader import ScaleReader

log = get_logger("scale")

STX, ETX = 0x02, 0x03
FRAME_LEN = 12


@dataclass(frozen=True)
class Xk3190Config(ScaleConfig):
    type: str = field(
        default="xk3190",
        metadata=doc("Indicator output; the keys below depend on it", was="format"),
    )


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


@driver("scale", "xk3190", Xk3190Config, "XK3190 framed continuous output (tf=0)")
def _build(cfg: Xk3190Config, *, name: str = "scale", **kwargs: Any) -> ScaleReader:
    """The reader around this model's parser; ``kwargs`` are :class:`ScaleReader`'s callbacks."""
    return ScaleReader(cfg, Xk3190Parser(UNIT_TO_KG[cfg.unit], name=name), name=name, **kwargs)
