"""One passage of one lane, from trigger to published ledger row, on the lane's worker.

Identify (a burst of frames voted, the RFID tags seen around the trigger),
verify (the registry), decide (the pure policy), record, act, publish. The
order is chosen for the inspector: the ledger row is written (and fsynced)
*before* the barrier opens, so an open barrier always has its row. Frames
are read until the vote is sure rather than always a full burst, which
keeps trigger-to-relay time within the regulation's budget on a Pi.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from edged import sitetime
from edged.admission.actions import act
from edged.admission.identity import fuse
from edged.admission.model import GateRead
from edged.admission.policy import Resolved, decide_read, resolve
from edged.lane.row_fields import goods_flags, missing, trip_fields, vehicle_fields
from edged.lane.snapshots import save_passage_images, save_pushed_images
from edged.ledger.record import Approval as LedgerApproval
from edged.ledger.record import PassageRecord
from edged.ledger.store import LedgerFullError
from edged.logs import get_logger

log = get_logger("gate")


@dataclass
class PassageOutcome:
    """What one passage produced, for logs, tests and benchmarks."""

    seq: int | None
    plate: str | None
    decision: str
    reason_code: str
    reason_zh: str
    reason_en: str
    source: str
    frames: int
    confidence: float
    trigger_to_relay_ms: float | None
    decide_ms: float
    record: dict[str, Any] = field(default_factory=dict)
    lane: str = ""
    direction: str = ""
    # trigger -> the first frame taken after it: the camera's share of trigger_to_relay_ms
    frame_wait_ms: float | None = None


class _Tag:
    """A tag given by hand (``simulate passage --rfid``), shaped like a sighting."""

    def __init__(self, epc: str) -> None:
        self.epc = epc
        self.count = 1
        self.best_rssi = None
        self.antenna = None
        self.first = self.last = time.time()


@dataclass(frozen=True)
class Trigger:
    """Why a passage runs: its source, what was given by hand, and the direction if known."""

    source: str  # loop | simulate | test | ...
    plate: str | None = None
    tags: tuple[str, ...] = ()
    direction: str | None = None  # None: the lane's rule decides
    operator: str | None = None  # who asked (simulations)
    t0: float = field(default_factory=time.monotonic)
    pushed: Any = None  # a plate camera's pushed read (drivers.camera.push.Push), images included


class PassagePipeline:
    """The passage of one lane; the lane holds the devices, ``box`` the shared stores."""

    def __init__(self, lane: Any, box: Any) -> None:
        self.lane = lane
        self.box = box

    # -- identify ------------------------------------------------------------------
    def burst(
        self, since: float | None = None
    ) -> tuple[list[np.ndarray | None], Any, float | None]:
        """Read up to ``burst_frames`` frames and vote; stop at the first confident plate.

        Returns the frames kept, the vote and when the first frame was in hand,
        decoded (``time.monotonic()``; None without one): the wait for it is
        the camera's share of the passage's latency, not the recogniser's.

        Every frame is one the camera took after ``since`` (the trigger's
        ``time.monotonic()``) and after the burst's previous frame: never a
        picture of the lane from before the vehicle arrived, never one frame
        read twice. Only the frame of the best read so far is kept (the
        snapshot's), or the first while nothing is read; the others are dropped
        as soon as they lose, so a burst of 1080p frames holds one 6 MB frame
        instead of five.
        """
        from edged.lpr import vote

        tc = self.lane.cfg.trigger
        camera, recognizer = self.lane.camera, self.box.recognizer
        frames: list[np.ndarray | None] = []
        reads: list[list[Any]] = []
        result = vote([])
        since = time.monotonic() if since is None else since
        first_at: float | None = None
        for i in range(tc.burst_frames):
            got = camera.frame_after(since) if camera is not None else None
            frame = None if got is None else got[0]
            if frame is None or recognizer is None or recognizer.ready is False:
                break
            since = got[1]
            # in hand: a snapshot camera's picture counts from when it was asked for,
            # but the passage waited for its answer too
            first_at = time.monotonic() if first_at is None else first_at
            frames.append(frame)
            reads.append(recognizer.read(frame))
            result = vote(reads)
            # no plate in any frame yet: the first shows the vehicle (an unread passage's
            # only picture, for the guard and the inspector)
            keep = result.best_frame if result.best_frame is not None else 0
            for j in range(len(frames)):
                if j != keep:
                    frames[j] = None
            if (
                result.plate
                and result.valid_syntax
                and result.confidence >= tc.min_plate_confidence
            ):
                break
            if i + 1 < tc.burst_frames:
                time.sleep(tc.burst_interval_ms / 1000)
        return frames, result, first_at

    def _identify(self, trig: Trigger, passage_id: str, snap: Any) -> tuple[Any, ...]:
        """Plate (read or given), matched with the registry and fused with the tags seen.

        An unsure read whose doubtful characters, and only those, spell exactly one
        registered plate, or agree with the plate of the truck's tag, identifies the
        vehicle (:func:`edged.lpr.identify`); the row keeps the raw read and how.
        """
        lane = self.lane
        frames: list[np.ndarray | None] = []
        vr = None
        matched = None
        first_at: float | None = None
        sightings: list[Any] = []
        cards: dict[str, None] = {}  # waybill cards seen, in order, once each
        for s in [*lane.tag_window(), *(_Tag(t) for t in trig.tags)]:
            if snap.is_waybill(s.epc):
                cards[s.epc] = None
            else:
                sightings.append(s)
        waybills = tuple(cards)

        def by_tag(tag: str) -> str | None:
            """The tag's vehicle's plate; a machine's plate, else its registry code."""
            v = snap.vehicle_by_tag(tag)
            if v is not None:
                return v.plate
            m = snap.machine_by_tag(tag)
            return (m.plate or m.registry_no) if m is not None else None

        push_flags: tuple[str, ...] = ()
        if trig.plate is not None:
            plate_text, plate_conf, colour = trig.plate, 1.0, None
        elif trig.pushed is not None:  # the camera's read, voted with ours of its image
            from edged.lane.pushed import read_pushed

            frames, vr, plate_text, plate_conf, colour, push_flags = read_pushed(
                trig.pushed, self.box, lane
            )
        else:
            frames, vr, first_at = self.burst(trig.t0)
            ok = vr.plate and vr.valid_syntax
            plate_text = vr.plate if ok else None
            plate_conf = vr.confidence if ok else None
            colour = vr.colour if ok else None
            sure = lane.cfg.trigger.min_plate_confidence
            if vr.plate and (not ok or vr.confidence < sure):
                from edged.lpr import identify_read

                tagged = {p for p in (by_tag(s.epc) for s in sightings) if p}
                matched = identify_read(vr, snap.vehicles, tagged, sure=sure)
                if matched.identified is not None:
                    plate_text, plate_conf = matched.identified, sure
                    colour = colour or vr.colour
                else:  # unsure and matching no one vehicle: unread, the tag or guard decides
                    plate_text = plate_conf = None
        if trig.pushed is None and (trig.plate is not None or (vr is not None and vr.plate)):
            lane.last_read = {
                "plate": trig.plate if trig.plate is not None else vr.plate,
                "confidence": 1.0 if trig.plate is not None else round(vr.confidence, 4),
                "valid": True if trig.plate is not None else bool(vr.valid_syntax),
                "source": trig.source if trig.plate is not None else "camera",
                "time": sitetime.now().isoformat(timespec="milliseconds"),
            }
        if lane.io is not None:
            lane.io.note_read()
        ident = fuse(
            plate_text,
            plate_conf,
            sightings,
            by_tag,
            min_plate_confidence=lane.cfg.trigger.min_plate_confidence,
        )
        read = GateRead(
            ident.plate,
            colour,
            tuple(s.epc for s in sightings),
            ident.confidence,
            passage_id,
            waybills,
        )
        wait_ms = None if first_at is None else max(0.0, (first_at - trig.t0) * 1000)
        return ident, read, (frames, vr, wait_ms), matched, push_flags

    def _direction(self, trig: Trigger, plate: str | None) -> tuple[str, tuple[str, ...]]:
        """The passage's direction; a two-way lane that cannot tell says ``unknown``."""
        if trig.direction is not None:
            return trig.direction, ()
        cfg = self.lane.cfg
        if cfg.direction != "both":
            return cfg.direction, ()
        if cfg.both_rule == "presence" and plate is not None:
            last = self.box.ledger.last_direction(plate)
            return ("out" if last == "in" else "in"), ()
        return "unknown", ("direction_unknown",)

    # -- the passage -------------------------------------------------------------------
    def run(self, trig: Trigger) -> PassageOutcome:
        """One passage: identify, verify, decide, record, act, publish."""
        box, lane = self.box, self.lane
        ledger, registry = box.ledger, box.registry
        assert ledger is not None and registry is not None
        passage_id = str(uuid.uuid4())
        snap = registry.snapshot()
        ident, read, (frames, vr, wait_ms), matched, push_flags = self._identify(
            trig, passage_id, snap
        )
        direction, dir_flags = self._direction(trig, ident.plate)
        id_flags = (
            (f"identified_by_{matched.identified_by}",) if matched and matched.identified else ()
        )
        now = sitetime.now()
        alert = snap.alert_at(now)
        t_dec = time.perf_counter()
        policy_direction = direction if direction in ("in", "out") else "in"
        found = resolve(read, snap, now, policy_direction)
        decision = decide_read(read, snap, now, policy_direction, box.policy, resolved=found)
        decide_ms = (time.perf_counter() - t_dec) * 1000
        approval = None
        if decision.approval_id is not None:
            approval = registry.get_approval(decision.approval_id)
            if not registry.consume_approval(decision.approval_id, passage_id, now):
                # used up by another lane meanwhile: decide again without it
                snap = registry.snapshot()
                found = resolve(read, snap, now, policy_direction)
                decision = decide_read(
                    read, snap, now, policy_direction, box.policy, resolved=found
                )
                approval = None
        simulated = trig.source == "simulate"
        kg, weight_why = lane.weigh()
        if trig.pushed is not None:
            shots = save_pushed_images(box, lane.name, trig.pushed, passage_id, now)
        else:
            shots = save_passage_images(box, lane.name, frames, vr, passage_id, now)
        rec = self._record(
            trig,
            now,
            snap,
            found,
            ident,
            read,
            direction,
            decision,
            approval,
            kg,
            {"weight_kg": weight_why} if weight_why else {},
            shots,
            flags=(
                *dir_flags,
                *id_flags,
                *push_flags,
                # a lane without a weighbridge weighs nothing: not a weighing that failed
                *(("weight_unsettled",) if weight_why and lane.scale_part is not None else ()),
            ),
            alert=alert,
            passage_id=passage_id,
            raw_plate=vr.plate if vr is not None else None,
            identified_by=_identified_by(ident, matched),
        )
        try:
            seq, digest = ledger.append_passage(rec)
        except LedgerFullError:
            # Nothing may open unrecorded, so the barrier stays shut; the alarm
            # calls the guard, who handles the vehicle by hand until space returns.
            log.error(
                "passage_not_recorded",
                lane=lane.name,
                plate=ident.plate or "-",
                decision=decision.action,
                hint="data partition full: barrier kept shut; free space under daemon.data_dir",
            )
            if lane.io is not None:
                lane.io.alarm()
            raise
        if simulated:
            box.sink.audit(
                trig.operator or "unknown",
                "simulate_passage",
                {"lane": lane.name, "ledger_seq": seq, "plate": ident.plate},
            )
        relay_ms = None
        if lane.io is not None and (not simulated or box.simulation_moves_barrier):
            # The relay switches at the start of act(); the pulse itself then
            # holds for its configured length, which is not latency.
            relay_ms = (time.monotonic() - trig.t0) * 1000
            act(decision, lane.io)
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
            lane.name,
            direction,
            frame_wait_ms=wait_ms,
        )
        box.publish_passage(seq, outcome.record)
        lane.note_passage(outcome)
        log.info(
            "passage",
            lane=lane.name,
            seq=seq,
            direction=direction,
            plate=ident.plate or "-",
            decision=decision.action,
            reason=decision.reason,
            text=decision.text_zh,
            source=ident.source,
            conf=round(ident.confidence, 2),
            frames=len(frames),
            ms=None if relay_ms is None else round(relay_ms, 1),
            camera_ms=None if wait_ms is None else round(wait_ms, 1),
            kg=rec.weight_kg,
            net_t=rec.net_t,
            cargo=rec.cargo,
            flags=",".join(rec.flags) or None,
        )
        if frames and hasattr(box.recognizer, "release"):
            # after the relay, not before it: the passage does not wait for this
            box.recognizer.release()
        return outcome

    def _record(
        self,
        trig: Trigger,
        now: datetime,
        snap: Any,
        found: Resolved,
        ident: Any,
        read: Any,
        direction: str,
        decision: Any,
        approval: Any,
        kg: int | None,
        why: dict[str, str],
        shots: tuple[Any, ...],
        *,
        flags: tuple[str, ...],
        alert: str,
        passage_id: str,
        raw_plate: str | None,
        identified_by: str | None,
    ) -> PassageRecord:
        """The row: the decision, the vehicle's national fields, its weight and trip."""
        box, lane = self.box, self.lane
        simulated = trig.source == "simulate"
        vehicle = found.vehicle
        when = now.isoformat(timespec="milliseconds")
        entry = box.trips.open_entry(ident.plate) if direction == "out" else None
        if not shots:
            why.setdefault(
                "snapshots",
                "the camera pushed no image"
                if trig.pushed is not None
                else "no camera on this lane"
                if lane.camera is None
                else "the camera gave no frame",
            )
        plate = ident.plate
        if found.machine is not None and not found.machine.plate:
            plate = None  # known by its registry code (machinery.registry_no)
            why.setdefault("plate", "a machine without a plate: see its registry code")
        fields: dict[str, Any] = {
            **vehicle_fields(vehicle, found.machine),
            **trip_fields(direction, entry, when, kg),
            "direction": direction,
            "plate": plate,
            "weight_kg": kg,
            "cargo": passage_cargo(
                box.registry, snap, vehicle, ident.plate, now, decision, passage_id, read.waybills
            ),
            "snapshots": shots,
        }
        if read.plate_colour:
            fields["plate_colour"] = read.plate_colour
        if direction == "out" and entry is None and ident.plate:
            why.setdefault("net_t", "no entry of this vehicle on record")
        return PassageRecord(
            time=when,
            site=box.site.id,
            gate=box.site.gate_id,
            lane=lane.name,
            decision=decision.action,
            reason_code=decision.reason,
            reason_zh=decision.text_zh,
            reason_en=decision.text_en,
            rfid_tag=ident.tag,
            approval=_approval(approval),
            id_source="simulated" if simulated else _id_source(ident.source),
            id_confidence=round(ident.confidence, 4) if ident.plate else None,
            flags=tuple(
                dict.fromkeys((*ident.flags, *decision.flags, *flags, *goods_flags(vehicle)))
            ),
            operator=trig.operator if simulated else None,
            event_id=passage_id,
            raw_plate=raw_plate,
            identified_by=identified_by,
            alert_level=alert,
            missing=missing(fields, why),
            video=lane.video_ref(passage_id, now),
            **fields,
        )


