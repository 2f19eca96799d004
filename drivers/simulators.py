"""Stand-ins for an R2000 UHF reader, an XK3190 indicator, an LED/voice board and Modbus meters.

Only for demos and tests where no real device exists: they speak the real
wire format over any pyserial URL (typically one end of a pty pair), so the
driver code under test is exactly what runs at the gate. The meters are
pymodbus's own server (TCP on loopback, or RTU on a pty) answering from
tables the caller fills, so the data logger reads them as it reads a meter
on site.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import select
import socket
import threading
import time
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import serial
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils

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


# -- Modbus meters on pymodbus's own server --------------------------------------------

METER_REGISTERS = 0x4100  # covers the 0x2000/0x4000 blocks of common energy meters
METER_BITS = 1024


@dataclass
class Meter:
    """One meter (a unit id) with four tables the caller may change while the server runs.

    ``silent``: the meter never answers, as when its RS485 wires come off;
    ``exception``: it answers every read with that Modbus exception code, as a
    meter does for an unmapped register; ``on_read``: called before each
    answer, so values can follow the clock (a demo's drifting readings) and
    always change between reads, never inside one.
    """

    unit: int = 1
    holding: dict[int, int] = field(default_factory=dict)
    input: dict[int, int] = field(default_factory=dict)
    coils: dict[int, bool] = field(default_factory=dict)
    discrete: dict[int, bool] = field(default_factory=dict)
    silent: bool = False
    exception: int | None = None
    reads: int = 0
    on_read: Callable[[Meter], None] | None = None

    def set_words(self, table: str, address: int, words: list[int]) -> None:
        target = self.holding if table == "holding" else self.input
        for i, w in enumerate(words):
            target[address + i] = w

    async def action(
        self, fc: int, start: int, address: int, count: int, registers: list, values: Any
    ) -> ExcCodes | None:
        """pymodbus's hook for every request: fill ``registers`` from the tables."""
        self.reads += 1
        if self.on_read is not None:
            self.on_read(self)
        if self.silent:
            await asyncio.sleep(30)
            return ExcCodes.DEVICE_FAILURE
        if self.exception is not None:
            return ExcCodes(self.exception)
        if fc in (3, 4):
            src = self.holding if fc == 3 else self.input
            for a, w in src.items():
                registers[a - start] = w & 0xFFFF
        elif fc in (1, 2):
            src = self.coils if fc == 1 else self.discrete
            bits = [bool(src.get(i, False)) for i in range(len(registers) * 16)]
            registers[:] = SimUtils.bitsToRegisters(bits)
        return None

    def device(self) -> SimDevice:
        return SimDevice(
            id=self.unit,
            simdata=(
                [SimData(0, count=METER_BITS, values=False, datatype=DataType.BITS)],
                [SimData(0, count=METER_BITS, values=False, datatype=DataType.BITS)],
                [SimData(0, count=METER_REGISTERS, values=0, datatype=DataType.REGISTERS)],
                [SimData(0, count=METER_REGISTERS, values=0, datatype=DataType.REGISTERS)],
            ),
            action=self.action,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopThread:
    """An asyncio loop on its own thread: the server runs apart from the code it serves."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def serve(self, make_server) -> None:
        async def start():
            self.server = make_server()
            await self.server.serve_forever(background=True)

        self.run(start())

    def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.run(self.server.shutdown(), 5)

        async def cancel_rest() -> None:
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_rest(), 5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class TcpMeters:
    """A Modbus TCP server (meter or gateway) answering for several unit ids."""

    def __init__(self, meters: list[Meter], port: int | None = None) -> None:
        """Serves on 127.0.0.1:``port`` (a free one when not given) until :meth:`stop`."""
        self.meters = meters
        self.port = port or free_port()
        self._lt = LoopThread()
        devices = [m.device() for m in meters]
        self._lt.serve(lambda: ModbusTcpServer(devices, address=("127.0.0.1", self.port)))

    def stop(self) -> None:
        self._lt.stop()


class PtyBridge:
    """Two pty pairs joined back to back: a null-modem cable with a path at each end."""

    def __init__(self) -> None:
        self._m1, s1 = os.openpty()
        self._m2, s2 = os.openpty()
        for fd in (s1, s2):
            tty.setraw(fd)
        self.a, self.b = os.ttyname(s1), os.ttyname(s2)
        self._slaves = (s1, s2)
        self._stop = False
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        peer = {self._m1: self._m2, self._m2: self._m1}
        while not self._stop:
            ready, _, _ = select.select(list(peer), [], [], 0.1)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                if data:
                    os.write(peer[fd], data)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        for fd in (self._m1, self._m2, *self._slaves):
            os.close(fd)


class RtuMeters:
    """A Modbus RTU server on one end of a pty bridge; the client opens ``port``."""

    def __init__(self, meters: list[Meter], baudrate: int = 19200) -> None:
        self.meters = meters
        self.bridge = PtyBridge()
        self.port = self.bridge.b
        self._lt = LoopThread()
        devices = [m.device() for m in meters]
        self._lt.serve(
            lambda: ModbusSerialServer(devices, port=self.bridge.a, baudrate=baudrate, timeout=0.1)
        )

    def stop(self) -> None:
        self._lt.stop()
        self.bridge.close()


def self_signed_certificate(folder: Any, name: str, days: int = 365) -> tuple[str, str]:
    """A camera's self-signed certificate for 127.0.0.1, as a camera makes its own:
    (certificate file, key file), PEM, written in ``folder``. For
    :class:`SnapshotCameraSimulator`'s ``tls`` in the demo and the tests."""
    import datetime
    import ipaddress
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = Path(folder) / f"{name}.pem", Path(folder) / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


class SnapshotCameraSimulator:
    """An IP camera's snapshot URL on loopback: HTTP/1.1 GET answered with a JPEG of the
    picture given to :meth:`show`, encoded at the request as a camera does.

    Authentication as Hikvision and Dahua cameras ask for it: Digest (MD5,
    ``qop="auth"``) by default, Basic, or none; https with ``tls`` (certificate
    and key files). Nonces expire after
    ``nonce_uses`` answers (then ``stale=true``, as a camera rotating them),
    and a nonce count that does not rise is refused. ``requests`` holds the
    monotonic time of each request, the refused ones included, so tests see
    when each picture was asked for.
    """

    PATH = "/ISAPI/Streaming/channels/101/picture"

    def __init__(
        self,
        size: tuple[int, int] = (1280, 720),
        username: str = "admin",
        password: str = "cam-pass",
        auth: str = "digest",
        nonce_uses: int = 50,
        delay_s: float = 0.0,
        tls: tuple[str, str] | None = None,
    ) -> None:
        import hashlib
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import numpy as np

        self.size = size
        self.username, self.password, self.auth = username, password, auth
        self.nonce_uses = nonce_uses
        self.delay_s = delay_s
        self.realm = "IP Camera(C1234)"
        self.requests: list[float] = []
        self.served = 0
        self._lock = threading.Lock()
        self._frame = np.full((size[1], size[0], 3), 90, np.uint8)
        #: nonces handed out, newest last: [answers taken, highest nonce count seen]
        self._nonces: collections.OrderedDict[str, list[int]] = collections.OrderedDict()
        self._conns: set[socket.socket] = set()
        self.shown: collections.deque[tuple[int, float]] = collections.deque(maxlen=100_000)
        self._playing = threading.Event()
        self._player: threading.Thread | None = None
        sim = self

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()  # Digest is MD5 by its RFC

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def setup(self) -> None:
                super().setup()
                with sim._lock:
                    sim._conns.add(self.connection)

            def finish(self) -> None:
                with sim._lock:
                    sim._conns.discard(self.connection)
                super().finish()

            def do_GET(self) -> None:
                with sim._lock:
                    sim.requests.append(time.monotonic())
                if self.path != sim.PATH:
                    return self._send(
                        404, b"<ResponseStatus>Not Found</ResponseStatus>", "text/xml"
                    )
                verdict = sim._check(self.headers.get("Authorization", ""), md5)
                if verdict != "ok":
                    return self._challenge(stale=verdict == "stale")
                if sim.delay_s:
                    time.sleep(sim.delay_s)
                self._send(200, sim._jpeg(), "image/jpeg")

            def _challenge(self, stale: bool) -> None:
                body = b"<ResponseStatus>Unauthorized</ResponseStatus>"
                self.send_response(401)
                if sim.auth == "digest":
                    value = (
                        f'Digest qop="auth", realm="{sim.realm}", nonce="{sim._new_nonce()}"'
                        + (", stale=TRUE" if stale else "")
                    )
                else:
                    value = f'Basic realm="{sim.realm}"'
                self.send_header("WWW-Authenticate", value)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _send(self, code: int, body: bytes, kind: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:  # https: (certificate file, key file), PEM
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}{self.PATH}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="snapshot-camera", daemon=True
        )

    def start(self) -> SnapshotCameraSimulator:
        self._thread.start()
        return self

    def show(self, frame: Any) -> None:
        """What the camera sees from now on; None: the empty lane."""
        import numpy as np

        with self._lock:
            if frame is None:
                frame = np.full((self.size[1], self.size[0], 3), 90, np.uint8)
            self._frame = frame

    def play(self, pictures: Sequence[Any], every_s: float) -> None:
        """Show ``pictures`` in turn, a new one every ``every_s``, until :meth:`stop`.

        ``shown`` records (index, time.monotonic()) of each, so a bench can tell
        how old the picture a passage read was.
        """

        def run() -> None:
            i = 0
            while not self._playing.is_set():
                self.show(pictures[i % len(pictures)])
                self.shown.append((i % len(pictures), time.monotonic()))
                i += 1
                self._playing.wait(every_s)

        self._player = threading.Thread(target=run, name="snapshot-camera-play", daemon=True)
        self._player.start()

    def _jpeg(self) -> bytes:
        import cv2

        with self._lock:
            frame = self._frame
            self.served += 1
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
        return buf.tobytes() if ok else b""

    def _check(self, header: str, md5: Callable[[str], str]) -> str:
        """``ok``, ``stale`` (a spent nonce, right password) or ``refused``."""
        if self.auth == "none":
            return "ok"
        if self.auth == "basic":
            import base64

            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return "ok" if header == f"Basic {token}" else "refused"
        if not header.startswith("Digest "):
            return "refused"
        fields = dict(
            (k.strip().lower(), v.strip().strip('"'))
            for k, _, v in (p.partition("=") for p in header[7:].split(","))
        )
        ha1 = md5(f"{self.username}:{self.realm}:{self.password}")
        ha2 = md5(f"GET:{fields.get('uri', '')}")
        nc, cnonce = fields.get("nc", ""), fields.get("cnonce", "")
        expected = md5(f"{ha1}:{fields.get('nonce', '')}:{nc}:{cnonce}:auth:{ha2}")
        if fields.get("username") != self.username or fields.get("response") != expected:
            return "refused"
        with self._lock:
            state = self._nonces.get(fields.get("nonce", ""))
            if state is None:
                return "stale"
            count = int(nc, 16) if nc else 0
            if count <= state[1]:
                return "refused"  # a replayed answer
            state[0], state[1] = state[0] + 1, count
            if state[0] > self.nonce_uses:
                del self._nonces[fields["nonce"]]
                return "stale"
        return "ok"

    def _new_nonce(self) -> str:
        """A nonce for one challenge. Each client gets its own, as cameras do, so two
        clients' nonce counts never meet; the oldest of 16 is forgotten (stale)."""
        nonce = os.urandom(16).hex()
        with self._lock:
            self._nonces[nonce] = [0, 0]
            while len(self._nonces) > 16:
                self._nonces.popitem(last=False)
        return nonce

    def stop(self) -> None:
        """The camera gone: no new connection, and the open (keep-alive) ones cut."""
        self._playing.set()
        if self._player is not None:
            self._player.join(2)
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        self.drop_connections()

    def drop_connections(self) -> None:
        """Close the open (kept-alive) connections, as a camera does with idle ones."""
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


#: colorType of a Zhenshi push, by colour (the camera SDK's table; drivers/camera/zhenshi.py)
_ZHENSHI_COLOUR = {"blue": 1, "yellow": 2, "white": 3, "black": 4, "green": 5}


def zhenshi_plate_body(
    plate: str,
    plateid: int,
    sec: float,
    *,
    full: bytes | None = None,
    crop: bytes | None = None,
    offline: bool = False,
    confidence: int = 96,
    colour: str = "yellow",
    ip: str = "127.0.0.1",
) -> bytes:
    """One ``AlarmInfoPlate`` read as a Zhenshi/Qianyi camera POSTs it: JSON, JPEGs in base64.

    ``sec`` is the read's epoch time (``timeStamp.Timeval.sec``); the ``dec*`` fields
    beside it are the camera's local clock, as the camera writes both.
    """
    import base64
    import json

    t = time.localtime(sec)
    result = {
        "bright": 0,
        "carBright": 0,
        "carColor": 255,
        "colorType": _ZHENSHI_COLOUR.get(colour, 0),
        "colorValue": 0,
        "confidence": confidence,
        "direction": 0,
        "imageFile": base64.b64encode(full).decode() if full else "",
        "imageFileLen": len(full or b""),
        "imageFragmentFile": base64.b64encode(crop).decode() if crop else "",
        "imageFragmentFileLen": len(crop or b""),
        "gioouts": [{"ctrltype": 0, "ionum": "0"}],
        "is_fake_plate": 0,
        "isoffline": int(offline),
        "license": plate,
        "location": {"RECT": {"bottom": 674, "left": 1002, "right": 1263, "top": 565}},
        "plateid": plateid,
        "timeStamp": {
            "Timeval": {
                "decday": t.tm_mday,
                "dechour": t.tm_hour,
                "decmin": t.tm_min,
                "decmon": t.tm_mon,
                "decsec": t.tm_sec,
                "decyear": t.tm_year,
                "sec": int(sec),
                "usec": int((sec % 1) * 1e6),
            }
        },
        "timeUsed": 0,
        "triggerType": 4,
        "type": 1,
    }
    body = {
        "AlarmInfoPlate": {
            "channel": 0,
            "deviceName": "IVS",
            "ipaddr": ip,
            "result": {"PlateResult": result},
            "serialno": "fe71e106-57263272",
        }
    }
    return json.dumps(body, ensure_ascii=False).encode()


class ZhenshiCameraSimulator:
    """A Zhenshi/Qianyi plate camera pushing its reads to a server over HTTP, as it does.

    :meth:`read` pushes a live read; while the camera is ``offline`` (its link to the
    server down) reads are kept instead, and :meth:`replay` sends the kept ones oldest
    first with ``isoffline = 1``, each only after the server acknowledged the one before
    (``ContinuePushOffline``); one not acknowledged stays kept for the next replay.
    Each read gets the next ``plateid``. ``replies`` holds the server's answers.
    """

    def __init__(self, url: str, ip: str = "127.0.0.1", first_id: int = 1) -> None:
        self.url = url
        self.ip = ip
        self.next_id = first_id
        self.offline = False
        self.kept: list[dict[str, Any]] = []
        self.replies: list[tuple[int, Any]] = []
        self.resent = 0  # kept reads sent again after no acknowledgement

    def read(self, plate: str, sec: float | None = None, **fields: Any) -> Any:
        """The camera reads ``plate``: pushed now, or kept while offline (returns None)."""
        read = {"plate": plate, "plateid": self.next_id, "sec": time.time() if sec is None else sec}
        read.update(fields)
        self.next_id += 1
        if self.offline:
            self.kept.append(read)
            return None
        return self._post(read, offline=False)

    def replay(self, retries: int = 0, retry_s: float = 0.5) -> int:
        """Send the kept reads, oldest first, while each is acknowledged; how many went.

        A read not acknowledged is sent again up to ``retries`` times, ``retry_s`` apart,
        as the camera does; then the replay stops and the read stays kept."""
        sent = 0
        while self.kept:
            read = self.kept[0]
            for attempt in range(retries + 1):
                if self._acknowledged(read, self._post(read, offline=True)):
                    break
                if attempt == retries:
                    return sent
                self.resent += 1
                time.sleep(retry_s)
            self.kept.pop(0)
            sent += 1
        return sent

    @staticmethod
    def _acknowledged(read: dict[str, Any], reply: Any) -> bool:
        """Whether ``reply`` asks for the next kept read after ``read``."""
        if not isinstance(reply, dict):
            return False
        go_on = reply.get("Response_AlarmInfoPlate", {}).get("ContinuePushOffline", {})
        return isinstance(go_on, dict) and go_on.get("plateid") == read["plateid"]

    def _post(self, read: dict[str, Any], offline: bool) -> Any:
        import json
        import urllib.error
        import urllib.request

        r = dict(read)
        body = zhenshi_plate_body(
            r.pop("plate"), r.pop("plateid"), r.pop("sec"), offline=offline, ip=self.ip, **r
        )
        req = urllib.request.Request(
            self.url, body, {"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, data = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, data = exc.code, exc.read()
        except OSError as exc:
            self.replies.append((0, str(exc)))
            return None
        try:
            answer: Any = json.loads(data)
        except ValueError:
            answer = data
        self.replies.append((status, answer))
        return answer if status == 200 else None
