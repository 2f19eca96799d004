"""The receiver as a part of the box: who may push, what each push becomes, and its health.

``handle`` runs on a receiver worker for each request from a configured
camera: decode it with the camera's vendor protocol, keep it (the spool,
on disk), answer per the vendor's contract, and hand a fresh read to the
camera's lane. A read the camera kept while it could not reach the box
(Zhenshi ``isoffline``) is history, not a truck at the barrier now: it
never moves a barrier, and is recorded in the ledger before the camera is
answered (:mod:`edged.lane.offline`), so a read the box could not record is
sent again. Every camera's last push or heartbeat is watched: one silent
longer than its ``silence_s`` raises ``camera_lost`` on its lane, as a
frame camera that stops does, and ``camera_restored`` when it is back.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from drivers import config as driver_config
from drivers.camera.push import Push, PushError, Reply
from edged import sitetime
from edged.ledger.store import LedgerError
from edged.logs import get_logger
from edged.push.clock import STALE_S, ClockWatch, describe, span
from edged.push.server import ReceiverServer
from edged.push.spool import Spool

log = get_logger("push")

#: spool states of an offline read that has no ledger row yet
_UNRECORDED = ("new", "offline_failed")


@dataclass
class Camera:
    """One pushing camera: its lane, config, vendor protocol and counters."""

    lane: Any  # Lane
    cfg: Any  # PushCameraConfig
    vendor: Any  # Vendor
    last_seen: float = 0.0  # monotonic
    state: str = "waiting"  # waiting (nothing yet) | ok | lost
    counts: dict[str, int] = field(default_factory=dict)
    serial_out: list[bytes] = field(default_factory=list)  # for a display behind the camera
    clock: ClockWatch = field(default_factory=ClockWatch)

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1


class CameraSerial:
    """A camera's RS-485 port as a display driver writes to it: frames ride on its replies."""

    in_waiting = 0

    def __init__(self, receiver: PushReceiver, address: str) -> None:
        self.receiver = receiver
        self.address = address

    def write(self, data: bytes) -> int:
        self.receiver.send_serial(self.address, data)
        return len(data)

    def read(self, size: int = 1) -> bytes:
        return b""

    def reset_input_buffer(self) -> None:
        return None

    def close(self) -> None:
        return None


