"""A lane's clips: the last seconds of the camera's stream in memory, copied out per passage.

The recorder holds one session to the camera's stream and keeps the
compressed packets (not frames) of the last ``clip_before_s`` seconds and
a little more, from a keyframe on. A passage asks for a clip around its
time; once the stream has run ``clip_after_s`` past it, the packets from
the last keyframe before the start to the end are remuxed into an MP4 (or
MKV) file without decoding or re-encoding them, so a clip costs a copy of
bytes, not a video encoder, on a Pi. The finished file is hashed, synced,
moved into place and reported (the lane chains its SHA-256 in the audit
log). A stream that stops or will not open is an event once, retried with
backoff; passages go on and their rows still say where the recorder's
video is.

PyAV (``pip install av``, the FFmpeg libraries in a wheel) is imported
only when a lane records clips.
"""

from __future__ import annotations

import collections
import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.camera import safe_url
from edged.logs import get_logger

log = get_logger("video")

MAX_BUFFER_BYTES = 64 * 1024 * 1024  # a 16 Mbit/s stream for 30 s; bounds a runaway stream
GIVE_UP_S = 20.0  # a clip whose end the stream never reaches is written with what there is


@dataclass
class _Packet:
    at: float  # wall time it arrived (epoch s)
    data: bytes
    pts: int | None
    dts: int | None
    key: bool
    duration: int


@dataclass
class ClipRequest:
    event_id: str
    start: float  # epoch s
    end: float
    path: Path  # final path
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Clip:
    """A clip on disk: its request, SHA-256, size, the window it really covers, whether cut short."""

    request: ClipRequest
    sha256: str
    size: int
    first: float
    last: float
    partial: bool


