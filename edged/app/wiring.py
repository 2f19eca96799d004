"""Build a box from its config: every part, connected, in start order. Only wiring.

Start order is dependency order: the ledger (events and rows need it), the
registry, MQTT, the recogniser, each lane's devices and worker, the data
logger, the HJ 212 uplink, the control socket. The supervisor stops them in
reverse. What each part does lives with the part; this module only decides
which parts a config asks for and hands each what it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edged import sitetime
from edged.admission.service import RegistryService
from edged.app.box import Box
from edged.app.commands import command_table
from edged.app.control import ControlServer
from edged.app.events import EventSink
from edged.app.pins import PinSource
from edged.app.supervisor import Part
from edged.datalogger.service import DataLoggerService
from edged.hj212.record_feed import RecordFeed
from edged.hj212.service import UplinkService
from edged.lane.context import LaneContext
from edged.lane.lane import Lane
from edged.ledger.service import LedgerService
from edged.lpr.service import RecognizerService, check_model_files
from edged.mqtt.passage_feed import PassageFeed
from edged.mqtt.service import MqttService
from edged.push.service import PushReceiver
from edged.video.store import ClipStore


class StartupError(Exception):
    """The box cannot start as configured; the message says what to do."""


def build(cfg: Any, supervisor: Any, pin_factory: Any = None) -> Box:
    """Every part the config asks for, registered with ``supervisor`` in start order."""
    cameras = any(lane.needs_recognizer for lane in cfg.lanes)
    if cameras:  # a box without cameras loads no models (nor onnxruntime)
        problems = check_model_files(cfg.lpr)
        if problems:
            raise StartupError("model files missing or wrong:\n  " + "\n  ".join(problems))
    data_dir = Path(cfg.daemon.data_dir)
    sitetime.set_zone(cfg.site.timezone)  # ledger, MQTT and logs agree on the offset
    sink = EventSink()
    ctx = LaneContext(
        site=cfg.site,
        tz=ZoneInfo(cfg.site.timezone),
        policy=cfg.policy,
        sink=sink,
        ledger_service=LedgerService(cfg.ledger, data_dir, sink),
        registry_service=RegistryService(cfg.registry, data_dir, sink),
        recognizer=RecognizerService(cfg.lpr) if cameras else None,
        simulation_moves_barrier=cfg.daemon.simulation_moves_barrier,
    )
    if any(lane.video.clip for lane in cfg.lanes):
        ctx.clips = ClipStore(cfg.clips, data_dir, sink)
    pins = PinSource(pin_factory)
    lanes = [Lane(lane_cfg, ctx, pins) for lane_cfg in cfg.lanes]
    by_name = {lane.name: lane for lane in lanes}
    for lane in lanes:
        for kind, owner in lane.cfg.shares.items():
            lane.share(kind, by_name[owner])
    box = Box(cfg, supervisor, ctx, lanes)
    ctx.on_in_plant = box.publish_in_plant

    parts: list[tuple[Any, bool]] = [(ctx.ledger_service, True), (ctx.registry_service, True)]
    if ctx.clips is not None:
        parts.append((ctx.clips, False))
    if cfg.mqtt.enabled:
        feed = PassageFeed(ctx.ledger_service, None)
        box.mqtt = MqttService(
            cfg.mqtt,
            (cfg.site.id, cfg.site.gate_id),
            data_dir / "outbox.db",
            audit=sink.audit,
            record_event=sink.record,
            commands=command_table(box),
            on_stop=feed.save_mark,
        )
        feed.mqtt = box.mqtt
        ctx.passage_feed = feed
        sink.attach_mqtt(box.mqtt)
        parts += [(box.mqtt, False), (Part("passage_feed", feed.start, lambda: None), False)]
    if ctx.recognizer is not None:
        parts.append((ctx.recognizer, False))
    for lane in lanes:
        parts += lane.parts()
    if any(lane.pushes_reads for lane in lanes):  # one listening socket for every lane
        box.receiver = PushReceiver(cfg.receiver, data_dir, sink)
        for lane in lanes:
            if lane.pushes_reads:
                box.receiver.add(lane)
        parts.append((box.receiver, False))
    parts.append((Part("housekeeping", box.housekeeping.start, box.housekeeping.stop), False))
    _data_logger(cfg, box, data_dir, parts)
    box.control = ControlServer(data_dir / "state" / "control.sock")
    box.control.on("status", lambda req: box.health())
    box.control.on("simulate_passage", box.simulate)
    parts.append((box.control, False))
    for part, critical in parts:
        supervisor.add(part, critical=critical)
    return box


def _data_logger(cfg: Any, box: Box, data_dir: Path, parts: list[tuple[Any, bool]]) -> None:
    """The data logger and the HJ 212 uplink, where the config has meters or platforms."""
    sink = box.sink
    platforms = any(p.enabled for p in cfg.hj212.platforms)
    if cfg.modbus.devices or cfg.instruments:

        def on_event(kind: str, severity: str, message: str, **details: Any) -> None:
            sink.event(kind, severity, message, **details)
            if box.record_feed is not None:
                box.record_feed.alarm(kind, details)

        box.datalogger = DataLoggerService(
            cfg.modbus, cfg.datalogger, cfg.instruments, data_dir, on_event, box.tz
        )
        parts.append((box.datalogger, False))
    if platforms:
        units = {
            p.factor: p.unit for d in cfg.modbus.devices for p in d.points if p.factor and p.unit
        }
        store = Path(cfg.hj212.store)
        box.uplink = UplinkService(
            cfg.hj212,
            store if store.is_absolute() else data_dir / store,
            box.datalogger,
            box.tz,
            sink,
            units,
        )
        parts.append((box.uplink, False))
        if box.datalogger is not None:
            box.record_feed = RecordFeed(box.datalogger, box.uplink, box.tz)
