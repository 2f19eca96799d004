"""A read the camera kept while it could not reach the box, recorded late as the ledger asks.

A Zhenshi camera that cannot reach the box keeps its reads and sends them
once it can (``isoffline``). Each is a vehicle at the gate that the box never
saw with a plate: an inspector comparing video with the ledger would find it
missing. So each becomes a row, without moving the barrier:

- where the lane recorded a passage without a plate around the camera's time
  (a loop-triggered passage while the camera was away, or a guard's open that
  named no plate), that row is corrected with the camera's plate: one vehicle,
  one passage, the correction chained and audited like a guard's;
- otherwise a new row at the camera's time, ``hold`` with reason
  ``offline_read``: the box did not decide and did not move the barrier (the
  camera's own offline list may have). The row says what the rules would have
  said (``offline_policy_allow`` / ``_deny`` / ``_hold``, the rules' reason code
  as a flag where they would not have let it in, and both in its text), so a
  refused vehicle that came in while the box was unreachable stands out.

Both carry the flag ``offline_read`` and the camera's pictures. A row keeps the
camera's time as the camera gave it; where the camera's clock is known to be
off (:mod:`edged.push.clock`) it is also flagged ``camera_clock_off``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from edged import sitetime
from edged.admission.model import GateRead
from edged.admission.policy import decide_read, resolve
from edged.lane.passage import passage_cargo
from edged.lane.row_fields import goods_flags, missing, trip_fields, vehicle_fields
from edged.lane.snapshots import save_pushed_images
from edged.ledger.corrections import corrected
from edged.ledger.record import PassageRecord
from edged.ledger.zh import DECISION
from edged.logs import get_logger
from edged.push.clock import TOLERANCE_S, describe

log = get_logger("gate")

FLAG = "offline_read"
CLOCK_FLAG = "camera_clock_off"
REASON = "offline_read"
#: who the audit log names for a correction made from a camera's offline read
ACTOR = "edged"


def unread_row_near(rows: Iterable[Any], when: datetime, window_s: float, taken: set[int]) -> Any:
    """The stored row without a plate nearest ``when`` within ``window_s``, or None. Pure.

    ``rows`` are stored rows of the lane; ``taken`` the seqs already corrected (a row
    another read named, or a guard fixed, is left alone). A row is unread when nothing
    identified its vehicle (``none``) or a guard opened without naming it (``manual``);
    a machine without a plate, known by its tag, is identified and not taken.
    """
    best, gap = None, timedelta(seconds=window_s)
    for row in rows:
        rec = row.record
        if (
            rec.plate is not None
            or rec.correction_of is not None
            or rec.id_source not in ("none", "manual")
            or row.seq in taken
        ):
            continue
        off = abs(datetime.fromisoformat(rec.time) - when)
        if off <= gap:
            best, gap = row, off
    return best


def clock_note(shot_at: datetime, now: datetime, offset_s: float | None) -> str | None:
    """Why the camera's time of a late read is doubtful, or None. Pure.

    ``offset_s``: the camera's clock against the box's at its last live read (None:
    never measured). A read stamped in the box's future is off whatever was measured.
    """
    if offset_s is not None and abs(offset_s) > TOLERANCE_S:
        return f"the camera's clock was {describe(offset_s)} at its last live read"
    ahead = (shot_at - now).total_seconds()
    if ahead > TOLERANCE_S:
        return "the camera's time is " + describe(ahead, "the box's clock")
    return None


def offline_passage(
    box: Any, lane: Any, push: Any, clock_offset_s: float | None = None
) -> dict[str, Any]:
    """Record ``push`` (an offline read, stored): a correction of an unread row, or a row.

    The row keeps the camera's time as the camera gave it; a clock known to be off
    (``clock_offset_s``, camera minus box) is flagged ``camera_clock_off``, and the
    unread row is looked for at the box's time the read corresponds to."""
    ledger = box.ledger
    assert ledger is not None and box.registry is not None
    now = sitetime.now()
    when = sitetime.local(push.shot_at) if push.shot_at is not None else now
    doubt = clock_note(when, now, clock_offset_s)
    window = lane.cfg.camera.offline_join_s
    if window > 0 and push.plate:
        box_time = when - timedelta(seconds=clock_offset_s or 0.0)
        rows = ledger.passages(
            start=(box_time - timedelta(seconds=window)).timestamp(),
            end=(box_time + timedelta(seconds=window)).timestamp() + 0.001,
            lane=lane.name,
        )
        row = unread_row_near(rows, box_time, window, ledger.corrected_seqs())
        if row is not None:
            return _join(box, lane, push, row, when)
    return _late_row(box, lane, push, when, doubt)