class ClipRecorder:
    """Supervised part ``<lane>.video``: one stream session, a packet ring, clips on request."""

    def __init__(
        self,
        name: str,
        url: str,
        cfg: Any,
        on_clip: Callable[[Clip], None],
        event: Callable[..., None],
    ) -> None:
        self.name = name
        self.url = url
        self.cfg = cfg
        self.on_clip = on_clip
        self.event = event
        self._ring: collections.deque[_Packet] = collections.deque()
        self._ring_bytes = 0
        self._pending: list[ClipRequest] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._template: Any = None  # the input stream, for the clip's stream parameters
        self.state = "starting"
        self.error: str | None = None
        self.clips = 0
        self.failed = 0
        self.packets = 0
        self.stream_bytes = 0

    # -- part --------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            import av  # noqa: F401
        except ImportError:
            raise RuntimeError(
                "clips need PyAV, which this installation leaves out: pip install av (about"
                " 100 MB on arm64), or set video.clip = false"
            ) from None
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.cfg.open_timeout_s + 5)

    # -- requests (from the lane, never blocking) -------------------------------------------
    def clip(self, request: ClipRequest) -> None:
        with self._lock:
            self._pending.append(request)

    # -- the stream thread ---------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                self._session()
                backoff = 1.0
            except Exception as exc:  # any stream fault: report once, retry
                self._lost(f"{type(exc).__name__}: {exc}")
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, 30.0)

    def _session(self) -> None:
        import av

        t = self.cfg.open_timeout_s
        options = {"rtsp_transport": "tcp"} if self.url.startswith("rtsp") else {}
        with av.open(self.url, options=options, timeout=(t, t)) as container:
            if not container.streams.video:
                raise RuntimeError("the stream has no video")
            stream = container.streams.video[0]
            self._template = stream
            if self.state != "ok":
                if self.state == "lost":
                    self.event("video_restored", "info", "clip stream back", source=self._safe_url)
                self.state, self.error = "ok", None
            try:
                for packet in container.demux(stream):
                    if self._stop.is_set():
                        return
                    if packet.size == 0 or (packet.pts is None and packet.dts is None):
                        continue  # RTSP's first packets, before the stream's clock is known
                    self._keep(packet)
                    self._flush_pending()
            finally:  # clips need the open stream's parameters: write what is due now
                self._flush_pending(force=self._stop.is_set())
                self._template = None
        raise RuntimeError("the stream ended")

    def _keep(self, packet: Any) -> None:
        now = time.time()
        data = bytes(packet)
        p = _Packet(
            now, data, packet.pts, packet.dts, bool(packet.is_keyframe), packet.duration or 0
        )
        keep_s = self.cfg.clip_before_s + self.cfg.clip_after_s + GIVE_UP_S
        with self._lock:
            self._ring.append(p)
            self._ring_bytes += len(data)
            self.packets += 1
            self.stream_bytes += len(data)
            oldest_wanted = min([r.start for r in self._pending], default=now) - 1.0
            horizon = min(now - keep_s, oldest_wanted)
            # Drop from the front up to the last keyframe before the horizon (a clip starts on one).
            while len(self._ring) > 1 and (
                self._ring_bytes > MAX_BUFFER_BYTES or self._ring[0].at < horizon
            ):
                nxt = next((i for i in range(1, len(self._ring)) if self._ring[i].key), None)
                if nxt is None or (
                    self._ring[nxt].at > horizon and self._ring_bytes <= MAX_BUFFER_BYTES
                ):
                    break
                for _ in range(nxt):
                    self._ring_bytes -= len(self._ring.popleft().data)

    def _flush_pending(self, force: bool = False) -> None:
        now = time.time()
        with self._lock:
            ready = [
                r for r in self._pending if force or (self._ring and self._ring[-1].at >= r.end)
                or now > r.end + GIVE_UP_S
            ]  # fmt: skip
            self._pending = [r for r in self._pending if r not in ready]
            packets = list(self._ring)
        for request in ready:
            try:
                clip = self._write(request, packets)
            except Exception as exc:
                self.failed += 1
                log.error(
                    "clip_not_written",
                    recorder=self.name,
                    event_id=request.event_id,
                    error=f"{type(exc).__name__}: {exc}",
                    hint="check free space and permissions of the clips folder",
                )
                continue
            if clip is None:
                self.failed += 1
                log.warning(
                    "clip_no_video", recorder=self.name, event_id=request.event_id,
                    hint="the stream had no video around this passage (camera lost?)",
                )  # fmt: skip
                continue
            self.clips += 1
            self.on_clip(clip)

    def _write(self, request: ClipRequest, packets: list[_Packet]) -> Clip | None:
        import av

        template = self._template
        if template is None:
            return None
        keys = [i for i, p in enumerate(packets) if p.key and p.at <= request.start]
        first = keys[-1] if keys else next((i for i, p in enumerate(packets) if p.key), None)
        if first is None:
            return None
        chosen = [p for p in packets[first:] if p.at <= request.end]
        if not chosen:
            return None
        base = min((p.dts if p.dts is not None else p.pts) or 0 for p in chosen)
        request.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = request.path.with_name(request.path.name + ".part")
        fmt = "matroska" if self.cfg.container == "mkv" else "mp4"
        with av.open(str(tmp), "w", format=fmt) as out:
            stream = out.add_stream_from_template(template)
            for p in chosen:
                pkt = av.Packet(p.data)
                pts = p.pts if p.pts is not None else p.dts
                pkt.pts = None if pts is None else pts - base
                pkt.dts = None if p.dts is None else p.dts - base
                pkt.duration = p.duration
                pkt.time_base = template.time_base
                pkt.is_keyframe = p.key
                pkt.stream = stream
                out.mux(pkt)
        digest = hashlib.sha256()
        with open(tmp, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
            os.fsync(f.fileno())
        os.replace(tmp, request.path)
        size = request.path.stat().st_size
        partial = chosen[-1].at < request.end - 0.5
        return Clip(request, digest.hexdigest(), size, chosen[0].at, chosen[-1].at, partial)

    def _lost(self, why: str) -> None:
        if self.state != "lost":
            self.event(
                "video_lost",
                "warning",
                "clip stream lost: passages go on without clips; check the camera and video.url",
                source=self._safe_url,
                error=why,
            )
        self.state, self.error = "lost", why
        with self._lock:
            self._ring.clear()
            self._ring_bytes = 0
            stale = [r for r in self._pending if time.time() > r.end + GIVE_UP_S]
            self._pending = [r for r in self._pending if r not in stale]
        for request in stale:  # their video is gone with the stream
            self.failed += 1
            log.warning("clip_no_video", recorder=self.name, event_id=request.event_id,
                        hint="the stream was lost around this passage")  # fmt: skip

    @property
    def _safe_url(self) -> str:
        """The URL without its password, for logs and events."""
        return safe_url(self.url)

    def buffered_s(self) -> float:
        with self._lock:
            return 0.0 if len(self._ring) < 2 else round(self._ring[-1].at - self._ring[0].at, 1)

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "error": self.error,
            "source": self._safe_url,
            "buffered_s": self.buffered_s(),
            "clips": self.clips,
            "failed": self.failed,
            "pending": len(self._pending),
        }
