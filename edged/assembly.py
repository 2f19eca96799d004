"""Put the gate together from config: components, the passage pipeline, commands.

This is the only module that knows every area; each area stays usable (and
testable) on its own. Paths in the config that are not absolute are taken
relative to ``daemon.data_dir``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from drivers.rfid import TagBuffer
from edged.control import ControlServer
from edged.gate.csv_import import import_csv
from edged.gate.model import GateRead
from edged.gate.policy import decide_read, manual_open
from edged.gate.registry import Registry
from edged.health import RateMeter, clock_status, cpu_temperature_c, disk_use
from edged.identity import fuse
from edged.ledger.record import Approval as LedgerApproval
from edged.ledger.record import PassageRecord
from edged.ledger.record import Snapshot as LedgerSnapshot
from edged.ledger.retention import RetentionKeeper
from edged.ledger.store import LedgerError, LedgerFullError, LedgerStore
from edged.logs import get_logger
from edged.passage import GateWorker, PassageOutcome

log = get_logger("gate")

_MQTT_MARK = "mqtt_queued_seq"  # ledger export_state key: passage rows up to it are queued


class StartupError(Exception):
    """The gate cannot start as configured; the message says what to do."""


class Part:
    """A named component with start/stop callables, for the supervisor."""

    def __init__(self, name: str, start: Callable[[], None], stop: Callable[[], None]) -> None:
        self.name = name
        self._start, self._stop = start, stop

    def start(self) -> None:
        self._start()

    def stop(self) -> None:
        self._stop()


def _path(cfg: Any, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else Path(cfg.daemon.data_dir) / p


class Gate:
    """Every component of one gate and the passage pipeline that joins them."""

    def __init__(self, cfg: Any, daemon: Any) -> None:
        self.cfg = cfg
        self.daemon = daemon
        self.tz = ZoneInfo(cfg.site.timezone)
        self.worker = GateWorker()
        self.ledger: LedgerStore | None = None
        self.registry: Registry | None = None
        self.mqtt: Any = None
        self.io: Any = None
        self.camera: Any = None
        self.recognizer: Any = None
        self.rfid: Any = None
        self.tags = TagBuffer()
        self.scale: Any = None
        self.retention: RetentionKeeper | None = None
        self.control = ControlServer(Path(cfg.daemon.data_dir) / "state" / "control.sock")
        self.control.on("status", lambda req: self.health())
        self.control.on("simulate_passage", lambda req: _simulate(self, req))
        self.passages = 0
        self.last: PassageOutcome | None = None
        self._latest_frame: np.ndarray | None = None
        self._frame_lock = threading.Lock()
        self._frame_thread: threading.Thread | None = None
        self._frame_stop = threading.Event()
        self._pending_events: list[tuple[str, str, str, dict[str, Any]]] = []
        self.frame_source_factory: Callable[[], Any] | None = None
        self.on_passage: list[Callable[[PassageOutcome], None]] = []
        self.datalogger: Any = None
        self.uplink: Any = None
        self._next_forward = 0.0
        self._next_sweep = time.monotonic() + 60.0  # first sweep once the gate has settled
        # Every passage row up to _mqtt_done is in the MQTT outbox (see _mqtt_catch_up).
        self._mqtt_done = 0
        self._mqtt_saved: int | None = None  # None: mark not read yet, nothing to save
        self._mqtt_gap = False
        self._next_mqtt_check = 0.0
        self.camera_rate = RateMeter()  # frames actually delivered, for health
        self.last_read: dict[str, Any] | None = None  # last plate read, for health
        self.platform_clock_set_at: datetime | None = None

    # -- events --------------------------------------------------------------
    def event(self, kind: str, severity: str, message: str, **details: Any) -> None:
        """Event log + MQTT ``events``; kept until the ledger is open."""
        # At its own severity, so journalctl -p warning shows the events that are warnings.
        level = severity if severity in ("debug", "warning", "error", "critical") else "info"
        getattr(log, level)("event", kind=kind, severity=severity, message=message, **details)
        if self.ledger is None:
            self._pending_events.append((kind, severity, message, details))
            return
        try:
            self.ledger.append_event(kind, severity, message, **details)
        except LedgerError as exc:
            log.error("event_not_recorded", kind=kind, error=str(exc))
        if self.mqtt is not None:
            try:
                self.mqtt.publish(
                    "events",
                    {"kind": kind, "severity": severity, "message": message, **details},
                    durable=True,
                )
            except Exception as exc:  # a full outbox disk must not fail the passage that reports it
                log.error("event_not_sent", kind=kind, error=repr(exc))

    def audit(self, actor: str, action: str, details: dict[str, Any]) -> None:
        if self.ledger is not None:
            self.ledger.append_audit(actor, action, details)

    # -- components ------------------------------------------------------------
    def parts(self) -> list[tuple[Part, bool]]:
        cfg = self.cfg
        out: list[tuple[Part, bool]] = [
            (Part("ledger", self._start_ledger, self._stop_ledger), True),
            (Part("registry", self._start_registry, self._stop_registry), True),
        ]
        if cfg.mqtt.enabled:
            out.append((Part("mqtt", self._start_mqtt, self._stop_mqtt), False))
        out.append((Part("gpio", self._start_gpio, self._stop_gpio), False))
        if cfg.camera.source != "none":
            # A lane without a camera (RFID or guard only) has no recogniser either:
            # its passages come from tags, the guard and ``simulate passage --plate``.
            out += [
                (Part("recognizer", self._start_recognizer, lambda: None), False),
                (Part("camera", self._start_camera, self._stop_camera), False),
            ]
        if cfg.rfid.enabled:
            out.append((Part("rfid", self._start_rfid, self._stop_rfid), False))
        if cfg.modbus.devices or cfg.instruments:
            out.append((Part("datalogger", self._start_datalogger, self._stop_datalogger), False))
        if any(p.enabled for p in cfg.hj212.platforms):
            out.append((Part("hj212", self._start_uplink, self._stop_uplink), False))
        out.append((Part("gate", self.worker.start, self.worker.stop), True))
        out.append((Part("control", self.control.start, self.control.stop), False))
        return out

    def _start_ledger(self) -> None:
        lc = self.cfg.ledger
        self.ledger = LedgerStore(_path(self.cfg, lc.db_path), events_keep=lc.events_keep)
        self.images_dir = _path(self.cfg, lc.images_dir)
        # The keeper measures free space where images really go: a relative
        # images_dir is under data_dir, not the service's working directory.
        self.retention = RetentionKeeper(
            self.ledger, dataclasses.replace(lc, images_dir=str(self.images_dir))
        )
        pending, self._pending_events = self._pending_events, []
        for kind, severity, message, details in pending:
            self.ledger.append_event(kind, severity, message, **details)
        if self.cfg.mqtt.enabled and self.ledger.get_state(_MQTT_MARK) is None:
            # First start with the mark, before any passage can run: rows already
            # there are not known to be missing (an upgrade must not resend a year).
            self.ledger.set_state(_MQTT_MARK, str(self.ledger.heads()["passages"][0]))

    def _stop_ledger(self) -> None:
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None

    def _start_registry(self) -> None:
        rc = self.cfg.registry
        self.registry = Registry(_path(self.cfg, rc.db_path), audit=self.audit)
        if not self.registry.list_vehicles():
            for csv, kind in ((rc.seed_csv, "vehicles"), (rc.seed_blacklist_csv, "blacklist")):
                if csv:
                    report = import_csv(self.registry, csv, kind, "upsert", actor="seed")
                    log.info("registry_seeded", file=csv, kind=kind, report=str(report))

    def _stop_registry(self) -> None:
        if self.registry is not None:
            self.registry.close()
            self.registry = None

    def _start_mqtt(self) -> None:
        from edged.mqtt.client import MqttLink

        self.mqtt = MqttLink(
            self.cfg.mqtt,
            (self.cfg.site.id, self.cfg.site.gate_id),
            _path(self.cfg, "outbox.db"),
            on_event=lambda name, details: log.info("mqtt_" + name, **details),
            audit=self.audit,
        )
        self._register_commands()
        self.mqtt.start()

    def _stop_mqtt(self) -> None:
        self._save_mqtt_mark()
        if self.mqtt is not None:
            left = self.mqtt.stop(timeout=3.0)
            log.info("mqtt_stopped", left_in_outbox=left)

    def _start_gpio(self) -> None:
        from gpiozero import Device

        from drivers.gpio import GateIO
        from edged.pins import open_pin_factory

        if Device.pin_factory is None:  # the demo and tests set mock pins first
            Device.pin_factory, _ = open_pin_factory()
        self.io = GateIO(
            self.cfg.gpio,
            on_event=lambda kind, **d: self.event(kind, "warning", kind.replace("_", " "), **d),
            on_arrival=lambda: self.trigger("loop"),
        )

    def _stop_gpio(self) -> None:
        if self.io is not None:
            self.io.close()
            self.io = None

    def _start_recognizer(self) -> None:
        from edged.lpr import ModelError, PlateRecognizer

        try:
            self.recognizer = PlateRecognizer(self.cfg.lpr)
        except ModelError as exc:
            raise StartupError(str(exc)) from None

    def _start_camera(self) -> None:
        from drivers.camera import FolderSource, OpenCVSource, PiCameraSource, ResilientSource

        cc = self.cfg.camera
        if self.frame_source_factory is not None:
            src = self.frame_source_factory()
        elif cc.source == "folder":
            src = FolderSource(cc.folder, loop=True, fps=cc.fps)
        elif cc.source == "picamera2":
            src = PiCameraSource((cc.width, cc.height))
        elif cc.source == "synthetic":
            raise StartupError("camera.source = synthetic needs the demo simulator (edged demo)")
        else:
            src = OpenCVSource(cc.device)
        self.camera = ResilientSource(
            src, read_timeout=cc.read_timeout_seconds, backoff_max=cc.reconnect_max_seconds
        )
        self._frame_stop.clear()
        self._frame_thread = threading.Thread(target=self._frames, name="camera", daemon=True)
        self._frame_thread.start()

    def _frames(self) -> None:
        period = 1.0 / self.cfg.camera.fps
        reported: str | None = None
        while not self._frame_stop.is_set():
            frame = self.camera.read()
            if frame is not None:
                self.camera_rate.tick()
            with self._frame_lock:
                self._latest_frame = frame
            # An event when frames stop or come back (not on every retry of a
            # camera that opens but sends nothing): the guard must know plates
            # are not read and passages rely on RFID or on them.
            state = "ok" if frame is not None else "lost"
            if state != reported:
                if state == "lost":
                    self.event(
                        "camera_lost",
                        "warning",
                        "camera lost: plates are not read, passages fall back to RFID or the"
                        " guard; check camera power, cable and network",
                        source=self.camera.name,
                    )
                elif reported == "lost":
                    self.event(
                        "camera_restored",
                        "info",
                        "camera back: plates are read again",
                        source=self.camera.name,
                    )
                reported = state
            self._frame_stop.wait(period)

    def _stop_camera(self) -> None:
        self._frame_stop.set()
        if self._frame_thread:
            self._frame_thread.join(3)
        if self.camera is not None:
            self.camera.close()

    def _start_rfid(self) -> None:
        from drivers.rfid import open_reader

        self.rfid = open_reader(self.cfg.rfid, self.tags.add)
        self.rfid.start()

    def _stop_rfid(self) -> None:
        if self.rfid is not None:
            self.rfid.close(3.0)

    def _start_datalogger(self) -> None:
        from edged.datalogger.service import DataLogger

        self.datalogger = DataLogger(
            self.cfg.modbus,
            self.cfg.datalogger,
            self.cfg.daemon.data_dir,
            on_event=self._datalogger_event,
        )
        self.datalogger.start()
        from edged.datalogger.instruments import InstrumentInput

        self.instruments = [
            InstrumentInput(c, self.datalogger.store.add_samples) for c in self.cfg.instruments
        ]
        for inst in self.instruments:
            inst.start()

    def _datalogger_event(self, kind: str, severity: str, message: str, **d: Any) -> None:
        """Data-logger events go to the event log and MQTT; over-limits also to the
        HJ 212 platforms at once, as the data-logger guide requires."""
        self.event(kind, severity, message, **d)
        if kind == "over_limit" and self.uplink is not None and d.get("factor"):
            when = datetime.fromisoformat(d["ts"]) if d.get("ts") else datetime.now()
            self.uplink.send_alarm(
                when.replace(tzinfo=None), {d["factor"]: {"Rtd": d["value"], "Flag": "T"}}
            )

    def _stop_datalogger(self) -> None:
        for inst in getattr(self, "instruments", []):
            inst.stop()
        if self.datalogger is not None:
            self.datalogger.stop()
            self.datalogger = None

    def _start_uplink(self) -> None:
        from edged.hj212.uplink import Uplink

        hc = self.cfg.hj212
        from edged.hj212.clock import OffsetClock

        # The service may not set the system clock (no CAP_SYS_TIME): a time set
        # by the platform (1012) becomes an offset for HJ 212 times, and an event
        # tells the technician the board's clock is off.
        clock = OffsetClock(on_set=self._platform_set_clock)
        self.uplink = Uplink(hc, _path(self.cfg, hc.store), source=self.datalogger, clock=clock)
        self._stop_uplink_thread = self.uplink.start_thread()
        self.uplink.send_startup(datetime.now())
        self._forwarded: dict[str, datetime] = {}

    def _platform_set_clock(self, when: datetime) -> None:
        self.platform_clock_set_at = datetime.now()
        self.event(
            "clock_set_by_platform",
            "warning",
            "an HJ 212 platform set the time; check NTP on the board",
            platform_time=when.isoformat(),
            board_time=datetime.now().isoformat(),
        )

    def _stop_uplink(self) -> None:
        if self.uplink is not None:
            self._stop_uplink_thread()
            self.uplink = None

    def forward_data(self, now: datetime | None = None) -> int:
        """Hand closed minute/hour/day records to the HJ 212 uplink.

        The uplink's outbox keeps one row per platform, CN and DataTime, so
        handing a record over twice (after a restart) sends it once.
        """
        if self.uplink is None or self.datalogger is None:
            return 0
        now = now or datetime.now()
        n = 0
        for cn, lookback in (
            ("2051", timedelta(hours=2)),
            ("2061", timedelta(days=2)),
            ("2031", timedelta(days=3)),
        ):
            begin = self._forwarded.get(cn, now - lookback)
            for data_time, factors in self.datalogger.records(cn, begin, now):
                if cn in self._forwarded and data_time <= self._forwarded[cn]:
                    continue
                self.uplink.publish(cn, data_time, factors)
                self._forwarded[cn] = data_time
                n += 1
        return n

    # -- daemon hooks ----------------------------------------------------------
    def started(self, previous: Any) -> None:
        d = previous.as_dict()
        if previous.first_start:
            self.event("first_start", "info", "edged started for the first time")
        else:
            sev = "info" if previous.clean else "warning"
            msg = (
                "previous run stopped cleanly"
                if previous.clean
                else "previous run did not stop cleanly (power cut or crash)"
            )
            self.event("previous_stop", sev, msg, **d)
        self.event("started", "info", "edged started", pid=__import__("os").getpid())
        if self.mqtt is not None:
            try:
                self.worker.submit(self._mqtt_catch_up, wait=60)
            except Exception as exc:  # retried from tick()
                self._mqtt_gap = True
                log.error("mqtt_catch_up_failed", error=repr(exc), hint="retried in 5 s")
        self.publish_health()

    def stopping(self) -> None:
        self.event("stopping", "info", "edged stopping (SIGTERM)")

    def tick(self) -> None:
        if self.io is not None:
            self.io.check()
        mono = time.monotonic()
        if self.mqtt is not None and mono >= self._next_mqtt_check:
            self._next_mqtt_check = mono + 5.0
            if self._mqtt_gap:
                with contextlib.suppress(RuntimeError):  # worker busy: next tick
                    self.worker.submit(self._mqtt_catch_up)
            self._save_mqtt_mark()
        if self.retention is not None and mono >= self._next_sweep:
            # Images past their age or over budget are removed hourly, on the
            # gate worker: it is the ledger's one writer and records each purge.
            self._next_sweep = mono + 3600.0
            with contextlib.suppress(RuntimeError):  # worker busy: next tick
                self.worker.submit(self._sweep_images)
        if mono >= self._next_forward:
            self._next_forward = mono + 10.0
            try:
                self.forward_data()
            except Exception as exc:  # the uplink must never stop the gate
                log.error("hj212_forward_failed", error=repr(exc))

    def _sweep_images(self) -> None:
        try:
            if self.retention is not None:
                self.retention.sweep()
        except Exception as exc:  # a sweep that fails must not stop passages
            log.error("images_sweep_failed", error=repr(exc), hint="check the images folder")

    def summary(self) -> str:
        last = self.last
        tail = f", last {last.plate or '-'} {last.decision}" if last else ""
        return f"{self.passages} passages{tail}"

    def health(self) -> dict[str, Any]:
        """Everything a backend or a technician needs to judge the box at a glance.

        Each figure a component cannot give is None rather than missing, so a
        dashboard can tell "not fitted" from "not reported".
        """
        heads = self.ledger.heads() if self.ledger else {}
        mqtt_stats = self.mqtt.stats() if self.mqtt else None
        links = self.uplink.status() if self.uplink is not None else None
        last = self.last
        return {
            "uptime_s": round(time.time() - self.daemon.started_at, 1),
            "components": self.daemon.supervisor.states(),
            "passages": self.passages,
            "last_passage": None
            if last is None
            else {
                "plate": last.plate,
                "decision": last.decision,
                "seq": last.seq,
                "time": last.record.get("time"),
            },
            "last_read": self.last_read,
            "gate_queue": self.worker.depth,
            "queues": {
                "gate": self.worker.depth,
                "mqtt_outbox": mqtt_stats["backlog"] if mqtt_stats else None,
                "hj212_outbox": {lk.name: lk.backlog for lk in links}
                if links is not None
                else None,
            },
            "camera": None
            if self.camera is None
            else {
                "state": self.camera.state,
                "fps": self.camera_rate.rate(),
                "source": getattr(self.camera, "name", None),
                "error": getattr(self.camera, "last_error", "") or None,
            },
            "outbox": mqtt_stats,
            "hj212": None
            if links is None
            else {
                lk.name: {
                    "connected": lk.connected,
                    "backlog": lk.backlog,
                    "sent": lk.sent,
                    "acked": lk.acked,
                    "last_error": lk.last_error or None,
                }
                for lk in links
            },
            "datalogger": None
            if self.datalogger is None
            else {name: st["state"] for name, st in self.datalogger.stats().items()},
            "disk": disk_use(self.cfg.daemon.data_dir),
            "cpu_temp_c": cpu_temperature_c(),
            "clock": clock_status(
                self.uplink.clock if self.uplink is not None else None,
                self.platform_clock_set_at,
            ),
            "ledger_head": {k: {"seq": v[0], "hash": v[1]} for k, v in heads.items()},
        }

    def publish_health(self) -> None:
        if self.mqtt is not None:
            self.mqtt.publish("status", self.health(), retain=True, durable=False)
            if self.ledger is not None:
                heads = self.ledger.heads()
                self.mqtt.publish(
                    "ledger_head",
                    {k: {"seq": v[0], "hash": v[1]} for k, v in heads.items()},
                    retain=True,
                )

    # -- passages --------------------------------------------------------------
    def trigger(
        self,
        source: str,
        plate: str | None = None,
        tags: tuple[str, ...] = (),
        direction: str | None = None,
    ) -> None:
        """Called from a GPIO thread or the control socket: queue one passage."""
        t0 = time.monotonic()
        try:
            self.worker.submit(self.passage, t0, source, plate, tags, direction)
        except RuntimeError:
            self.event(
                "passage_dropped",
                "error",
                "gate worker overloaded; passage not handled",
                source=source,
            )

    def _burst(self) -> tuple[list[np.ndarray | None], Any]:
        """Read up to ``burst_frames`` frames and vote; stop at the first confident plate.

        Only the frame of the best read so far is kept (the snapshot's); the
        others are dropped as soon as they lose, so a burst of 1080p frames
        holds one 6 MB frame instead of five.
        """
        from edged.lpr import vote

        frames: list[np.ndarray | None] = []
        reads: list[list[Any]] = []
        tc = self.cfg.trigger
        result = vote([])
        for i in range(tc.burst_frames):
            with self._frame_lock:
                frame = self._latest_frame
            if frame is None or self.recognizer is None:
                break
            frames.append(frame)
            reads.append(self.recognizer.read(frame))
            result = vote(reads)
            for j in range(len(frames)):
                if j != result.best_frame:
                    frames[j] = None
            if (
                result.plate
                and result.valid_syntax
                and result.confidence >= tc.min_plate_confidence
            ):
                break
            if i + 1 < tc.burst_frames:
                time.sleep(tc.burst_interval_ms / 1000)
        return frames, result

    def passage(
        self,
        t0: float,
        source: str,
        plate: str | None = None,
        tags: tuple[str, ...] = (),
        direction: str | None = None,
    ) -> PassageOutcome:
        """One passage on the gate worker: identify, verify, decide, record, act, publish."""
        assert self.ledger is not None and self.registry is not None
        cfg = self.cfg
        direction = direction or ("in" if cfg.site.direction == "both" else cfg.site.direction)
        passage_id = str(uuid.uuid4())
        frames: list[np.ndarray | None] = []
        vr = None
        if plate is not None:
            plate_text, plate_conf, colour = plate, 1.0, None
        else:
            frames, vr = self._burst()
            ok = vr.plate and vr.valid_syntax
            plate_text = vr.plate if ok else None
            plate_conf = vr.confidence if ok else None
            colour = vr.colour if ok else None
        if plate is not None or (vr is not None and vr.plate):
            self.last_read = {
                "plate": plate if plate is not None else vr.plate,
                "confidence": 1.0 if plate is not None else round(vr.confidence, 4),
                "valid": True if plate is not None else bool(vr.valid_syntax),
                "source": source if plate is not None else "camera",
                "time": datetime.now(self.tz).isoformat(timespec="milliseconds"),
            }
        if self.io is not None:
            self.io.note_read()
        window = (
            self.tags.window(time.time(), cfg.rfid.window_before_s, cfg.rfid.window_after_s)
            if cfg.rfid.enabled
            else []
        )
        sightings: list[Any] = list(window) + [_Tag(t) for t in tags]

        def by_tag(tag: str) -> str | None:
            v = self.registry.find_by_tag(tag) if self.registry else None
            return v.plate if v else None

        ident = fuse(
            plate_text,
            plate_conf,
            sightings,
            by_tag,
            min_plate_confidence=cfg.trigger.min_plate_confidence,
        )
        snap = self.registry.snapshot()
        now = datetime.now(self.tz)
        read = GateRead(
            ident.plate, colour, tuple(s.epc for s in sightings), ident.confidence, passage_id
        )
        t_dec = time.perf_counter()
        decision = decide_read(read, snap, snap.alert, now, direction, cfg.policy)
        decide_ms = (time.perf_counter() - t_dec) * 1000
        approval = None
        if decision.approval_id is not None:
            approval = next(
                (a for a in self.registry.list_approvals() if a.id == decision.approval_id), None
            )
            if not self.registry.consume_approval(decision.approval_id, passage_id, now):
                decision = decide_read(
                    read, self.registry.snapshot(), snap.alert, now, direction, cfg.policy
                )
                approval = None
        vehicle = snap.vehicle(ident.plate) if ident.plate else None
        shots = self._snapshots(frames, vr, passage_id, now)
        rec = PassageRecord(
            time=now.isoformat(timespec="milliseconds"),
            site=cfg.site.id,
            gate=cfg.site.gate_id,
            direction=direction,
            decision=decision.action,
            reason_code=decision.reason,
            plate=ident.plate,
            plate_colour=colour or (vehicle.plate_colour if vehicle else None),
            vehicle_type=vehicle.vehicle_type or vehicle.vehicle_class if vehicle else None,
            vin=vehicle.vin or None if vehicle else None,
            fuel=vehicle.fuel if vehicle else None,
            emission_stage=vehicle.emission_stage if vehicle else None,
            reason_zh=decision.text_zh,
            reason_en=decision.text_en,
            snapshots=shots,
            rfid_tag=ident.tag,
            weight_kg=None,
            approval=LedgerApproval(
                approval.id, approval.applicant, approval.approver, approval.reason
            )
            if approval
            else None,
            id_source=ident.source
            if ident.source in ("plate", "rfid", "plate+rfid")
            else ("manual" if source == "manual" else "none"),
            id_confidence=round(ident.confidence, 4) if ident.plate else None,
            flags=tuple(dict.fromkeys((*ident.flags, *decision.flags))),
            event_id=passage_id,
        )
        try:
            seq, digest = self.ledger.append_passage(rec)
        except LedgerFullError:
            # Nothing may open unrecorded, so the barrier stays shut; the alarm
            # calls the guard, who handles the vehicle by hand until space returns.
            log.error(
                "passage_not_recorded",
                plate=ident.plate or "-",
                decision=decision.action,
                hint="data partition full: barrier kept shut; free space under daemon.data_dir",
            )
            if self.io is not None:
                self.io.alarm()
            raise
        relay_ms = None
        if self.io is not None:
            from edged.gate.actions import act

            # The relay switches at the start of act(); the pulse itself then
            # holds for its configured length, which is not latency.
            relay_ms = (time.monotonic() - t0) * 1000
            act(decision, self.io)
        outcome = PassageOutcome(
            seq,
            ident.plate,
            decision.action,
            decision.reason,
            decision.text_zh,
            decision.text_en,
            ident.source,
            len(frames),
            ident.confidence,
            relay_ms,
            decide_ms,
            {**rec.to_fields(), "ledger_seq": seq, "hash": digest},
        )
        self._publish_passage(seq, outcome.record)
        self.passages += 1
        self.last = outcome
        log.info(
            "passage",
            seq=seq,
            plate=ident.plate or "-",
            decision=decision.action,
            reason=decision.reason,
            text=decision.text_zh,
            source=ident.source,
            conf=round(ident.confidence, 2),
            frames=len(frames),
            ms=None if relay_ms is None else round(relay_ms, 1),
            flags=",".join(rec.flags) or None,
        )
        for cb in self.on_passage:
            cb(outcome)
        return outcome

    def _snapshots(
        self, frames: list[np.ndarray | None], vr: Any, passage_id: str, now: datetime
    ) -> tuple[LedgerSnapshot, ...]:
        if not frames or vr is None or vr.best is None or vr.best_frame is None:
            return ()
        frame = frames[vr.best_frame]
        if frame is None:
            return ()
        from edged.lpr import save_snapshots

        if self.retention is not None:
            was_allowed = self.retention.decision.allowed
            allowed = self.retention.images_allowed()  # records a change in the ledger
            if allowed.allowed != was_allowed and self.mqtt is not None:
                # once per change, not per passage: each is a durable message
                self.mqtt.publish(
                    "events",
                    {
                        "kind": "images_resumed" if allowed.allowed else "images_stopped",
                        "severity": "info" if allowed.allowed else "error",
                        "message": "snapshot images resumed"
                        if allowed.allowed
                        else "snapshots not saved: disk budget or free space; ledger rows go on",
                        "reason": allowed.reason,
                    },
                    durable=True,
                )
            if not allowed.allowed:
                return ()
        day = self.images_dir / now.strftime("%Y/%m/%d")
        try:
            shots = save_snapshots(day, frame, vr.best, stem=passage_id)
        except OSError as exc:
            self.event("images_failed", "error", "snapshot not written", error=str(exc))
            return ()
        out = []
        for s in shots:
            size = Path(s.path).stat().st_size
            if self.retention is not None:
                self.retention.note_image_written(size)
            out.append(LedgerSnapshot(str(Path(s.path).relative_to(self.images_dir)), s.sha256))
        return tuple(out)

    def manual(self, operator: str, reason: str, remote: bool = False) -> dict[str, Any]:
        """Guard or remote open: recorded like any passage, then the barrier opens."""
        assert self.ledger is not None and self.registry is not None
        now = datetime.now(self.tz)
        snap = self.registry.snapshot()
        d = manual_open(operator, reason, now, alert_level=snap.alert, remote=remote)
        rec = PassageRecord(
            time=now.isoformat(timespec="milliseconds"),
            site=self.cfg.site.id,
            gate=self.cfg.site.gate_id,
            direction=d.direction,
            decision=d.action,
            reason_code=d.reason,
            reason_zh=d.text_zh,
            reason_en=d.text_en,
            id_source="manual",
            operator=operator,
            flags=d.flags,
        )
        seq, digest = self.ledger.append_passage(rec)
        self.audit(operator, "manual_open", {"reason": reason, "remote": remote, "ledger_seq": seq})
        if self.io is not None:
            self.io.open_barrier()
        self._publish_passage(seq, {**rec.to_fields(), "ledger_seq": seq, "hash": digest})
        return {"ledger_seq": seq}

    # -- passages to MQTT ----------------------------------------------------------
    # The ledger commit and the outbox commit are two databases, and the relay
    # pulse sits between them: a kill or power cut there leaves a row that no
    # message will ever carry. So the gate keeps a mark in the ledger ("every
    # row up to here is in the outbox"), saved every few seconds and at stop,
    # and queues what lies beyond it at start and after any failed publish.
    # Rows near the mark may go out twice; consumers already dedupe on event_id.

    def _publish_passage(self, seq: int, payload: dict[str, Any]) -> None:
        """On the gate worker, after the row is on disk; never fails the passage."""
        if self.mqtt is None:
            self._mqtt_gap = True
            return
        try:
            self.mqtt.publish("passage", payload, durable=True)
        except Exception as exc:
            self._mqtt_gap = True
            log.error(
                "passage_not_queued",
                seq=seq,
                error=repr(exc),
                hint="the row is in the ledger and is sent once the outbox can be written"
                " again; check free space on the data partition",
            )
            return
        if not self._mqtt_gap and seq == self._mqtt_done + 1:
            self._mqtt_done = seq
        else:
            self._mqtt_gap = True

    def _mqtt_catch_up(self) -> int:
        """Queue the ledger rows past the mark (on the gate worker, so no passage interleaves)."""
        if self.mqtt is None or self.ledger is None:
            self._mqtt_gap = True
            return 0
        self._mqtt_gap = False
        mark = int(self.ledger.get_state(_MQTT_MARK) or 0)  # set when the ledger opened
        if self._mqtt_saved is None:
            self._mqtt_saved = mark
        since = self._mqtt_done = max(mark, self._mqtt_done)
        n = 0
        try:
            for row in self.ledger.passages(since_seq=since):
                self.mqtt.publish(
                    "passage",
                    {
                        **row.record.to_fields(),
                        "ledger_seq": row.seq,
                        "hash": row.hash,
                        "resent": True,
                    },
                    durable=True,
                )
                self._mqtt_done = row.seq
                n += 1
        except Exception:
            self._mqtt_gap = True
            raise
        if n:
            log.warning(
                "mqtt_passages_requeued", rows=n, from_seq=since + 1, to_seq=self._mqtt_done
            )
            self._save_mqtt_mark()  # a crash loop must not requeue the same rows each time
        return n

    def _save_mqtt_mark(self) -> None:
        done = self._mqtt_done
        if self.ledger is None or self._mqtt_saved is None or done == self._mqtt_saved:
            return
        try:
            self.ledger.set_state(_MQTT_MARK, str(done))
            self._mqtt_saved = done
        except LedgerError as exc:
            log.error("mqtt_mark_not_saved", error=str(exc))

    # -- commands (MQTT and control socket) --------------------------------------
    def _register_commands(self) -> None:
        m = self.mqtt
        m.on_command(
            "open",
            lambda p, actor: self.worker.submit(
                self.manual, p.get("operator", actor), p["reason"], True, wait=10
            ),
        )
        m.on_command("alert_level", lambda p, actor: self._alert(p, actor))
        m.on_command(
            "registry_upsert",
            lambda p, actor: self._lists("vehicles", "upsert", p["vehicles"], actor),
        )
        m.on_command(
            "registry_replace",
            lambda p, actor: self._lists("vehicles", "replace", p["vehicles"], actor),
        )
        m.on_command(
            "registry_delete",
            lambda p, actor: self._lists("vehicles", "delete", p["plates"], actor),
        )
        m.on_command(
            "blacklist_upsert",
            lambda p, actor: self._lists("blacklist", "upsert", p["entries"], actor),
        )
        m.on_command(
            "blacklist_delete",
            lambda p, actor: self._lists("blacklist", "delete", p["plates"], actor),
        )
        m.on_command("approval", lambda p, actor: self._approval(p, actor))
        m.on_command("resend", lambda p, actor: self._resend(p.get("from_seq", 1), p.get("to_seq")))

    def _lists(self, kind: str, mode: str, items: list[Any], actor: str) -> dict[str, Any]:
        """Registry and blacklist changes from MQTT: all-or-nothing, like a CSV import."""
        from edged.gate.csv_import import parse_items

        assert self.registry is not None
        records, errors = parse_items(kind, mode, items, self.tz)
        if errors:
            raise ValueError("; ".join(str(e) for e in errors[:20]))
        applied = self.registry.apply(kind, mode, records, actor=actor, source="mqtt")
        return {"applied": applied}

    def _approval(self, p: dict[str, Any], actor: str) -> dict[str, Any]:
        assert self.registry is not None
        a = self.registry.add_approval(
            p["plate"],
            p["reason"],
            p["applicant"],
            p["approver"],
            self._aware(p["valid_from"]),
            self._aware(p["valid_until"]),
            actor=actor,
        )
        return {"approval_id": a.id}

    def _aware(self, text: str) -> datetime:
        t = datetime.fromisoformat(text)
        return t if t.tzinfo else t.replace(tzinfo=self.tz)

    def _alert(self, p: dict[str, Any], actor: str) -> dict[str, Any]:
        assert self.registry is not None
        self.registry.set_alert_level(p["level"], actor, p.get("reason", ""))
        return {"level": p["level"]}

    def _resend(self, from_seq: int, to_seq: int | None) -> dict[str, Any]:
        assert self.ledger is not None
        n = 0
        for row in self.ledger.passages(since_seq=from_seq - 1, until_seq=to_seq):
            self.mqtt.publish(
                "passage",
                {**row.record.to_fields(), "ledger_seq": row.seq, "hash": row.hash, "resent": True},
                durable=True,
            )
            n += 1
        return {"resent": n}


class _Tag:
    """A tag given by hand (``simulate passage --rfid``), shaped like a sighting."""

    def __init__(self, epc: str) -> None:
        self.epc = epc
        self.count = 1
        self.best_rssi = None
        self.antenna = None
        self.first = self.last = time.time()


def assemble(cfg: Any, daemon: Any) -> Gate:
    """Default assembly used by ``edged run``."""
    if cfg.camera.source != "none":  # a lane without a camera loads no models (nor onnxruntime)
        from edged.lpr import check_models

        problems = check_models(cfg.lpr.model_dir)
        if problems:
            raise StartupError("model files missing or wrong:\n  " + "\n  ".join(problems))
    gate = Gate(cfg, daemon)
    for part, critical in gate.parts():
        daemon.supervisor.add(part, critical=critical)
    return gate


def _simulate(gate: Gate, req: dict[str, Any]) -> dict[str, Any]:
    plate = req.get("plate")
    if plate is not None and not isinstance(plate, str):
        raise ValueError("plate must be a string")
    tags = tuple(req.get("rfid") or ())
    out = gate.worker.submit(
        gate.passage, time.monotonic(), "simulate", plate, tags, req.get("direction"), wait=30
    )
    return {
        "seq": out.seq,
        "event_id": out.record.get("event_id"),
        "plate": out.plate,
        "decision": out.decision,
        "reason": out.reason_code,
        "text": out.reason_zh,
    }
