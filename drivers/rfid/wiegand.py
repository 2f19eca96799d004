"""Wiegand 26/34 from access-control style readers on two GPIO inputs.

Some gates use long-range readers that only speak Wiegand: two open-collector
lines, D0 and D1, idle high; each bit is a short low pulse on D0 (a 0) or D1
(a 1), and a frame ends when no pulse comes for a few milliseconds. The first
bit is even parity over the first half of the data bits, the last is odd
parity over the second half. A bad parity means a missed pulse (loose wire,
noise), so the frame is dropped and counted rather than guessed at.

:func:`decode_wiegand` is pure; :class:`WiegandReceiver` turns gpiozero
edge callbacks into frames, ending each one by an inter-bit timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from drivers.config import Invalid, doc, driver
from drivers.log import get_logger
from drivers.rfid.base import RfidConfig, RfidReader, TagCallback, TagRead

log = get_logger("rfid")

IdFormat = Literal["decimal", "hex", "facility_card"]

# bits -> (facility bit count, card bit count)
LAYOUTS: dict[int, tuple[int, int]] = {26: (8, 16), 34: (16, 16)}


class WiegandError(ValueError):
    """A frame that cannot be trusted; the message says why."""


@dataclass(frozen=True)
class WiegandCard:
    bits: int
    facility: int
    card: int

    @property
    def data(self) -> int:
        """The data bits as one number (what most card labels print in decimal)."""
        _, card_bits = LAYOUTS[self.bits]
        return (self.facility << card_bits) | self.card

    def tag_id(self, fmt: IdFormat = "decimal") -> str:
        """The id string the registry stores for this card."""
        if fmt == "hex":
            return f"{self.data:0{(self.bits - 2) // 4}X}"
        if fmt == "facility_card":
            return f"{self.facility:03d},{self.card:05d}"
        return f"{self.data:010d}"


def _ones(bits: Sequence[int]) -> int:
    return sum(1 for b in bits if b)


def decode_wiegand(bits: Sequence[int]) -> WiegandCard:
    """Check parity and split facility/card; raises :class:`WiegandError`."""
    n = len(bits)
    if n not in LAYOUTS:
        raise WiegandError(f"{n} bits received, expected one of {sorted(LAYOUTS)}")
    if any(b not in (0, 1) for b in bits):
        raise WiegandError("bits must be 0 or 1")
    data = bits[1:-1]
    half = len(data) // 2
    if _ones([bits[0], *data[:half]]) % 2 != 0:
        raise WiegandError("even parity (first bit) wrong: a pulse was missed or noise added")
    if _ones([*data[half:], bits[-1]]) % 2 != 1:
        raise WiegandError("odd parity (last bit) wrong: a pulse was missed or noise added")
    fac_bits, _ = LAYOUTS[n]
    value = 0
    for b in data:
        value = (value << 1) | b
    card_bits = len(data) - fac_bits
    return WiegandCard(n, value >> card_bits, value & ((1 << card_bits) - 1))


def encode_wiegand(facility: int, card: int, bits: int = 26) -> list[int]:
    """Bits of a valid frame, for simulators and tests."""
    fac_bits, card_bits = LAYOUTS[bits]
    if not (0 <= facility < 1 << fac_bits and 0 <= card < 1 << card_bits):
        raise ValueError(f"facility/card out of range for Wiegand {bits}")
    value = (facility << card_bits) | card
    data = [(value >> i) & 1 for i in range(fac_bits + card_bits - 1, -1, -1)]
    half = len(data) // 2
    even = _ones(data[:half]) % 2
    odd = 1 - _ones(data[half:]) % 2
    return [even, *data, odd]


@dataclass
class WiegandStats:
    frames: int = 0
    parity_errors: int = 0
    wrong_length: int = 0
    overlong: int = 0


class WiegandReceiver:
    """Collect D0/D1 pulses into frames; call ``on_card`` for each valid one.

    ``pin_factory`` lets tests pass gpiozero's ``MockFactory``; on the box it is
    gpiozero's default (lgpio on a Pi).
    """

    MAX_BITS = 64

    def __init__(
        self,
        d0_pin: int | str,
        d1_pin: int | str,
        on_card: Callable[[WiegandCard], None],
        *,
        bits: Sequence[int] = (26, 34),
        timeout_s: float = 0.025,
        pin_factory: Any = None,
        name: str = "wiegand",
    ) -> None:
        from gpiozero import DigitalInputDevice  # imported late: only Wiegand sites need GPIO

        self.name = name
        self.allowed = tuple(bits)
        self.timeout_s = timeout_s
        self.stats = WiegandStats()
        self._on_card = on_card
        self._bits: list[int] = []
        self._last = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._d0 = DigitalInputDevice(d0_pin, pull_up=True, pin_factory=pin_factory)
        self._d1 = DigitalInputDevice(d1_pin, pull_up=True, pin_factory=pin_factory)
        self._d0.when_activated = lambda *_: self.pulse(0)
        self._d1.when_activated = lambda *_: self.pulse(1)
        self._watch = threading.Thread(target=self._watch_loop, name=f"{name}-frame", daemon=True)
        self._watch.start()

    def pulse(self, bit: int) -> None:
        """One bit arrived (called from the GPIO edge callback)."""
        with self._lock:
            if len(self._bits) >= self.MAX_BITS:
                self.stats.overlong += 1
                self._bits.clear()
                log.warning(
                    "wiegand_overlong",
                    reader=self.name,
                    hint="continuous pulses: check D0/D1 wiring and ground",
                )
            self._bits.append(bit)
            self._last = time.monotonic()

    def flush(self) -> WiegandCard | None:
        """End the current frame now (normally done by the timeout)."""
        with self._lock:
            bits, self._bits = self._bits, []
        if not bits:
            return None
        if len(bits) not in self.allowed:
            self.stats.wrong_length += 1
            log.warning(
                "wiegand_wrong_length",
                reader=self.name,
                bits=len(bits),
                expected=list(self.allowed),
                hint="reader set to another Wiegand format, or pulses lost: check wiegand_bits",
            )
            return None
        try:
            card = decode_wiegand(bits)
        except WiegandError as exc:
            self.stats.parity_errors += 1
            log.warning(
                "wiegand_parity_bad",
                reader=self.name,
                bits="".join(map(str, bits)),
                error=str(exc),
                hint="check D0/D1 wiring, shielding and common ground",
            )
            return None
        self.stats.frames += 1
        try:
            self._on_card(card)
        except Exception as exc:
            log.error("wiegand_callback_failed", reader=self.name, error=repr(exc))
        return card

    def _watch_loop(self) -> None:
        while not self._stop.wait(self.timeout_s / 3):
            with self._lock:
                due = bool(self._bits) and time.monotonic() - self._last > self.timeout_s
            if due:
                self.flush()

    def close(self, timeout: float = 2.0) -> bool:
        self._stop.set()
        self._watch.join(timeout)
        self._d0.close()
        self._d1.close()
        return not self._watch.is_alive()


class WiegandReader(RfidReader):
    """Wiegand cards as :class:`TagRead` (``epc`` = the card id in ``id_format``)."""

    def __init__(
        self,
        d0_pin: int | str,
        d1_pin: int | str,
        on_read: TagCallback,
        *,
        name: str = "rfid",
        bits: Sequence[int] = (26, 34),
        timeout_s: float = 0.025,
        id_format: IdFormat = "decimal",
        pin_factory: Any = None,
    ) -> None:
        super().__init__(name, on_read)
        self.id_format = id_format
        self.receiver = WiegandReceiver(
            d0_pin,
            d1_pin,
            self._card,
            bits=bits,
            timeout_s=timeout_s,
            pin_factory=pin_factory,
            name=name,
        )

    def _card(self, card: WiegandCard) -> None:
        self._emit(TagRead(epc=card.tag_id(self.id_format), time=time.time(), reader=self.name))

    def close(self, timeout: float = 2.0) -> bool:
        return self.receiver.close(timeout)

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out.update(vars(self.receiver.stats))
        return out


@dataclass(frozen=True)
class WiegandConfig(RfidConfig):
    """Access-control readers with a Wiegand 26/34 output on two GPIO inputs."""

    type: str = field(
        default="wiegand",
        metadata=doc("Reader protocol; the keys below depend on it", was="protocol"),
    )
    d0_pin: int = field(
        default=5,
        metadata=doc("GPIO (BCM) of Wiegand D0 (绿线)", min=0, max=53, was="wiegand_d0_pin"),
    )
    d1_pin: int = field(
        default=6,
        metadata=doc("GPIO (BCM) of Wiegand D1 (白线)", min=0, max=53, was="wiegand_d1_pin"),
    )
    bits: list[int] = field(
        default_factory=lambda: [26, 34],
        metadata=doc("Accepted Wiegand frame lengths (26, 34)", was="wiegand_bits"),
    )
    timeout_s: float = field(
        default=0.025,
        metadata=doc("Gap that ends a Wiegand frame", above=0, was="wiegand_timeout_s"),
    )
    id_format: IdFormat = field(
        default="decimal",
        metadata=doc("How a card id is written for the registry", was="wiegand_id_format"),
    )

    def __post_init__(self) -> None:
        if not self.bits or any(b not in (26, 34) for b in self.bits):
            raise Invalid([("bits", f"expected values from [26, 34], found {self.bits}")])


@driver("rfid", "wiegand", WiegandConfig, "Wiegand 26/34 on two GPIO inputs")
def _build(
    cfg: WiegandConfig,
    *,
    on_read: TagCallback,
    name: str = "rfid",
    pin_factory: Any = None,
    **_: Any,
) -> WiegandReader:
    return WiegandReader(
        cfg.d0_pin,
        cfg.d1_pin,
        on_read,
        name=name,
        bits=list(cfg.bits),
        timeout_s=cfg.timeout_s,
        id_format=cfg.id_format,
        pin_factory=pin_factory,
    )
