"""A guard's or a remote open (人工/远程抬杆), recorded like any passage before the barrier moves.

An unexplained open is what an inspector flags as evasion: the row names
who opened and why, carries the vehicle's national fields when the guard
names the plate, and the audit chain keeps the open beside it.
"""

from __future__ import annotations

import uuid
from typing import Any

from edged import sitetime
from edged.admission.policy import manual_open
from edged.lane.passage import passage_cargo
from edged.lane.row_fields import goods_flags, missing, trip_fields, vehicle_fields
from edged.ledger.record import PassageRecord


def manual_passage(
    box: Any,
    lane: Any,
    operator: str,
    reason: str,
    remote: bool = False,
    plate: str | None = None,
    direction: str | None = None,
    hold_s: float | None = None,
    cargo: str | None = None,
) -> dict[str, Any]:
    """Guard or remote open: recorded like any passage, then the barrier opens.

    ``cargo``: what the guard saw on the truck (运输货物名称); without it the row takes
    the declared or usual cargo as a read passage would."""
    ledger, registry = box.ledger, box.registry
    assert ledger is not None and registry is not None
    now = sitetime.now()
    direction = direction or (lane.cfg.direction if lane.cfg.direction != "both" else "unknown")
    snap = registry.snapshot()
    alert = snap.alert_at(now)
    passage_id = str(uuid.uuid4())
    d = manual_open(
        operator,
        reason,
        now,
        plate=plate,
        direction=direction,
        alert_level=alert,
        remote=remote,
    )
    when = now.isoformat(timespec="milliseconds")
    vehicle = snap.vehicle(plate) if plate else None
    machine = snap.machine(plate) if plate and vehicle is None else None
    entry = box.trips.open_entry(plate) if direction == "out" else None
    fields: dict[str, Any] = {
        **vehicle_fields(vehicle, machine),
        **trip_fields(direction, entry, when, None),
        "direction": direction,
        "plate": plate,
        "cargo": cargo.strip()
        if cargo and cargo.strip()
        else passage_cargo(registry, snap, vehicle, plate, now, d, passage_id),
    }
    why = {"weight_kg": "opened by hand: not weighed", "snapshots": "opened by hand"}
    rec = PassageRecord(
        event_id=passage_id,
        time=when,
        site=box.site.id,
        gate=box.site.gate_id,
        lane=lane.name,
        decision=d.action,
        reason_code=d.reason,
        reason_zh=d.text_zh,
        reason_en=d.text_en,
        id_source="manual",
        operator=operator,
        flags=(*d.flags, *goods_flags(vehicle)),
        alert_level=alert,
        missing=missing(fields, why),
        video=lane.video_ref(None, now),  # the recorder's window; no clip of a manual open
        **fields,
    )
    seq, digest = ledger.append_passage(rec)
    box.sink.audit(
        operator,
        "manual_open",
        {
            "lane": lane.name,
            "reason": reason,
            "remote": remote,
            "ledger_seq": seq,
            "plate": plate,
            "direction": direction,
            "hold_s": hold_s,
            "cargo": cargo,
        },
    )
    if lane.io is not None:
        lane.io.open_barrier(hold_s=hold_s)
    box.publish_passage(seq, {**rec.to_fields(), "ledger_seq": seq, "hash": digest})
    return {"ledger_seq": seq, "lane": lane.name, "direction": direction}
