"""Stand-ins for an R2000 UHF reader, an XK3190 indicator and an LED/voice board on a serial port.

Only for demos and tests where no real device exists: they speak the real
wire format over any pyserial URL (typically one end of a pty pair), so the
driver code under test is exactly what runs at the gate.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Sequence
from typing import Any

import serial

from drivers.display.ledproto import (
    CMD_SPEAK,
    CMD_STOP_SPEAKING,
    CMD_TEXT,
    FrameError,
    FrameParser,
    decode_speech,
    decode_text,
    encode,
)
from drivers.log import get_logger
from drivers.rfid.r2000 import (
    R2000Parser,
    R2000Variant,
    encode_frame,
    round_end_frame,
    tag_frame,
)
from drivers.scale.xk3190 import encode_xk3190

log = get_logger("simulator")


class FdPort:
    """Minimal serial-like wrapper of a raw fd (the master side of a pty pair)."""

    def __init__(self, fd: int, timeout: float = 0.05) -> None:
        self.fd = fd
        self.timeout = timeout

    def read(self, size: int) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], self.timeout)
        if not ready:
            return b""
        try:
            return os.read(self.fd, size)
        except OSError as exc:
            raise serial.SerialException(str(exc)) from exc

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            select.select([], [self.fd], [], 1.0)
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                continue
            view = view[n:]
        return len(data)

    def close(self) -> None:
        """The fd belongs to whoever made the pty pair; it is not closed here."""


def open_port(port: str | int, baudrate: int) -> Any:
    """``port``: a pyserial URL/path, or an fd such as a pty master from ``os.openpty()``."""
    if isinstance(port, int):
        return FdPort(port)
    return serial.serial_for_url(port, baudrate=baudrate, timeout=0.05)


class R2000Simulator:
    """Answers real-time inventory commands with the tags currently "in the field".

    ``tags`` maps EPC -> RSSI dBm; change it with :meth:`set_tags` (a truck
    arrives / leaves), for every antenna or for one (a reader serving two
    lanes). Each inventory command gets one frame per tag in the field of the
    antenna being inventoried (per repeat round) and the end-of-round
    summary, like the module does.
    """

    def __init__(
        self,
        port: str | int,
        tags: dict[str, int] | None = None,
        *,
        baudrate: int = 115200,
        address: int = 0xFF,
        variant: R2000Variant | None = None,
        firmware: tuple[int, int] = (1, 8),
    ) -> None:
        self.variant = variant or R2000Variant()
        self.address = address
        self.firmware = firmware
        self._fields: dict[int | None, dict[str, int]] = {None: dict(tags or {})}
        self._antenna = 1
        self._lock = threading.Lock()
        self._ser: Any = open_port(port, baudrate)
        self._parser = R2000Parser(self.variant, name="sim")
        self._stop = threading.Event()
        self.commands_seen = 0
        self._thread = threading.Thread(target=self._loop, name="r2000-sim", daemon=True)

    def start(self) -> R2000Simulator:
        self._thread.start()
        return self

    def set_tags(self, tags: dict[str, int], antenna: int | None = None) -> None:
        """Tags now in the field of ``antenna`` (None: seen by every antenna)."""
        with self._lock:
            self._fields[antenna] = dict(tags)

    def write_raw(self, data: bytes) -> None:
        self._ser.write(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._ser.close()

    def _loop(self) -> None:
        v = self.variant
        while not self._stop.is_set():
            try:
                chunk = self._ser.read(256)
            except (serial.SerialException, OSError):
                return
            for frame in self._parser.feed(chunk):
                self.commands_seen += 1
                if frame.cmd == v.code("real_time_inventory"):
                    repeat = frame.data[0] if frame.data else 1
                    with self._lock:
                        tags = {**self._fields[None], **self._fields.get(self._antenna, {})}
                    out = bytearray()
                    for _ in range(repeat):
                        for epc, rssi in tags.items():
                            out += tag_frame(
                                epc,
                                antenna=self._antenna,
                                rssi_dbm=rssi,
                                address=self.address,
                                variant=v,
                            )
                    if tags:
                        out += round_end_frame(
                            antenna=self._antenna,
                            read_rate=len(tags) * 10,
                            total_read=len(tags) * repeat,
                            address=self.address,
                            variant=v,
                        )
                    else:
                        out += encode_frame(self.address, frame.cmd, b"\x36", v)
                    time.sleep(0.02)  # an inventory round takes time on a real module
                    self._write(bytes(out))
                elif frame.cmd == v.code("set_work_antenna"):
                    self._antenna = (frame.data[0] if frame.data else 0) + 1
                    self._write(encode_frame(self.address, frame.cmd, b"\x10", v))
                elif frame.cmd == v.commands.get("get_firmware_version"):
                    self._write(encode_frame(self.address, frame.cmd, bytes(self.firmware), v))

    def _write(self, data: bytes) -> None:
        try:
            self._ser.write(data)
        except (serial.SerialException, OSError) as exc:
            log.debug("sim_write_failed", error=str(exc))


class ScaleSimulator:
    """Streams XK3190 tf=0 frames of :attr:`kg` at ``rate_hz``."""

    def __init__(
        self,
        port: str | int,
        kg: float = 0.0,
        *,
        baudrate: int = 9600,
        rate_hz: float = 10.0,
        decimals: int = 0,
        profile: Sequence[tuple[float, float]] | None = None,
    ) -> None:
        """``profile``: optional [(seconds_from_start, kg), ...] replayed once."""
        self.kg = kg
        self.decimals = decimals
        self.rate_hz = rate_hz
        self._profile = list(profile or [])
        self._ser: Any = open_port(port, baudrate)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scale-sim", daemon=True)

    def start(self) -> ScaleSimulator:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._ser.close()

    def _loop(self) -> None:
        t0 = time.monotonic()
        while not self._stop.wait(1.0 / self.rate_hz):
            elapsed = time.monotonic() - t0
            while self._profile and self._profile[0][0] <= elapsed:
                self.kg = self._profile.pop(0)[1]
            try:
                self._ser.write(encode_xk3190(self.kg, self.decimals))
            except (serial.SerialException, OSError):
                return


class LedVoiceSimulator:
    """An LED board with a speaker: decodes each frame, keeps its rows and what it said.

    Every frame is checked as the board checks it (version, length, CRC-16,
    GBK text); a frame that fails is counted in :attr:`bad_frames` and not
    answered, like the board. A good one is answered with ACK 0 unless
    ``answer`` is False (a board in no-reply mode). :attr:`raw` keeps each
    good frame's bytes, so tests compare them byte for byte.
    """

    def __init__(self, port: str | int, *, address: int = 0, answer: bool = True) -> None:
        self.address = address
        self.answer = answer
        self.rows: dict[int, str] = {}
        self.spoken: list[str] = []
        self.raw: list[bytes] = []
        self.screens = 0  # times row 0 was written: one per screen
        self.bad_frames = 0
        self._parser = FrameParser()
        self._lock = threading.Lock()
        self._ser: Any = open_port(port, 9600)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="led-sim", daemon=True)

    def start(self) -> LedVoiceSimulator:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._ser.close()

    def screen(self) -> list[str]:
        """The rows shown now, top first."""
        with self._lock:
            return [self.rows[k] for k in sorted(self.rows)]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                chunk = self._ser.read(512)
            except (serial.SerialException, OSError):
                return
            if not chunk:
                continue
            before = self._parser.bad_crc + self._parser.garbage
            for frame in self._parser.feed(chunk):
                self._handle(frame)
            self.bad_frames += self._parser.bad_crc + self._parser.garbage - before

    def _handle(self, frame: Any) -> None:
        if frame.address != self.address:
            return
        try:
            with self._lock:
                if frame.cmd == CMD_TEXT:
                    window, text = decode_text(frame.data)
                    self.rows[window] = text
                    self.screens += window == 0
                elif frame.cmd == CMD_SPEAK:
                    self.spoken.append(decode_speech(frame.data)[1])
                elif frame.cmd != CMD_STOP_SPEAKING:
                    return
                self.raw.append(encode(frame.address, frame.cmd, frame.data, frame.packet))
        except FrameError:
            self.bad_frames += 1
            return
        if self.answer:
            try:
                self._ser.write(encode(self.address, frame.cmd, b"\x00"))
            except (serial.SerialException, OSError) as exc:
                log.debug("sim_write_failed", error=str(exc))
