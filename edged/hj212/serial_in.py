"""Analysers that talk HJ 212 over RS232/RS485: read, verify CRC, hand out samples.

Some CEMS and water analysers send finished HJ 212 packets on a serial port
instead of answering Modbus. This reader frames the byte stream, refuses
packets whose CRC or fields are wrong (counted and logged with a hint), and
passes every factor reading to a callback as a :class:`Sample`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import serial

from edged.hj212.codec import Hj212Error, Packet, decode
from edged.hj212.framing import PacketFramer
from edged.logs import get_logger

log = get_logger("hj212_serial")


@dataclass(frozen=True)
class Sample:
    """One factor reading from one packet (values as floats where numeric)."""

    mn: str
    cn: str
    data_time: datetime | None
    code: str
    values: dict[str, float]
    flag: str


def samples(packet: Packet) -> list[Sample]:
    """Per-factor samples of a data packet; non-numeric fields other than Flag are dropped."""
    out = []
    when = packet.cp.data_time
    for code, fields in packet.cp.factors.items():
        values = {}
        for name in fields:
            number = packet.cp.number(code, name)
            if number is not None and name != "Flag":
                values[name] = number
        out.append(Sample(packet.mn, packet.cn, when, code, values, fields.get("Flag", "N")))
    return out


@dataclass
class SerialStats:
    packets: int = 0
    refused: int = 0
    garbage_bytes: int = 0


class SerialPacketReader:
    """Reads one serial port (``/dev/ttyUSB0``, ``loop://``, a pty) until stopped."""

    def __init__(
        self,
        url: str,
        on_sample: Callable[[Sample], None],
        baudrate: int = 9600,
        strict: bool = True,
        port: serial.SerialBase | None = None,
    ) -> None:
        self.url = url
        self.on_sample = on_sample
        self.strict = strict
        self.stats = SerialStats()
        self._framer = PacketFramer()
        self._port = port or serial.serial_for_url(url, baudrate=baudrate, timeout=0.2)
        self._stop = threading.Event()
        self._running = threading.Event()

    def feed(self, data: bytes) -> None:
        """Process bytes as they came off the wire (the read loop calls this)."""
        before = self._framer.garbage_bytes
        for raw in self._framer.feed(data):
            try:
                packet = decode(raw, strict=self.strict)
            except Hj212Error as exc:
                self.stats.refused += 1
                log.warning(
                    "hj212_serial_packet_refused",
                    port=self.url,
                    reason=exc.reason,
                    field=exc.field,
                    offset=exc.offset,
                    frame=raw[:80].hex(),
                    refused=self.stats.refused,
                    hint="check baud rate, cable shielding and the analyser's HJ 212 settings",
                )
                continue
            self.stats.packets += 1
            for sample in samples(packet):
                try:
                    self.on_sample(sample)
                except Exception as exc:  # a consumer bug must not stop the port
                    log.error("hj212_serial_callback_failed", port=self.url, error=repr(exc))
        garbage = self._framer.garbage_bytes - before
        if garbage:
            self.stats.garbage_bytes += garbage
            log.warning(
                "hj212_serial_garbage",
                port=self.url,
                bytes=garbage,
                total=self.stats.garbage_bytes,
                hint="bytes outside ##...CRLF packets: wrong baud rate or noise on the line",
            )

    def run(self) -> None:
        """Blocking read loop; returns after :meth:`stop` or when the port fails.

        The loop closes the port itself on the way out, so ``close()`` from
        another thread never pulls the port from under a read.
        """
        self._running.set()
        try:
            while not self._stop.is_set():
                try:
                    data = self._port.read(self._port.in_waiting or 1)
                except (serial.SerialException, OSError) as exc:
                    log.error(
                        "hj212_serial_read_failed",
                        port=self.url,
                        error=str(exc),
                        hint="check cable/adapter; the reader stops and must be restarted",
                    )
                    return
                if data:
                    self.feed(data)
        finally:
            self._port.close()
            self._running.clear()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop; closes the port now if no read loop is running (else the loop does)."""
        self.stop()
        if not self._running.is_set():
            self._port.close()
