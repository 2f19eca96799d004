"""An IP camera on loopback for tests and benches: ffmpeg sends H.264 over RTSP, a relay serves it.

ffmpeg publishes a stream to an RTSP server (ANNOUNCE, SETUP, RECORD, the
RTP packets interleaved on the TCP connection, RFC 2326 section 10.12) but
cannot serve one to a client as a camera does; the relay here is that
server, as small as a camera's: it keeps the publisher's SDP, answers a
client's OPTIONS, DESCRIBE, SETUP (TCP interleaved), PLAY, GET_PARAMETER and
TEARDOWN, and copies each RTP and RTCP packet to every playing client
unchanged. A client that reads slower than the camera sends gets what a
camera gives it: the TCP connection fills, then up to ``queue_bytes`` wait
in the relay, then packets are dropped.

Every picture carries its frame number, drawn by ffmpeg as a strip of 16
black or white blocks in the top left corner (:func:`frame_number` reads it
back), and the relay notes when the first packet of each frame left it
(:meth:`RtspCamera.sent_at`), so a test can tell how old the frame it got
is, and whether it was sent after a given moment.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

BITS = 16


def find_ffmpeg() -> str | None:
    return shutil.which("ffmpeg")


def block_size(height: int) -> int:
    """Side of one block of the frame-number strip for a picture ``height`` rows high."""
    return max(8, height // 22)


def make_clip(
    path: Path,
    size: tuple[int, int] = (640, 360),
    fps: int = 25,
    seconds: int = 20,
    bitrate: str = "1M",
    gop: int | None = None,
    picture: Path | None = None,
) -> Path:
    """An H.264 clip of a moving test picture (or a still ``picture``) with each frame's number.

    Like an IP camera's main stream: no B-frames, a key frame every two
    seconds (``gop``), a capped bit rate.
    """
    if path.exists():
        return path
    ffmpeg = find_ffmpeg()
    if ffmpeg is None:
        raise RuntimeError("ffmpeg not found: run scripts/setup.sh --test (installs it with apt)")
    w, h = size
    b = block_size(h)
    strip = (
        f"color=black:size={b * BITS}x{b}:rate={fps}:duration={seconds},format=gray,"
        f"geq=lum='255*mod(floor(N/pow(2\\,floor(X/{b})))\\,2)'"
    )
    cmd = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        *(
            ["-loop", "1", "-framerate", str(fps), "-t", str(seconds), "-i", str(picture)]
            if picture is not None
            else ["-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate={fps}:duration={seconds}"]
        ),
        "-f", "lavfi", "-i", strip,
        "-filter_complex", f"[0]scale={w}:{h}[bg];[bg][1]overlay=0:0,format=yuv420p",
        "-c:v", "libx264", "-preset", "veryfast", "-b:v", bitrate, "-maxrate", bitrate,
        "-bufsize", bitrate, "-g", str(gop or 2 * fps), "-bf", "0",
        str(path),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=300)
    return path


def frame_number(frame: np.ndarray) -> int | None:
    """The frame number drawn in ``frame`` (a BGR picture), or None if the strip is unreadable."""
    b = block_size(frame.shape[0])
    if frame.shape[1] < b * BITS:
        return None
    row = frame[b // 2, [i * b + b // 2 for i in range(BITS)]].mean(axis=1)
    if np.any((row > 60) & (row < 195)):
        return None  # not clearly black or white: no strip, or a broken picture
    return sum(1 << i for i, v in enumerate(row) if v >= 128)


class RtspCamera:
    """ffmpeg looping ``clip`` in real time into the relay; the stream is at :attr:`url`."""

    def __init__(
        self, clip: Path, fps: int = 25, path: str = "main", queue_bytes: int = 1 << 20
    ) -> None:
        self.clip = clip
        self.fps = fps
        self.path = path
        self.relay = RtspRelay(queue_bytes=queue_bytes, fps=fps)
        self.url = f"rtsp://127.0.0.1:{self.relay.port}/{path}"
        self.clip_frames = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> RtspCamera:
        ffmpeg = find_ffmpeg()
        if ffmpeg is None:
            raise RuntimeError(
                "ffmpeg not found: run scripts/setup.sh --test (installs it with apt)"
            )
        self.clip_frames = clip_frames(self.clip)
        self.relay.start()
        self.proc = subprocess.Popen(
            [
                ffmpeg, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
                "-i", str(self.clip), "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp",
                self.url,
            ],
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self.relay.frames_sent() and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ffmpeg exited with {self.proc.returncode}")
            time.sleep(0.05)
        if not self.relay.frames_sent():
            raise RuntimeError("ffmpeg sent no frame to the relay")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.relay.stop()

    def sent_at(self, frame: np.ndarray, before: float | None = None) -> float | None:
        """When the relay sent ``frame`` (``time.monotonic()``), read from its drawn number.

        The clip loops, so a number recurs every ``clip_frames`` frames: the
        latest sending of it before ``before`` (default now) is taken; a frame
        older than one loop of the clip reads young.
        """
        n = frame_number(frame)
        if n is None:
            return None
        return self.relay.sent_at(n, self.clip_frames, before)

    def __enter__(self) -> RtspCamera:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def clip_frames(clip: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(clip))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()


class _Client:
    """One connection: its sends go through a bounded queue on their own thread."""

    def __init__(self, sock: socket.socket, queue_bytes: int) -> None:
        self.sock = sock
        self.queue_bytes = queue_bytes
        self.pending: list[bytes] = []
        self.size = 0
        self.dropped = 0
        self.cond = threading.Condition()
        self.closed = False
        self.channels: dict[int, int] = {}  # publisher channel -> this client's channel
        self.playing = False
        threading.Thread(target=self._send_loop, daemon=True).start()

    def send(self, data: bytes, droppable: bool = False) -> None:
        with self.cond:
            if droppable and self.size + len(data) > self.queue_bytes:
                self.dropped += 1
                return
            self.pending.append(data)
            self.size += len(data)
            self.cond.notify()

    def _send_loop(self) -> None:
        while True:
            with self.cond:
                while not self.pending and not self.closed:
                    self.cond.wait()
                if self.closed:
                    return
                data = self.pending.pop(0)
                self.size -= len(data)
            try:
                self.sock.sendall(data)
            except OSError:
                self.close()
                return

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class RtspRelay:
    """The RTSP server of :class:`RtspCamera`: one publisher per path, any number of players."""

    def __init__(self, queue_bytes: int = 1 << 20, fps: int = 25) -> None:
        self.queue_bytes = queue_bytes
        self.ticks = 90000 // fps  # RTP clock ticks per frame (H.264: 90 kHz)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sdp: dict[str, str] = {}
        self.players: list[_Client] = []
        self._lock = threading.Lock()
        self._sessions = itertools.count(0x5EED)
        self._first_ts: int | None = None
        self._sent: OrderedDict[int, float] = OrderedDict()  # frame index -> monotonic
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._accept, name="rtsp-relay", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.server.close()
        with self._lock:
            players, self.players = self.players, []
        for p in players:
            p.close()

    def frames_sent(self) -> int:
        with self._lock:
            return len(self._sent)

    def sent_at(self, number: int, loop: int, before: float | None = None) -> float | None:
        """When frame ``number`` (of a clip ``loop`` frames long) was last sent before ``before``."""
        with self._lock:
            for n in reversed(self._sent):
                if before is not None and self._sent[n] > before:
                    continue
                if (n % loop == number % loop) if loop else n == number:
                    return self._sent[n]
        return None

    def dropped(self) -> int:
        with self._lock:
            return sum(p.dropped for p in self.players)

    # -- connections -------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self.server.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        client = _Client(sock, self.queue_bytes)
        reader = sock.makefile("rb")
        publishing: str | None = None
        try:
            while not self._stop.is_set():
                first = reader.read(1)
                if not first:
                    return
                if first == b"$":  # an interleaved packet (RFC 2326 10.12)
                    head = reader.read(3)
                    if len(head) < 3:
                        return
                    channel, length = head[0], struct.unpack(">H", head[1:])[0]
                    packet = reader.read(length)
                    if publishing is not None:
                        self._relay(channel, packet)
                    continue  # a player's RTCP receiver reports are not needed
                line = first + reader.readline()
                headers: dict[str, str] = {}
                while True:
                    h = reader.readline()
                    if not h or h in (b"\r\n", b"\n"):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = reader.read(int(headers.get("content-length", "0") or 0))
                method, url = line.decode("latin-1").split()[:2]
                path = url.split("://", 1)[-1].split("/", 1)[-1].split("/")[0]
                publishing = self._request(client, method, url, path, headers, body, publishing)
                if method == "TEARDOWN":
                    return
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                if client in self.players:
                    self.players.remove(client)
            client.close()

    def _request(
        self,
        client: _Client,
        method: str,
        url: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        publishing: str | None,
    ) -> str | None:
        cseq = headers.get("cseq", "0")
        extra: list[str] = []
        payload = b""
        status = "200 OK"
        session = headers.get("session", "").split(";")[0] or f"{next(self._sessions):08X}"
        if method == "OPTIONS":
            extra.append(
                "Public: OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, RECORD, TEARDOWN, GET_PARAMETER"
            )
        elif method == "ANNOUNCE":
            self.sdp[path] = body.decode("utf-8")
        elif method == "DESCRIBE":
            if path not in self.sdp:
                status = "404 Not Found"
            else:
                payload = self.sdp[path].encode()
                base = url if url.endswith("/") else url + "/"
                extra += ["Content-Type: application/sdp", f"Content-Base: {base}"]
        elif method == "SETUP":
            transport = headers.get("transport", "")
            if "TCP" not in transport.upper() or "interleaved=" not in transport:
                status = "461 Unsupported Transport"
            else:
                pair = transport.split("interleaved=")[1].split(";")[0]
                channel = int(pair.split("-")[0])
                track = len(client.channels)  # the k-th SETUP: the publisher's 2k, 2k + 1
                client.channels[track] = channel
                client.channels[track + 1] = channel + 1
                extra += [f"Transport: {transport}", f"Session: {session};timeout=60"]
        elif method == "RECORD":
            publishing = path
            extra.append(f"Session: {session}")
        elif method == "PLAY":
            client.playing = True
            with self._lock:
                self.players.append(client)
            extra += [f"Session: {session}", "Range: npt=0.000-"]
        elif method in ("GET_PARAMETER", "SET_PARAMETER", "TEARDOWN", "PAUSE"):
            extra.append(f"Session: {session}")
        else:
            status = "405 Method Not Allowed"
        if payload:
            extra.append(f"Content-Length: {len(payload)}")
        reply = "\r\n".join([f"RTSP/1.0 {status}", f"CSeq: {cseq}", *extra, "", ""]).encode()
        client.send(reply + payload)
        return publishing

    def _relay(self, channel: int, packet: bytes) -> None:
        if channel == 0 and len(packet) >= 12:
            ts = struct.unpack(">I", packet[4:8])[0]
            now = time.monotonic()
            with self._lock:
                if self._first_ts is None:
                    self._first_ts = ts
                n = round(((ts - self._first_ts) % (1 << 32)) / self.ticks)
                if n not in self._sent:
                    self._sent[n] = now
                    while len(self._sent) > 5000:
                        self._sent.popitem(last=False)
        with self._lock:
            players = list(self.players)
        for p in players:
            mapped = p.channels.get(channel)
            if mapped is not None:
                p.send(b"$" + bytes([mapped]) + struct.pack(">H", len(packet)) + packet, True)


@contextlib.contextmanager
def rtsp_camera(clip: Path, **kwargs: object) -> Iterator[RtspCamera]:
    """A running :class:`RtspCamera` for the ``with`` block."""
    cam = RtspCamera(clip, **kwargs)  # type: ignore[arg-type]
    cam.start()
    try:
        yield cam
    finally:
        cam.stop()