class PushReceiver:
    """Supervised part ``receiver``: the HTTP server, the spool and the cameras it serves."""

    name = "receiver"

    def __init__(self, cfg: Any, data_dir: Path, sink: Any) -> None:
        self.cfg = cfg
        spool = Path(cfg.spool_dir)
        self.spool_dir = spool if spool.is_absolute() else Path(data_dir) / spool
        self.sink = sink
        self.cameras: dict[str, Camera] = {}
        self.server: ReceiverServer | None = None
        self.spool: Spool | None = None
        self._thread: threading.Thread | None = None
        self._watch: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._offline = threading.Lock()

    def add(self, lane: Any) -> None:
        """Serve ``lane``'s pushing camera (its address must be unique: config checks it)."""
        cfg = lane.cfg.camera
        self.cameras[cfg.address] = Camera(lane, cfg, driver_config.build(cfg))
        lane.push_camera = self

    # -- part ---------------------------------------------------------------------------
    def start(self) -> None:
        self.spool = Spool(self.spool_dir)
        c = self.cfg
        try:
            self.server = ReceiverServer(
                (c.bind, c.port),
                self.handle,
                lambda ip: ip in self.cameras,
                max_body=int(c.max_body_mb * 1024 * 1024),
                request_timeout=c.request_timeout_s,
                workers=c.workers,
                per_address=c.per_camera,
            )
        except OSError as exc:
            self.spool.close()
            raise RuntimeError(
                f"cannot listen on {c.bind}:{c.port}: {exc}; check receiver.bind is this box's"
                " address and nothing else uses the port"
            ) from None
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, name="push-accept",
            daemon=True,
        )  # fmt: skip
        self._thread.start()
        now = time.monotonic()
        for cam in self.cameras.values():
            cam.last_seen = now  # silence counts from the start
        self._watch = threading.Thread(target=self._watch_silence, name="push-watch", daemon=True)
        self._watch.start()
        log.info("push_receiver_listening", bind=c.bind, port=self.server.server_address[1])

    def stop(self) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.spool is not None:
            self.spool.close()
            self.spool = None

    @property
    def port(self) -> int:
        return 0 if self.server is None else int(self.server.server_address[1])

    # -- one request ---------------------------------------------------------------------
    def handle(self, ip: str, path: str, content_type: str, body: bytes) -> Reply:
        cam = self.cameras[ip]
        try:
            push = cam.vendor.parse(body, content_type)
        except Exception as exc:  # PushError, or a parser fault: a clear 400, never a hang-up
            if not isinstance(exc, PushError | ValueError):
                log.exception("push_parser_fault", lane=cam.lane.name, client=ip)
            cam.count("bad")
            log.warning(
                "push_not_understood",
                lane=cam.lane.name,
                client=ip,
                error=str(exc),
                hint=f"check the camera pushes {cam.cfg.type} format to this box",
            )
            return cam.vendor.reply(None, False)
        self._seen(cam)
        if push.kind != "plate":
            cam.count(push.kind)
            return cam.vendor.reply(push, True, self._serial(cam))
        if push.offline:  # one at a time: a resend racing its original must not make two rows
            with self._offline:
                return self._keep(cam, push, body)
        return self._keep(cam, push, body)

    def _keep(self, cam: Camera, push: Push, body: bytes) -> Reply:
        """Store a plate read, route it if it is new, and answer the camera."""
        spool = self.spool
        try:
            assert spool is not None
            stored = spool.store(cam.lane.name, push, body, cam.cfg.dedupe_window_s)
        except Exception as exc:  # a full disk: the camera keeps it (Zhenshi) or it is lost
            cam.count("not_stored")
            self.sink.event(
                "push_not_stored",
                "error",
                "a camera's read could not be stored; free space under daemon.data_dir",
                lane=cam.lane.name,
                plate=push.plate,
                error=str(exc),
            )
            return cam.vendor.reply(push, False)
        routed = push  # what the box makes of it; the camera is answered on what it sent
        if stored.status == "new" and not push.offline and push.shot_at is not None:
            if self._stale(cam, push):
                routed = replace(push, offline=True)
            else:
                self._clock(cam, push.shot_at)
        if stored.status == "duplicate_id" and push.offline and stored.prior in _UNRECORDED:
            # kept before, but the box stopped (or failed) before its row: record it now
            stored = replace(stored, status="new")
        cam.count(stored.status if stored.status != "new" else "offline" if push.offline else "new")
        if stored.status == "new" and not self._route(cam, routed, stored.push_id):
            return cam.vendor.reply(push, False)  # the camera keeps it and sends it again
        return cam.vendor.reply(push, True, self._serial(cam))

    def _stale(self, cam: Camera, push: Push) -> bool:
        """A read sent as live but taken long before it came, by a camera whose clock is
        right: one it kept and sent late without saying so. It must not open the barrier."""
        assert push.shot_at is not None
        if cam.clock.offset_s is None or cam.clock.off:
            return False  # the clock is unknown or off: its stamps cannot tell
        lag = (sitetime.now() - push.shot_at).total_seconds() + cam.clock.offset_s
        if lag <= STALE_S:
            return False
        cam.count("stale")
        self.sink.event(
            "camera_read_stale",
            "warning",
            f"the camera sent a read taken {span(lag)} before it came as a live one: it is"
            " recorded as a late read and moves no barrier; check the camera's offline upload"
            " (断网续传) settings",
            lane=cam.lane.name,
            plate=push.plate,
            record_id=push.record_id,
            lag_s=round(lag, 1),
        )
        return True

    def _route(self, cam: Camera, push: Push, push_id: int | None) -> bool:
        """Hand a fresh read to its lane; an offline read is recorded before the answer."""
        assert self.spool is not None
        if not push.offline:
            outcome = cam.lane.camera_pushed(push, push_id)
            self.spool.note(push_id or 0, outcome)
            return True
        try:
            done = cam.lane.camera_offline(push, cam.clock.offset_s)
        except Exception as exc:  # a full disk, a broken ledger: not recorded, so not taken
            if not isinstance(exc, OSError | LedgerError):
                log.exception("offline_read_fault", lane=cam.lane.name, record_id=push.record_id)
            self.spool.note(push_id or 0, "offline_failed")
            cam.count("offline_failed")
            self.sink.event(
                "offline_read_not_recorded",
                "error",
                "a read the camera kept while offline could not be recorded; the camera keeps"
                " it and sends it again: free space under daemon.data_dir",
                lane=cam.lane.name,
                plate=push.plate,
                record_id=push.record_id,
                error=str(exc),
            )
            return False
        self.spool.note(push_id or 0, done["outcome"])
        cam.count(done["outcome"])
        return True

    def _clock(self, cam: Camera, shot_at: Any) -> None:
        """Measure the camera's clock on a live read; tell the technician when it is off."""
        said = cam.clock.note(shot_at, sitetime.now(), time.monotonic())
        if said == "off":
            assert cam.clock.offset_s is not None
            self.sink.event(
                "camera_clock_off",
                "warning",
                f"the camera's clock is {describe(cam.clock.offset_s)}: the reads"
                " it keeps while it cannot reach the box are recorded at its time; set the"
                " camera's NTP server (the box's address or the plant's) or its time",
                lane=cam.lane.name,
                source=f"{cam.cfg.type}:{cam.cfg.address}",
                offset_s=cam.clock.offset_s,
            )
        elif said == "ok":
            self.sink.event(
                "camera_clock_ok",
                "info",
                "the camera's clock agrees with the box's again",
                lane=cam.lane.name,
                source=f"{cam.cfg.type}:{cam.cfg.address}",
                offset_s=cam.clock.offset_s,
            )

    def _serial(self, cam: Camera) -> list[bytes]:
        with self._lock:
            out, cam.serial_out = cam.serial_out, []
        return out

    def serial_port(self, address: str) -> CameraSerial:
        """The serial channel of the camera at ``address``, for a display behind it."""
        return CameraSerial(self, address)

    def send_serial(self, address: str, data: bytes, keep: int = 16) -> None:
        """Bytes for the serial port of the camera at ``address`` (next reply carries them)."""
        with self._lock:
            cam = self.cameras[address]
            cam.serial_out = [*cam.serial_out, data][-keep:]

    # -- silence ---------------------------------------------------------------------------
    def _seen(self, cam: Camera) -> None:
        cam.last_seen = time.monotonic()
        if cam.state == "lost":
            cam.lane.ctx.sink.event(
                "camera_restored",
                "info",
                "camera back: it pushes reads again",
                lane=cam.lane.name,
                source=f"{cam.cfg.type}:{cam.cfg.address}",
            )
        cam.state = "ok"

    def _watch_silence(self) -> None:
        while not self._stop.wait(1.0):
            now = time.monotonic()
            for cam in list(self.cameras.values()):
                if cam.state != "lost" and now - cam.last_seen > cam.cfg.silence_s:
                    cam.lane.ctx.sink.event(
                        "camera_lost",
                        "warning",
                        "camera lost: no push nor heartbeat; plates are not read, passages fall"
                        " back to RFID or the guard; check camera power, network and its HTTP"
                        " push settings",
                        lane=cam.lane.name,
                        source=f"{cam.cfg.type}:{cam.cfg.address}",
                        silent_s=round(now - cam.last_seen),
                    )
                    cam.state = "lost"  # after the event: status never runs ahead of the log

    def sweep(self) -> None:
        """Old raw pushes out (housekeeping); a failure never stops the receiver."""
        try:
            if self.spool is not None:
                self.spool.sweep(self.cfg.spool_days, self.cfg.spool_budget_mb)
        except Exception as exc:
            log.error("push_sweep_failed", error=repr(exc), hint="check the push spool folder")

    # -- health ----------------------------------------------------------------------------
    def camera_status(self, address: str) -> dict[str, Any]:
        cam = self.cameras[address]
        silent = None if not cam.last_seen else round(time.monotonic() - cam.last_seen, 1)
        return {
            "state": cam.state,
            "source": f"{cam.cfg.type}:{cam.cfg.address}",
            "silent_s": silent,
            "pushes": dict(cam.counts),
            "clock_offset_s": cam.clock.offset_s,
            "error": None if cam.state != "lost" else f"no push for {silent} s",
        }

    def status(self) -> dict[str, Any]:
        srv = self.server
        return {
            "listening": None if srv is None else f"{self.cfg.bind}:{self.port}",
            "in_flight": 0 if srv is None else srv.in_flight(),
            "refused": {} if srv is None else dict(srv.counters),
            "spool_mb": None if self.spool is None else round(self.spool.bytes / 2**20, 1),
        }
