"""One lane: its devices, its worker thread, its direction and its passages.

Everything that touches a lane's barrier — vehicle triggers, manual and
remote opens — runs on the lane's own worker, one job at a time, so two
threads never drive its relays against each other, and a truck at the exit
never waits behind one at the entry.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from drivers import config as driver_config
from drivers.rfid import TagBuffer, TagRead
from edged import sitetime
from edged.app.pins import PinSource
from edged.app.supervisor import Part
from edged.lane.camera_feed import CameraFeed
from edged.lane.config import LaneConfig
from edged.lane.context import LaneContext
from edged.lane.devices import GpioPart, RfidPart, ScalePart
from edged.lane.direction import DirectionTracker, rule_of
from edged.lane.display import DisplayPart
from edged.lane.passage import PassageOutcome, PassagePipeline, Trigger
from edged.lane.pushed import PushSlot
from edged.lane.worker import GateWorker
from edged.ledger.record import Video
from edged.ledger.store import LedgerError
from edged.ledger.verify import CLIP_ACTION
from edged.logs import get_logger

log = get_logger("gate")


class Lane:
    """A lane of the gate, built from its ``[[lanes]]`` entry."""

    def __init__(self, cfg: LaneConfig, ctx: LaneContext, pins: PinSource) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.ctx = ctx
        self.worker = GateWorker(f"lane-{cfg.name}")
        self.tracker = DirectionTracker(rule_of(cfg.direction, cfg.both_rule))
        self.pipeline = PassagePipeline(self, ctx)
        self.tags = TagBuffer()
        self.io: Any = None  # GateIO while the gpio part runs
        self.camera: CameraFeed | None = None
        self.camera_source: Any = None  # the driver's FrameSource (a mock one in the demo)
        self.gpio_part = GpioPart(self, pins)
        self.rfid_part: RfidPart | None = None  # the reader this lane listens to (own or shared)
        self.scale_part: ScalePart | None = None  # the weighbridge it reads (own or shared)
        if cfg.rfid is not None:
            self.rfid_part = RfidPart(cfg.name, cfg.rfid, pins)
            self.rfid_part.listeners.append(self.tag_seen)
        if cfg.scale is not None:
            self.scale_part = ScalePart(cfg.name, cfg.scale)
        self.display_part: DisplayPart | None = None  # the board this lane feeds (own or shared)
        if cfg.display is not None:
            self.display_part = DisplayPart(cfg.name, cfg.display, ctx)
            self.display_part.camera_channel = self._camera_channel
        self.recorder: Any = None  # ClipRecorder, where this lane keeps clips
        if cfg.video.clip:
            from edged.video.recorder import ClipRecorder

            self.recorder = ClipRecorder(
                f"{cfg.name}.video", cfg.clip_url, cfg.video, self._clip_done, self._camera_event
            )
        self.push_camera: Any = None  # the box's receiver, when this lane's camera pushes reads
        self.push_slot = PushSlot()
        self.passages = 0
        self.last: PassageOutcome | None = None
        self.last_read: dict[str, Any] | None = None

    # -- parts -------------------------------------------------------------------
    def parts(self) -> list[tuple[Any, bool]]:
        """Supervised parts this lane owns, in start order; (part, critical)."""
        out: list[tuple[Any, bool]] = [(self.gpio_part, False)]
        if self.cfg.has_camera and not self.pushes_reads:
            out.append((Part(f"{self.name}.camera", self._start_camera, self._stop_camera), False))
        if self.cfg.rfid is not None and self.rfid_part is not None:
            out.append((self.rfid_part, False))
        if self.cfg.scale is not None and self.scale_part is not None:
            out.append((self.scale_part, False))
        if self.cfg.display is not None and self.display_part is not None:
            out.append((self.display_part, False))
        if self.recorder is not None:
            out.append((self.recorder, False))
        out.append((Part(f"{self.name}.worker", self.worker.start, self.worker.stop), True))
        return out

    @property
    def pushes_reads(self) -> bool:
        """Whether this lane's camera pushes its reads (the box's receiver serves it)."""
        return bool(getattr(self.cfg.camera, "triggers_passages", False))

    @property
    def push_joins_loop(self) -> bool:
        """A pushing camera on a lane with a loop: the loop starts passages, pushes join them."""
        return self.pushes_reads and self.cfg.gpio.ground_loop.pin is not None

    def share(self, kind: str, owner: Lane) -> None:
        """Use ``owner``'s reader, weighbridge or display (``shares = { rfid = "entry" }``)."""
        if kind == "rfid" and owner.rfid_part is not None:
            self.rfid_part = owner.rfid_part
            self.rfid_part.listeners.append(self.tag_seen)
        elif kind == "scale":
            self.scale_part = owner.scale_part
        elif kind == "display":
            self.display_part = owner.display_part

    def _start_camera(self) -> None:
        self.camera_source = driver_config.build(self.cfg.camera)
        self.camera = CameraFeed(
            f"{self.name}.camera", self.camera_source, self.cfg.camera, self._camera_event
        )
        self.camera.start()

    def _stop_camera(self) -> None:
        if self.camera is not None:
            self.camera.stop()

    def _camera_event(self, kind: str, severity: str, message: str, **details: Any) -> None:
        self.ctx.sink.event(kind, severity, message, lane=self.name, **details)

    # -- inputs ------------------------------------------------------------------
    def tag_seen(self, read: TagRead) -> None:
        """A tag read by this lane's reader; a shared reader's other antennas are not ours."""
        wanted = self.cfg.rfid_antennas
        if wanted and read.antenna is not None and read.antenna not in wanted:
            return
        self.tags.add(read)

    def tag_window(self) -> list[Any]:
        """Tags seen around now, within the reader's window."""
        if self.rfid_part is None:
            return []
        rc = self.rfid_part.cfg
        return self.tags.window(time.time(), rc.window_before_s, rc.window_after_s)

    def on_loop(self, loop: str, active: bool) -> None:
        """A loop edge from GPIO: a new vehicle starts a passage."""
        arrival = self.tracker.edge(loop, active)
        if arrival is not None:
            self.trigger(Trigger("loop", direction=arrival.direction))

    def camera_pushed(self, push: Any, push_id: int | None) -> str:
        """A fresh read pushed by this lane's camera (stored already): what it becomes."""
        if not self.push_joins_loop:
            return "passage" if self.trigger(Trigger("camera", pushed=push)) else "dropped"
        self.push_slot.put(push, push_id)
        cam = self.cfg.camera
        # late enough that a loop passage that began within offline_join_s of the push has
        # its row: an unjoined read then corrects that row instead of making a second one
        wait = max(2 * cam.join_s, cam.join_s + cam.offline_join_s) + 1.0
        timer = threading.Timer(wait, self._unjoined, (push, push_id, sitetime.now()))
        timer.daemon = True
        timer.start()
        return "joining"

    def camera_offline(self, push: Any, clock_offset_s: float | None = None) -> dict[str, Any]:
        """A read the camera kept while it could not reach the box: a late row or a correction.

        Runs on the receiver's thread, not the lane's worker: it never moves the barrier,
        and a camera replaying thousands of reads must not queue ahead of a truck."""
        from edged.lane.offline import offline_passage

        return offline_passage(self.pipeline.box, self, push, clock_offset_s)

    def _camera_channel(self) -> Any:
        """The serial channel of this lane's pushing camera (a display behind it)."""
        if self.push_camera is None:
            raise RuntimeError("this lane's camera does not push: no channel for the display")
        return self.push_camera.serial_port(self.cfg.camera.address)

    def _unjoined(self, push: Any, push_id: int | None, arrived: Any) -> None:
        """A push no loop passage took: the technician is told, and the ledger gets the read
        (the correction of a plateless passage near it, or a row of its own)."""
        if not self.push_slot.take_if(push_id):
            return
        self.ctx.sink.event(
            "camera_read_unjoined",
            "warning",
            "the camera read a plate but no loop passage took it: check the loop, the"
            " camera's trigger area and the lane's join_s",
            lane=self.name,
            plate=push.plate,
        )
        from edged.lane.offline import unjoined_read

        try:
            done = unjoined_read(self.pipeline.box, self, push, arrived)
        except Exception as exc:  # the timer thread must say why, not die
            if not isinstance(exc, OSError | LedgerError):
                log.exception("unjoined_read_fault", lane=self.name, plate=push.plate)
            self.ctx.sink.event(
                "unjoined_read_not_recorded",
                "error",
                "a read no loop passage took could not be recorded; its raw push stays in the"
                " push spool: free space under daemon.data_dir",
                lane=self.name,
                plate=push.plate,
                error=str(exc),
            )
            return
        if self.push_camera is not None and self.push_camera.spool is not None:
            self.push_camera.spool.note(push_id or 0, done["outcome"])

    def _passage(self, trig: Trigger) -> PassageOutcome:
        """On the worker: a loop's passage takes the camera's push that came around it."""
        if trig.pushed is None and trig.source == "loop" and self.push_joins_loop:
            taken = self.push_slot.take(trig.t0, self.cfg.camera.join_s)
            if taken is not None:
                trig = replace(trig, pushed=taken[0])
                if self.push_camera is not None and self.push_camera.spool is not None:
                    self.push_camera.spool.note(taken[1] or 0, "joined")
        return self.pipeline.run(trig)

    def trigger(self, trig: Trigger) -> bool:
        """From a GPIO thread, the receiver or the control socket: queue one passage."""
        try:
            self.worker.submit(self._passage, trig)
        except RuntimeError:
            self.ctx.sink.event(
                "passage_dropped",
                "error",
                "lane worker overloaded; passage not handled",
                lane=self.name,
                source=trig.source,
            )
            return False
        return True

    def run(self, trig: Trigger, wait: float = 30.0) -> PassageOutcome:
        """Queue one passage and wait for it (control socket, tests)."""
        return self.worker.submit(self._passage, trig, wait=wait)

    def manual(self, wait: float = 10.0, **kwargs: Any) -> dict[str, Any]:
        """A guard's or remote open, on this lane's worker."""
        from edged.lane.manual import manual_passage

        return self.worker.submit(manual_passage, self.pipeline.box, self, wait=wait, **kwargs)

    def note_passage(self, outcome: PassageOutcome) -> None:
        """A recorded passage (the barrier has acted): count it and tell the driver."""
        self.passages += 1
        self.last = outcome
        if self.display_part is not None:
            self.display_part.passage(outcome.record, self.name)  # queued, never waits
        video = outcome.record.get("video") or {}
        if self.recorder is not None and video.get("clip") and self.ctx.clips is not None:
            from edged.video.recorder import ClipRequest

            at = datetime.fromisoformat(outcome.record["time"]).timestamp()
            v = self.cfg.video
            self.recorder.clip(
                ClipRequest(
                    str(outcome.record["event_id"]),
                    at - v.clip_before_s,
                    at + v.clip_after_s,
                    self.ctx.clips.root / video["clip"],
                    {"ledger_seq": outcome.seq},
                )
            )

    # -- video -------------------------------------------------------------------
    def video_ref(self, passage_id: str | None, now: datetime) -> Video | None:
        """Where this passage's video is: the recorder's window, and the clip to come (a
        passage the lane's worker records; None for a manual open, which asks for no clip)."""
        v = self.cfg.video
        clip = None
        if passage_id and self.recorder is not None and self.ctx.clips is not None:
            path = self.ctx.clips.path_for(passage_id, now, v.container)
            clip = path.relative_to(self.ctx.clips.root).as_posix()
        if not v.recorder and clip is None:
            return None
        return Video(
            v.recorder or "edged clips",
            v.channel,
            (now - timedelta(seconds=v.before_s)).isoformat(timespec="seconds"),
            (now + timedelta(seconds=v.after_s)).isoformat(timespec="seconds"),
            clip,
        )

    def _clip_done(self, clip: Any) -> None:
        """A clip on disk: its hash chained in the audit log, beside its row's seq."""
        store = self.ctx.clips
        req = clip.request
        store.written(req.path, clip.size)
        self.ctx.sink.audit(
            "edged",
            CLIP_ACTION,
            {
                "lane": self.name,
                "event_id": req.event_id,
                **req.details,
                "clip": req.path.relative_to(store.root).as_posix(),
                "sha256": clip.sha256,
                "bytes": clip.size,
                "first": datetime.fromtimestamp(clip.first, self.ctx.tz).isoformat(),
                "last": datetime.fromtimestamp(clip.last, self.ctx.tz).isoformat(),
                "partial": clip.partial,
            },
        )

    # -- status ------------------------------------------------------------------
    def tick(self) -> None:
        if self.io is not None:
            self.io.check()

    def weigh(self) -> tuple[int | None, str | None]:
        """The vehicle's stable weight (kg), waiting up to ``weight_wait_s`` for it to settle;
        or None and why. Never longer: the barrier does not wait for a weighbridge."""
        part = self.scale_part
        if part is None:
            return None, "no weighbridge on this lane"
        deadline = time.monotonic() + self.cfg.weight_wait_s
        while True:
            reader = part.reader
            stable = reader.stable if reader is not None else None
            if stable is not None:
                return round(stable.kg), None
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if part.reader is None:
            return None, "weighbridge not running (see its component state)"
        latest = part.reader.latest
        if latest is None:
            return None, "weighbridge silent: indicator off or cable"
        if latest.kg < part.cfg.min_load_kg:
            return None, "weighbridge empty: the vehicle was not on it"
        return None, f"weight did not settle within {self.cfg.weight_wait_s:g} s"

    def status(self) -> dict[str, Any]:
        last = self.last
        return {
            "direction": self.cfg.direction,
            "passages": self.passages,
            "last_passage": None
            if last is None
            else {
                "plate": last.plate,
                "decision": last.decision,
                "direction": last.direction,
                "seq": last.seq,
                "time": last.record.get("time"),
            },
            "last_read": self.last_read,
            "queue": self.worker.depth,
            "camera": self._camera_status(),
            "rfid": None if self.rfid_part is None else self.rfid_part.name,
            "scale": None if self.scale_part is None else self.scale_part.status(),
            "display": None if self.display_part is None else self.display_part.status(),
            "video": self._video_status(),
        }

    def _video_status(self) -> dict[str, Any] | None:
        v = self.cfg.video
        if not v.recorder and self.recorder is None:
            return None
        return {
            "recorder": v.recorder or None,
            "channel": v.channel,
            "clips": None if self.recorder is None else self.recorder.status(),
        }

    def _camera_status(self) -> dict[str, Any] | None:
        if self.push_camera is not None:
            return self.push_camera.camera_status(self.cfg.camera.address)
        return None if self.camera is None else self.camera.status()

    def summary(self) -> str:
        last = self.last
        tail = f", last {last.plate or '-'} {last.decision}" if last else ""
        return f"{self.name}: {self.passages} passages{tail}"
