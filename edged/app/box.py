"""The running box: its lanes and shared parts, and the daemon's hooks into them.

:mod:`edged.app.wiring` builds a :class:`Box`; the daemon calls its hooks
(``started``, ``tick``, ``publish_health``, ``stopping``). Each hook only
delegates: passages live in the lanes, forwarding in the feeds, health
figures in each part's ``status()``; this class keeps the clocks that say
when each periodic job is due.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edged import sitetime
from edged.app.health import clock_status, cpu_temperature_c, disk_use
from edged.lane.passage import Trigger
from edged.lane.worker import GateWorker
from edged.logs import get_logger

log = get_logger("gate")

MQTT_CHECK_S = 5.0  # how often a gap in the MQTT feed is looked for, and its mark saved
FORWARD_S = 1.0  # how often the HJ 212 feed looks at what is due (real-time data, records)
SWEEP_S = 3600.0  # how often images past their age or over budget are removed
ALERT_CHECK_S = 1.0  # how often the alert level in force is looked at (a schedule may change it)


@dataclass
class Box:
    """One box: shared parts, lanes, feeds and the control socket."""

    cfg: Any
    supervisor: Any
    ctx: Any  # LaneContext: sink, ledger, registry, recogniser, passage feed
    lanes: list[Any]
    mqtt: Any = None  # MqttService
    datalogger: Any = None  # DataLoggerService
    uplink: Any = None  # UplinkService
    record_feed: Any = None  # RecordFeed
    control: Any = None  # ControlServer
    receiver: Any = None  # PushReceiver, where a lane's camera pushes its reads
    started_at: float = field(default_factory=time.time)
    housekeeping: GateWorker = field(default_factory=lambda: GateWorker("housekeeping"))
    _due: dict[str, float] = field(default_factory=dict)
    _alert: str | None = None  # the alert level last announced
    _forward_error: str | None = None  # the HJ 212 feed's last failure, logged once

    # -- shortcuts ------------------------------------------------------------------
    @property
    def sink(self) -> Any:
        return self.ctx.sink

    @property
    def tz(self) -> Any:
        return self.ctx.tz

    @property
    def registry(self) -> Any:
        return self.ctx.registry

    @property
    def ledger(self) -> Any:
        return self.ctx.ledger

    @property
    def passage_feed(self) -> Any:
        return self.ctx.passage_feed

    def lane(self, name: str | None) -> Any:
        """A lane by name; without a name, the only lane (an error on a multi-lane box)."""
        if name is None:
            if len(self.lanes) == 1:
                return self.lanes[0]
            raise ValueError(
                f"lane: this box has lanes {', '.join(ln.name for ln in self.lanes)}; say which"
            )
        for lane in self.lanes:
            if lane.name == name:
                return lane
        raise ValueError(
            f"lane: no lane {name!r}; lanes: {', '.join(ln.name for ln in self.lanes)}"
        )

    # -- daemon hooks ---------------------------------------------------------------
    def started(self, previous: Any) -> None:
        d = previous.as_dict()
        if previous.first_start:
            self.sink.event("first_start", "info", "edged started for the first time")
        else:
            sev = "info" if previous.clean else "warning"
            msg = (
                "previous run stopped cleanly"
                if previous.clean
                else "previous run did not stop cleanly (power cut or crash)"
            )
            self.sink.event("previous_stop", sev, msg, **d)
        self.sink.event("started", "info", "edged started", pid=os.getpid())
        if self.passage_feed is not None:
            try:
                self.housekeeping.submit(self.passage_feed.catch_up, wait=60)
            except Exception as exc:  # retried from tick()
                log.error("mqtt_catch_up_failed", error=repr(exc), hint="retried in 5 s")
        self._due["sweep"] = time.monotonic() + 60.0  # first sweep once the box has settled
        self.check_alert_level()
        self.publish_in_plant(self.ctx.trips.status())
        self.publish_device_key()
        self.publish_health()

    def stopping(self) -> None:
        self.sink.event("stopping", "info", "edged stopping (SIGTERM)")

    def _is_due(self, job: str, every: float, now: float) -> bool:
        if now < self._due.get(job, 0.0):
            return False
        self._due[job] = now + every
        return True

    def tick(self) -> None:
        """From the main loop, twice a second: watchdogs, and periodic jobs when due."""
        for lane in self.lanes:
            lane.tick()
        now = time.monotonic()
        feed = self.passage_feed
        if feed is not None and self._is_due("mqtt", MQTT_CHECK_S, now):
            if feed.gap or feed.behind:
                with contextlib.suppress(RuntimeError):  # worker busy: next time
                    self.housekeeping.submit(feed.catch_up)
            feed.save_mark()
        if self._is_due("sweep", SWEEP_S, now):
            with contextlib.suppress(RuntimeError):
                self.housekeeping.submit(self.ctx.ledger_service.sweep_images)
            if self.receiver is not None:
                with contextlib.suppress(RuntimeError):
                    self.housekeeping.submit(self.receiver.sweep)
            if self.ctx.clips is not None:
                with contextlib.suppress(RuntimeError):
                    self.housekeeping.submit(self.ctx.clips.sweep)
        if self.record_feed is not None and self._is_due("forward", FORWARD_S, now):
            self.forward_records()
        if self._is_due("alert", ALERT_CHECK_S, now):
            self.check_alert_level()
        if self._is_due("heads", self.cfg.ledger.head_publish_s, now):
            self.publish_heads()
        if self._is_due("attest", self.cfg.ledger.attest_s, now):
            with contextlib.suppress(RuntimeError):
                self.housekeeping.submit(self.attest)

    def forward_records(self) -> None:
        """The HJ 212 feed's round; a failure is logged when it starts or changes, not every
        second it lasts, and its end is logged too."""
        try:
            self.record_feed.forward()
        except Exception as exc:  # the uplink must never stop the gate
            if repr(exc) != self._forward_error:
                log.error(
                    "hj212_forward_failed",
                    error=repr(exc),
                    hint="retried every second; logged again when the error changes",
                )
            self._forward_error = repr(exc)
            return
        if self._forward_error is not None:
            log.info("hj212_forward_recovered", error=self._forward_error)
            self._forward_error = None

    def check_alert_level(self, now: datetime | None = None) -> str | None:
        """Announce the alert level in force when it changes (set now or by its schedule)."""
        registry = self.registry
        if registry is None:
            return None
        level = registry.snapshot().alert_at(now or sitetime.now())
        if level != self._alert:
            was, self._alert = self._alert, level
            if was is not None:
                self.sink.event(
                    "alert_level_changed",
                    "warning" if level != "none" else "info",
                    f"heavy-pollution alert level now {level} (was {was})",
                    level=level,
                    was=was,
                )
            self._publish("alert_level", {"level": level, "was": was}, retain=True)
        return level

    def publish_device_key(self) -> None:
        """The public key that signs attestations and exports, retained: what an inspector
        passes to ``edged export verify --key``."""
        key = self.ctx.ledger_service.device_key
        if key is not None:
            self._publish(
                "device_key",
                {"public_key": key.public_hex, "fingerprint": key.fingerprint, "alg": "ed25519"},
                retain=True,
            )

    def publish_in_plant(self, status: dict[str, Any]) -> None:
        """The vehicles in the plant now, retained, whenever an entry or exit changes them."""
        self._publish("in_plant", status, retain=True)

    def _publish(self, kind: str, payload: dict[str, Any], **kwargs: Any) -> None:
        if self.mqtt is None or not self.mqtt.running:
            return
        try:
            self.mqtt.publish(kind, payload, **kwargs)
        except Exception as exc:  # a full outbox must not stop what reported it
            log.error("not_published", kind=kind, error=repr(exc))

    def summary(self) -> str:
        return "; ".join(lane.summary() for lane in self.lanes)

    # -- health -------------------------------------------------------------------------
    def _memory(self) -> dict[str, Any]:
        """Resident memory now, and how often the plate models' working memory went
        back to the system (``lpr.release_above_mb``; None without a recogniser)."""
        from edged.lpr.service import resident_mb

        rec = self.ctx.recognizer
        return {
            "resident_mb": round(resident_mb(), 1),
            "model_memory_releases": getattr(rec, "releases", None),
        }

    def health(self) -> dict[str, Any]:
        """Everything a backend or a technician needs to judge the box at a glance.

        Each part reports its own figures; this only collects them. A figure a
        part cannot give is None rather than missing, so a dashboard can tell
        "not fitted" from "not reported".
        """
        site = self.cfg.site
        mqtt = self.mqtt.status() if self.mqtt is not None else None
        links = self.uplink.status() if self.uplink is not None else None
        return {
            "site": {
                "id": site.id,
                "name": site.name,
                "gate": site.gate_id,
                "gate_name": site.gate_name,
            },
            "time": datetime.now(self.tz).isoformat(timespec="seconds"),
            "uptime_s": round(time.time() - self.started_at, 1),
            "components": self.supervisor.states(),
            "passages": sum(lane.passages for lane in self.lanes),
            "lanes": {lane.name: lane.status() for lane in self.lanes},
            "queues": {
                "lanes": {lane.name: lane.worker.depth for lane in self.lanes},
                "mqtt_outbox": mqtt["backlog"] if mqtt else None,
                "hj212_outbox": {k: v["backlog"] for k, v in links.items()} if links else None,
            },
            "outbox": mqtt,
            "hj212": links,
            "datalogger": self.datalogger.status() if self.datalogger is not None else None,
            "meters": self.datalogger.meters() if self.datalogger is not None else None,
            "receiver": self.receiver.status() if self.receiver is not None else None,
            "clips": self.ctx.clips.status() if self.ctx.clips is not None else None,
            "disk": disk_use(self.cfg.daemon.data_dir),
            "cpu_temp_c": cpu_temperature_c(),
            "memory": self._memory(),
            "clock": clock_status(
                self.uplink.uplink.clock
                if self.uplink is not None and self.uplink.uplink
                else None,
                self.uplink.clock_set_at if self.uplink is not None else None,
            ),
            "alert_level": self._alert,
            "in_plant": self.ctx.trips.status(),
            **self.ctx.ledger_service.status(),
        }

    def publish_health(self) -> None:
        if self.mqtt is not None and self.mqtt.link is not None:
            self.mqtt.publish("status", self.health(), retain=True, durable=False)

    def publish_heads(self) -> None:
        """Chain heads (seq + hash), retained, for a backend to compare with what it holds."""
        ledger = self.ledger
        if self.mqtt is None or self.mqtt.link is None or ledger is None:
            return
        heads = ledger.heads()
        self.mqtt.publish(
            "ledger_head", {k: {"seq": v[0], "hash": v[1]} for k, v in heads.items()}, retain=True
        )

    def attest(self) -> None:
        """Sign the chain heads and publish the attestation for the backend's archive."""
        service = self.ctx.ledger_service
        try:
            att = service.attest(self.cfg.site.id, self.cfg.site.gate_id)
        except Exception as exc:  # a failed signature never stops passages
            log.error("attestation_failed", error=repr(exc), hint="check the ledger and its key")
            return
        if att is None or self.mqtt is None:
            return
        from edged.ledger.attest import message

        try:
            self.mqtt.publish(
                "attestation", message(att, service.device_key.public_hex), durable=True
            )
        except Exception as exc:
            log.error("attestation_not_sent", n=att.n, error=repr(exc))

    # -- control socket ---------------------------------------------------------------
    def simulate(self, req: dict[str, Any]) -> dict[str, Any]:
        """``edged simulate passage``: only where allowed, marked, audited, barrier untouched."""
        if not self.cfg.daemon.allow_simulation:
            raise ValueError(
                "simulated passages are off on this box: set [daemon] allow_simulation = true"
                " (commissioning and tests only; every simulated row is marked and audited)"
            )
        plate = req.get("plate")
        if plate is not None and not isinstance(plate, str):
            raise ValueError("plate must be a string")
        direction = req.get("direction")
        if direction not in (None, "in", "out"):
            raise ValueError(f"direction: expected in or out, found {direction!r}")
        peer = req.get("peer") or {}
        who = f"uid:{peer['uid']}" if "uid" in peer else "unknown"
        lane = self.lane(req.get("lane"))
        trig = Trigger("simulate", plate, tuple(req.get("rfid") or ()), direction, operator=who)
        out = lane.run(trig, wait=30)
        return {
            "seq": out.seq,
            "event_id": out.record.get("event_id"),
            "lane": out.lane,
            "direction": out.direction,
            "plate": out.plate,
            "decision": out.decision,
            "reason": out.reason_code,
            "text": out.reason_zh,
        }
