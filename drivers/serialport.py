"""A serial line that keeps itself alive.

Gate boxes sit for months with USB-serial adapters that get unplugged, reader
power that drops, and indicators that spew data far faster than needed. The
daemon must never hang or die on any of that, so this class owns the whole
life of one port: open (any pyserial URL, so ``loop://`` and pty paths work in
tests), read on a thread, hand bytes to a parser on a second thread through a
*bounded* buffer (a flooding device costs dropped bytes, counted, never
memory), and reopen with exponential backoff whenever the port errors out or
vanishes. Every problem is counted in :meth:`SerialLine.stats` and logged
once per occurrence with a hint a technician can act on.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import serial

from drivers.log import get_logger

log = get_logger("serial")

Opener = Callable[..., Any]


@dataclass
class LineStats:
    """Counters a technician (or ``edged probe``) reads to judge a line's health."""

    bytes_in: int = 0
    bytes_out: int = 0
    opens: int = 0
    open_failures: int = 0
    reconnects: int = 0
    read_errors: int = 0
    write_errors: int = 0
    overflow_bytes: int = 0
    callback_errors: int = 0
    idle_reopens: int = 0
    connected: bool = False


class SerialLine:
    """Read one serial port forever, calling ``on_bytes`` with each chunk.

    ``on_bytes`` runs on the dispatcher thread, never the reader thread, so a
    slow parser cannot make the kernel buffer overflow silently: instead the
    pending buffer (``max_pending`` bytes) drops the oldest data and counts it.
    ``on_connect`` is called (on the reader thread) after every successful
    open, so drivers can re-send start commands after a cable comes back.
    """

    def __init__(
        self,
        port: str,
        baudrate: int,
        on_bytes: Callable[[bytes], None],
        *,
        name: str = "serial",
        on_connect: Callable[[SerialLine], None] | None = None,
        read_size: int = 4096,
        read_timeout: float = 0.1,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        max_pending: int = 256 * 1024,
        idle_reopen_s: float | None = None,
        opener: Opener = serial.serial_for_url,
        serial_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.name = name
        self._on_bytes = on_bytes
        self._on_connect = on_connect
        self._read_size = read_size
        self._read_timeout = read_timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._max_pending = max_pending
        self._idle_reopen_s = idle_reopen_s
        self._opener = opener
        self._serial_kwargs = serial_kwargs or {}
        self._stats = LineStats()
        self._ser: Any = None
        self._ser_lock = threading.Lock()
        self._pending: collections.deque[bytes] = collections.deque()
        self._pending_bytes = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._dispatcher: threading.Thread | None = None

    # -- public -------------------------------------------------------------

    def start(self) -> SerialLine:
        """Start both threads; returns immediately even if the port is absent."""
        if self._reader is not None:
            return self
        self._stop.clear()
        self._reader = threading.Thread(
            target=self._read_loop, name=f"{self.name}-read", daemon=True
        )
        self._dispatcher = threading.Thread(
            target=self._dispatch_loop, name=f"{self.name}-dispatch", daemon=True
        )
        self._reader.start()
        self._dispatcher.start()
        return self

    def close(self, timeout: float = 2.0) -> bool:
        """Stop and join the threads; returns False if one did not end in time."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._close_port()
        ok = True
        for thread in (self._reader, self._dispatcher):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)
                ok = ok and not thread.is_alive()
        self._reader = self._dispatcher = None
        if not ok:
            log.error(
                "serial_close_timeout",
                line=self.name,
                port=self.port,
                hint="a parser callback is blocking; restart the daemon",
            )
        return ok

    def write(self, data: bytes) -> bool:
        """Send bytes if the port is open; False (counted) when it is not."""
        with self._ser_lock:
            ser = self._ser
            if ser is None:
                self._stats.write_errors += 1
                return False
            try:
                ser.write(data)
                self._stats.bytes_out += len(data)
                return True
            except (serial.SerialException, OSError, ValueError, TypeError) as exc:
                self._stats.write_errors += 1
                log.warning(
                    "serial_write_failed",
                    line=self.name,
                    port=self.port,
                    error=str(exc),
                    hint="port is going away; it will be reopened",
                )
                return False

    @property
    def connected(self) -> bool:
        return self._stats.connected

    def stats(self) -> dict[str, Any]:
        """Snapshot of the counters (a plain dict, safe to log or publish)."""
        return asdict(self._stats)

    def __enter__(self) -> SerialLine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reader thread ------------------------------------------------------

    def _open(self) -> bool:
        try:
            ser = self._opener(
                self.port, baudrate=self.baudrate, timeout=self._read_timeout, **self._serial_kwargs
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            self._stats.open_failures += 1
            if self._stats.open_failures == 1 or self._stats.open_failures % 20 == 0:
                log.warning(
                    "serial_open_failed",
                    line=self.name,
                    port=self.port,
                    baudrate=self.baudrate,
                    failures=self._stats.open_failures,
                    error=str(exc),
                    hint="check the cable / USB adapter is plugged in and the port name in config",
                )
            return False
        with self._ser_lock:
            self._ser = ser
        self._stats.opens += 1
        if self._stats.opens > 1:
            self._stats.reconnects += 1
        self._stats.connected = True
        log.info(
            "serial_opened",
            line=self.name,
            port=self.port,
            baudrate=self.baudrate,
            reconnects=self._stats.reconnects,
        )
        if self._on_connect is not None:
            try:
                self._on_connect(self)
            except Exception as exc:
                self._stats.callback_errors += 1
                log.error("serial_on_connect_failed", line=self.name, error=repr(exc))
        return True

    def _close_port(self) -> None:
        with self._ser_lock:
            ser, self._ser = self._ser, None
        self._stats.connected = False
        if ser is not None:
            try:
                ser.close()
            except Exception as exc:  # closing a vanished device may raise anything
                log.debug("serial_close_error", line=self.name, error=repr(exc))

    def _read_loop(self) -> None:
        backoff = self._backoff_initial
        while not self._stop.is_set():
            if not self._open():
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._backoff_max)
                continue
            backoff = self._backoff_initial
            last_data = time.monotonic()
            while not self._stop.is_set():
                ser = self._ser
                if ser is None:
                    break
                try:
                    chunk = ser.read(self._read_size)
                except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                    if self._stop.is_set():
                        break
                    self._stats.read_errors += 1
                    log.warning(
                        "serial_read_failed",
                        line=self.name,
                        port=self.port,
                        error=str(exc),
                        hint="cable pulled or device powered off; reconnecting with backoff",
                    )
                    break
                now = time.monotonic()
                if chunk:
                    last_data = now
                    self._push(chunk)
                elif self._idle_reopen_s is not None and now - last_data > self._idle_reopen_s:
                    self._stats.idle_reopens += 1
                    log.warning(
                        "serial_idle",
                        line=self.name,
                        port=self.port,
                        silent_s=round(now - last_data, 1),
                        hint="device sends nothing; reopening the port. Check device power",
                    )
                    break
            self._close_port()
            if not self._stop.is_set():
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._backoff_max)

    def _push(self, chunk: bytes) -> None:
        self._stats.bytes_in += len(chunk)
        with self._cond:
            self._pending.append(chunk)
            self._pending_bytes += len(chunk)
            dropped = 0
            while self._pending_bytes > self._max_pending and len(self._pending) > 1:
                old = self._pending.popleft()
                self._pending_bytes -= len(old)
                dropped += len(old)
            if dropped:
                first = self._stats.overflow_bytes == 0
                self._stats.overflow_bytes += dropped
                if first or self._stats.overflow_bytes // self._max_pending != (
                    (self._stats.overflow_bytes - dropped) // self._max_pending
                ):
                    log.warning(
                        "serial_overflow",
                        line=self.name,
                        port=self.port,
                        dropped_total=self._stats.overflow_bytes,
                        hint="device floods faster than it is parsed; lower its output rate",
                    )
            self._cond.notify()

    # -- dispatcher thread --------------------------------------------------

    def _dispatch_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop.is_set():
                    self._cond.wait(0.5)
                if self._stop.is_set():
                    return
                chunk = self._pending.popleft()
                self._pending_bytes -= len(chunk)
            try:
                self._on_bytes(chunk)
            except Exception as exc:
                self._stats.callback_errors += 1
                log.error(
                    "serial_parser_failed",
                    line=self.name,
                    error=repr(exc),
                    chunk=chunk[:64].hex(),
                    hint="bug in the parser; bytes skipped, reading goes on",
                )


class LineSplitter:
    """Bounded line assembly for devices that print one reading per line.

    A device sending at the wrong baud rate never sends a line end, so a
    line longer than ``max_line`` is dropped (returned so the caller can
    count and log it) and everything up to the next line end is discarded:
    memory stays bounded whatever arrives.
    """

    def __init__(self, ends: bytes = b"\r\n", max_line: int = 256) -> None:
        self.ends = frozenset(ends)
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> tuple[list[bytes], list[bytes]]:
        """Complete lines in ``data``, and the starts of lines dropped as too long."""
        lines: list[bytes] = []
        overlong: list[bytes] = []
        for byte in data:
            if byte in self.ends:
                if self._discarding:
                    self._discarding = False
                elif self._buf:
                    lines.append(bytes(self._buf))
                self._buf.clear()
                continue
            if self._discarding:
                continue
            self._buf.append(byte)
            if len(self._buf) > self.max_line:
                overlong.append(bytes(self._buf))
                self._buf.clear()
                self._discarding = True
        return lines, overlong

    def reset(self) -> None:
        self._buf.clear()
        self._discarding = False
