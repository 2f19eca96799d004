"""Reads no live passage took, recorded after the fact as the ledger asks.

Inspectors check that every vehicle in the video has a ledger row. Two kinds
of plate read reach the box without a passage of their own:

- **offline reads**: a Zhenshi camera that cannot reach the box keeps its
  reads and sends them once it can (``isoffline``), sometimes hours later;
- **unjoined reads**: on a lane with a ground loop, a pushed read that no
  loop passage took (the truck stopped short of the loop, reached it after
  the join window, or the loop is broken).

Each becomes a row, without moving the barrier:

- where the lane recorded a passage without a plate near the read's time
  (a loop passage while the camera was away or read too early, a guard's
  open that named no plate), that row is corrected with the camera's plate:
  one vehicle, one passage, the correction chained and audited like a
  guard's;
- otherwise a new row at the read's time, ``hold`` with reason
  ``offline_read`` or ``unjoined_read``: the box did not decide and did not
  move the barrier (a camera's own offline list may have). The row says what
  the rules would have said (``would_allow`` / ``would_deny`` /
  ``would_hold``, the rules' reason code as a flag where they would not have
  let it in, and both in its text), so a refused vehicle that may have come
  in stands out.

Both carry the kind's flag and the camera's pictures. An offline row keeps
the camera's time as the camera gave it; where the camera's clock is known
to be off (:mod:`edged.push.clock`) it is also flagged ``camera_clock_off``.
An unjoined read is timed by the box's clock when it arrived.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
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

CLOCK_FLAG = "camera_clock_off"
#: who the audit log names for a correction made from a camera's read
ACTOR = "edged"


@dataclass(frozen=True)
class Late:
    """A kind of read recorded after the fact, and how its rows and log lines say so."""

    name: str  # the flag, the reason code of a row of its own, the log lines' stem
    outcome: str  # what the push spool notes: <outcome>_record or <outcome>_joined
    zh: str  # reason_zh of a row of its own, before what the rules would have said
    en: str  # reason_en, likewise
    not_weighed: str  # why the row has no weight
    why: str  # why a correction was made, after the read's id and time


OFFLINE = Late(
    "offline_read",
    "offline",
    "相机离线期间识别，事后补录，本机未控制道闸",
    "read by the camera while it could not reach the box, recorded late; the box did not"
    " control the barrier",
    "read while the camera could not reach the box: not weighed",
    "kept while it could not reach the box",
)
UNJOINED = Late(
    "unjoined_read",
    "unjoined",
    "相机识别车牌，但无车辆经过地感，本机未控制道闸",
    "the camera read the plate but no vehicle came over the loop; the box did not control"
    " the barrier",
    "no vehicle came over the loop: not weighed",
    "which no loop passage took",
)


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
    now = sitetime.now()
    when = sitetime.local(push.shot_at) if push.shot_at is not None else now
    doubt = (
        clock_note(when, now, clock_offset_s)
        if push.shot_at is not None
        else "the camera gave no time: the row is timed when the read arrived"
    )
    box_time = when - timedelta(seconds=clock_offset_s or 0.0)
    return record_late(box, lane, push, OFFLINE, when, box_time, doubt)


def unjoined_read(box: Any, lane: Any, push: Any, arrived: datetime) -> dict[str, Any]:
    """Record a pushed read no loop passage took, timed by its arrival at the box."""
    return record_late(box, lane, push, UNJOINED, arrived, arrived)


def record_late(
    box: Any,
    lane: Any,
    push: Any,
    kind: Late,
    when: datetime,
    box_time: datetime,
    doubt: str | None = None,
) -> dict[str, Any]:
    """The unread row near ``box_time`` corrected with ``push``, else a row of its own."""
    ledger = box.ledger
    assert ledger is not None and box.registry is not None
    window = lane.cfg.camera.offline_join_s
    if window > 0 and push.plate:
        rows = ledger.passages(
            start=(box_time - timedelta(seconds=window)).timestamp(),
            end=(box_time + timedelta(seconds=window)).timestamp() + 0.001,
            lane=lane.name,
        )
        row = unread_row_near(rows, box_time, window, ledger.corrected_seqs())
        if row is not None:
            return _join(box, lane, push, kind, row, when)
    return _late_row(box, lane, push, kind, when, doubt)


def _join(box: Any, lane: Any, push: Any, kind: Late, row: Any, when: datetime) -> dict[str, Any]:
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
        flags=tuple(dict.fromkeys((*rec.flags, kind.name))),
        missing={k: v for k, v in rec.missing.items() if k not in ("plate", "snapshots")}
        if shots
        else rec.missing,
    )
    reason = (
        f"the camera's read {push.record_id or '-'} of"
        f" {sitetime.local(when).isoformat(timespec='seconds')}, {kind.why}"
    )
    seq, digest = ledger.append_correction(row.seq, rec, ACTOR, reason)
    fields = {**rec.to_fields(), "correction_of": row.seq, "operator": ACTOR}
    box.publish_passage(seq, {**fields, "ledger_seq": seq, "hash": digest})
    log.info(
        f"{kind.name}_joined",
        lane=lane.name,
        plate=push.plate,
        shot_at=when.isoformat(timespec="seconds"),
        seq=seq,
        correction_of=row.seq,
    )
    return {"outcome": f"{kind.outcome}_joined", "ledger_seq": seq, "correction_of": row.seq}


def _late_row(
    box: Any, lane: Any, push: Any, kind: Late, when: datetime, doubt: str | None = None
) -> dict[str, Any]:
    """A new row at the camera's time: what the rules would have said, the box not acting."""
    ledger, registry = box.ledger, box.registry
    snap = registry.snapshot()
    passage_id = str(uuid.uuid4())
    cfg_dir = lane.cfg.direction
    direction = cfg_dir if cfg_dir != "both" else "unknown"
    read = GateRead(push.plate, push.colour, (), push.confidence or 0.0, passage_id)
    rules_direction = direction if direction != "unknown" else "in"  # as a passage decides
    found = resolve(read, snap, when, rules_direction)
    would = decide_read(read, snap, when, rules_direction, box.policy, resolved=found)
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
        "weight_kg": kind.not_weighed,
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
        reason_code=kind.name,
        reason_zh=f"{kind.zh}；按规则应{DECISION[would.action]}：{would.text_zh}"
        + ("；时间为相机时间，相机时钟与本机不符" if doubt else ""),
        reason_en=(
            f"{kind.en}; the rules would have said {would.action}: {would.text_en}"
            + (f"; the time is the camera's, and {doubt}" if doubt else "")
        ),
        id_source="plate" if push.plate else "none",
        id_confidence=push.confidence if push.plate else None,
        identified_by="exact" if push.plate else None,
        flags=tuple(
            dict.fromkeys(
                (
                    kind.name,
                    f"would_{would.action}",
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
        f"{kind.name}_recorded",
        lane=lane.name,
        plate=push.plate or "-",
        shot_at=stamp,
        seq=seq,
        rules=would.action,
        reason=would.reason,
    )
    return {"outcome": f"{kind.outcome}_record", "ledger_seq": seq}