def _join(box: Any, lane: Any, push: Any, row: Any, when: datetime) -> dict[str, Any]:
    """The unread row corrected with the camera's plate and pictures."""
    ledger, registry = box.ledger, box.registry
    changes = {"plate": push.plate, **({"plate_colour": push.colour} if push.colour else {})}
    rec = corrected(row.record, changes, lambda p: vehicle_fields(registry.snapshot().vehicle(p)))
    shots = save_pushed_images(box, lane.name, push, rec.event_id, when)
    rec = dataclasses.replace(
        rec,
        id_source="plate",  # the camera's read names the vehicle now
        id_confidence=push.confidence,
        identified_by="exact",
        snapshots=(*rec.snapshots, *shots),
        flags=tuple(dict.fromkeys((*rec.flags, FLAG))),
        missing={k: v for k, v in rec.missing.items() if k not in ("plate", "snapshots")}
        if shots
        else rec.missing,
    )
    reason = (
        f"the camera's read {push.record_id or '-'} of"
        f" {sitetime.local(when).isoformat(timespec='seconds')}, kept while it could not reach"
        " the box"
    )
    seq, digest = ledger.append_correction(row.seq, rec, ACTOR, reason)
    fields = {**rec.to_fields(), "correction_of": row.seq, "operator": ACTOR}
    box.publish_passage(seq, {**fields, "ledger_seq": seq, "hash": digest})
    log.info(
        "offline_read_joined",
        lane=lane.name,
        plate=push.plate,
        shot_at=when.isoformat(timespec="seconds"),
        seq=seq,
        correction_of=row.seq,
    )
    return {"outcome": "offline_joined", "ledger_seq": seq, "correction_of": row.seq}


def _late_row(
    box: Any, lane: Any, push: Any, when: datetime, doubt: str | None = None
) -> dict[str, Any]:
    """A new row at the camera's time: what the rules would have said, the box not acting."""
    ledger, registry = box.ledger, box.registry
    snap = registry.snapshot()
    passage_id = str(uuid.uuid4())
    cfg_dir = lane.cfg.direction
    direction = cfg_dir if cfg_dir != "both" else "unknown"
    read = GateRead(push.plate, push.colour, (), push.confidence or 0.0, passage_id)
    found = resolve(read, snap, when, direction if direction != "unknown" else "in")
    would = decide_read(
        read, snap, when, direction if direction != "unknown" else "in", box.policy, resolved=found
    )
    vehicle = found.vehicle
    stamp = when.isoformat(timespec="milliseconds")
    entry = box.trips.open_entry(push.plate) if direction == "out" else None
    if entry is not None and datetime.fromisoformat(entry.time) > when:
        entry = None  # the vehicle came in again after this read: not this trip
    shots = save_pushed_images(box, lane.name, push, passage_id, when)
    fields: dict[str, Any] = {
        **vehicle_fields(vehicle, found.machine),
        **trip_fields(direction, entry, stamp, None),
        "direction": direction,
        "plate": push.plate,
        # what was declared, without using up a declaration good for a number of passages:
        # the box let nothing in
        "cargo": passage_cargo(
            registry,
            snap,
            vehicle,
            push.plate,
            when,
            dataclasses.replace(would, action="hold"),
            passage_id,
        ),
        "snapshots": shots,
    }
    if push.colour:
        fields["plate_colour"] = push.colour
    why = {
        "weight_kg": "read while the camera could not reach the box: not weighed",
        "snapshots": "the camera pushed no image",
    }
    if direction == "out" and entry is None and push.plate:
        why["net_t"] = "no entry of this vehicle on record"
    rec = PassageRecord(
        event_id=passage_id,
        time=stamp,
        site=box.site.id,
        gate=box.site.gate_id,
        lane=lane.name,
        decision="hold",
        reason_code=REASON,
        reason_zh=f"相机离线期间识别，事后补录，本机未控制道闸；按规则应{DECISION[would.action]}：{would.text_zh}"
        + ("；时间为相机时间，相机时钟与本机不符" if doubt else ""),
        reason_en=(
            "read by the camera while it could not reach the box, recorded late; the box did"
            f" not control the barrier; the rules would have said {would.action}: {would.text_en}"
            + (f"; the time is the camera's, and {doubt}" if doubt else "")
        ),
        id_source="plate" if push.plate else "none",
        id_confidence=push.confidence if push.plate else None,
        identified_by="exact" if push.plate else None,
        flags=tuple(
            dict.fromkeys(
                (
                    FLAG,
                    f"offline_policy_{would.action}",
                    *((would.reason,) if would.action != "allow" else ()),  # why not
                    *found.flags,
                    *would.flags,
                    *goods_flags(vehicle),
                    *(("direction_unknown",) if direction == "unknown" else ()),
                    *((CLOCK_FLAG,) if doubt else ()),
                )
            )
        ),
        alert_level=snap.alert_at(when),
        missing=missing(fields, why),
        video=lane.video_ref(None, when),  # the recorder's window; the box made no clip
        **fields,
    )
    seq, digest = ledger.append_passage(rec)
    box.publish_passage(seq, {**rec.to_fields(), "ledger_seq": seq, "hash": digest})
    log.info(
        "offline_read_recorded",
        lane=lane.name,
        plate=push.plate or "-",
        shot_at=stamp,
        seq=seq,
        rules=would.action,
        reason=would.reason,
    )
    return {"outcome": "offline_record", "ledger_seq": seq}