def passage_cargo(
    registry: Any,
    snap: Any,
    vehicle: Any,
    plate: str | None,
    now: datetime,
    decision: Any,
    passage_id: str,
    tags: Sequence[str] = (),
) -> str | None:
    """运输货物名称: what the plant declared for this passage (for a waybill card seen in
    its RFID window, else for its plate), else the vehicle's usual cargo. A declaration
    good for a number of passages is used by an allowed one."""
    declared = snap.cargo_declaration_for_tags(tags, now) or snap.cargo_declaration_for(plate, now)
    if (
        declared is not None
        and declared.uses is not None
        and decision.action == "allow"
        and not registry.consume_cargo(declared.id, passage_id)
    ):
        declared = None  # used up by another lane meanwhile
    if declared is not None:
        return declared.cargo
    return (vehicle.cargo or None) if vehicle is not None else None


def _approval(a: Any) -> LedgerApproval | None:
    if a is None:
        return None
    at = getattr(a, "approved_at", None) or a.created_at
    return LedgerApproval(
        str(a.id),
        a.applicant,
        a.approver,
        a.reason,
        a.valid_until.isoformat() if a.valid_until else None,
        at.isoformat() if at else None,
        a.direction,
        a.ref,
    )


def _identified_by(ident: Any, matched: Any) -> str | None:
    """How the recorded plate was reached: the read itself, the registry or the tag."""
    if matched is not None and matched.identified is not None:
        return matched.identified_by
    if ident.plate is None:
        return None
    return {"plate": "exact", "plate+rfid": "exact", "rfid": "rfid_tag"}.get(ident.source)


def _id_source(source: str) -> str:
    return source if source in ("plate", "rfid", "plate+rfid") else "none"
