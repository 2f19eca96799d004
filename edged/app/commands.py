"""The signed MQTT commands of a box, as one table of small handlers.

``edged.mqtt`` has already checked the signature, the freshness and the
parameters against each command's schema; a handler here only does the
work and returns the reply's body. Anything that moves a barrier runs on
that lane's worker; list changes are all-or-nothing, like a CSV import.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

Handler = Callable[[dict[str, Any], str], dict[str, Any]]


def _result(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


_COUNT = {"type": "integer", "minimum": 0}

#: The ``result`` of each handler's reply, for the published contract
#: (``edged mqtt schemas``); the contract test checks real replies against it.
RESULT_SCHEMAS: dict[str, dict[str, Any]] = {
    "open": _result(
        ledger_seq={"type": "integer", "minimum": 1},
        lane={"type": "string"},
        direction={"type": "string", "enum": ["in", "out", "unknown"]},
    ),
    "alert_level": _result(
        level={"type": "string", "description": "the level set"},
        valid_from={"type": "string", "description": "when it starts"},
        valid_until={"type": ["string", "null"], "description": "when it ends; null: replaced"},
        in_force={"type": "string", "description": "the level in force now, after the change"},
    ),
    **{
        name: _result(applied=_COUNT)
        for name in (
            "registry_upsert",
            "registry_replace",
            "registry_delete",
            "blacklist_upsert",
            "blacklist_delete",
            "plant_vehicles_upsert",
            "plant_vehicles_delete",
            "machinery_upsert",
            "machinery_delete",
        )
    },
    "cargo": _result(
        cargo_id={"type": "integer", "description": "the gate's own number for the declaration"},
        plate={"type": ["string", "null"], "description": "null for a waybill card's"},
        tag={"type": ["string", "null"], "description": "the waybill card's EPC, or null"},
        uses={"type": ["integer", "null"], "description": "passages it covers; null: all"},
    ),
    "approval": _result(
        approval_id={"type": "integer", "description": "the gate's own number for it"},
        ref={"type": ["string", "null"], "description": "the backend's approval_id"},
        direction={"type": "string", "enum": ["in", "out", "any"]},
        uses={"type": "integer", "minimum": 1},
        approved_at={"type": ["string", "null"], "description": "when it was approved"},
    ),
    "resend": _result(resent=_COUNT),
    "correct": _result(
        correction_seq={"type": "integer", "minimum": 1, "description": "the correcting row"},
        correction_of={"type": "integer", "minimum": 1, "description": "the row it corrects"},
    ),
}


def command_table(box: Any) -> dict[str, Handler]:
    """Name → handler(params, actor) for every command the box answers."""

    def lists(kind: str, mode: str, key: str) -> Handler:
        def handler(p: dict[str, Any], actor: str) -> dict[str, Any]:
            from edged.admission.csv_import import parse_items

            records, errors = parse_items(kind, mode, p[key], box.tz)
            if errors:
                raise ValueError("; ".join(str(e) for e in errors[:20]))
            applied = box.registry.apply(kind, mode, records, actor=actor, source="mqtt")
            return {"applied": applied}

        return handler

    def open_(p: dict[str, Any], actor: str) -> dict[str, Any]:
        lane = box.lane(p.get("lane"))
        return lane.manual(
            operator=actor,
            reason=p["reason"],
            remote=True,
            plate=p.get("plate"),
            direction=p.get("direction"),
            hold_s=p.get("hold_s"),
            cargo=p.get("cargo"),
        )

    def alert_level(p: dict[str, Any], actor: str) -> dict[str, Any]:
        e = box.registry.set_alert_level(
            p["level"],
            actor,
            p.get("reason", ""),
            valid_from=_aware(p["valid_from"], box.tz) if "valid_from" in p else None,
            valid_until=_aware(p["valid_until"], box.tz) if "valid_until" in p else None,
        )
        return {
            "level": e.level,
            "valid_from": e.valid_from.isoformat(),
            "valid_until": e.valid_until.isoformat() if e.valid_until else None,
            "in_force": box.registry.alert_state().level,
        }

    def cargo(p: dict[str, Any], actor: str) -> dict[str, Any]:
        d = box.registry.declare_cargo(
            p.get("plate", ""),
            p["cargo"],
            _aware(p["valid_until"], box.tz),
            actor,
            valid_from=_aware(p["valid_from"], box.tz) if "valid_from" in p else None,
            uses=p.get("uses"),
            tag=p.get("tag"),
        )
        return {"cargo_id": d.id, "plate": d.plate or None, "tag": d.tag, "uses": d.uses}

    def approval(p: dict[str, Any], actor: str) -> dict[str, Any]:
        a = box.registry.add_approval(
            p["plate"],
            p["reason"],
            p["applicant"],
            p["approver"],
            _aware(p["valid_from"], box.tz),
            _aware(p["valid_until"], box.tz),
            actor=actor,
            direction=p.get("direction", "any"),
            uses=p.get("uses", 1),
            ref=p.get("approval_id"),
            approved_at=_aware(p["approved_at"], box.tz) if "approved_at" in p else None,
            allow_self_approve=box.ctx.policy.approval_self_approve,
        )
        return {
            "approval_id": a.id,
            "ref": a.ref,
            "direction": a.direction,
            "uses": a.uses,
            "approved_at": a.approved_at.isoformat() if a.approved_at else None,
        }

    def resend(p: dict[str, Any], actor: str) -> dict[str, Any]:
        if box.passage_feed is None:
            raise ValueError("MQTT is not enabled on this box")
        return {"resent": box.passage_feed.resend(p.get("from_seq", 1), p.get("to_seq"))}

    def correct(p: dict[str, Any], actor: str) -> dict[str, Any]:
        """A misread or a wrong field, corrected by a new row; the corrected row is published."""
        from edged.lane.row_fields import vehicle_fields
        from edged.ledger.corrections import CorrectionError, corrected

        ledger = box.ledger
        seq = p["seq"]
        original = ledger.current(seq)
        if original is None:
            raise ValueError(f"seq: no original passage {seq} to correct")
        changes = {
            k: p[k] for k in ("plate", "plate_colour", "direction", "cargo", "weight_kg") if k in p
        }
        try:
            rec = corrected(
                original.record,
                changes,
                lambda plate: vehicle_fields(box.registry.snapshot().vehicle(plate)),
            )
        except CorrectionError as exc:
            raise ValueError(str(exc)) from None
        new_seq, digest = ledger.append_correction(seq, rec, actor, p["reason"])
        fields = {**rec.to_fields(), "correction_of": seq, "operator": actor}
        box.ctx.publish_passage(new_seq, {**fields, "ledger_seq": new_seq, "hash": digest})
        return {"correction_seq": new_seq, "correction_of": seq}

    return {
        "correct": correct,
        "open": open_,
        "alert_level": alert_level,
        "registry_upsert": lists("vehicles", "upsert", "vehicles"),
        "registry_replace": lists("vehicles", "replace", "vehicles"),
        "registry_delete": lists("vehicles", "delete", "plates"),
        "blacklist_upsert": lists("blacklist", "upsert", "entries"),
        "blacklist_delete": lists("blacklist", "delete", "plates"),
        "plant_vehicles_upsert": lists("plant_vehicles", "upsert", "vehicles"),
        "plant_vehicles_delete": lists("plant_vehicles", "delete", "plates"),
        "machinery_upsert": lists("nrmm", "upsert", "machines"),
        "machinery_delete": lists("nrmm", "delete", "registry_nos"),
        "cargo": cargo,
        "approval": approval,
        "resend": resend,
    }


def _aware(text: str, tz: Any) -> datetime:
    t = datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=tz)
