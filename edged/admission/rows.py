"""Rows of the registry's tables to records and back.

A row is what SQLite holds (text times with their offset, comma-joined tags,
JSON documents); a record is the frozen dataclass of ``model`` that the
policy reads. Kept apart from the tables so the conversions are pure.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from edged.admission.model import (
    AlertEntry,
    Approval,
    BlacklistEntry,
    CargoDeclaration,
    Nrmm,
    Vehicle,
    normalize_plate,
)


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def dt(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


def _tags(text: str) -> tuple[str, ...]:
    return tuple(t for t in text.split(",") if t)


def _documents(text: str | None) -> dict[str, str]:
    value = json.loads(text or "{}")
    return value if isinstance(value, dict) else {}


def machine_key(text: str) -> str:
    """The key machinery is indexed by: a registry code or plate, upper-case, no blanks."""
    return normalize_plate(text)


def vehicle(r: Any) -> Vehicle:
    return Vehicle(
        plate=r.plate,
        plate_colour=r.plate_colour,
        vin=r.vin,
        registered_on=r.registered_on,
        brand_model=r.brand_model,
        vehicle_type=r.vehicle_type,
        vehicle_class=r.vehicle_class,
        fuel=r.fuel,
        emission_stage=r.emission_stage,
        hazardous=bool(r.hazardous),
        fleet=r.fleet,
        engine_no=r.engine_no,
        cargo=r.cargo,
        category=r.category,
        rfid_tags=_tags(r.rfid_tags),
        documents=_documents(r.documents),
        valid_until=dt(r.valid_until),
        source=r.source,
        updated_at=dt(r.updated_at),
    )


def vehicle_row(v: Vehicle, now: datetime) -> dict[str, Any]:
    return {
        "plate": normalize_plate(v.plate),
        "plate_colour": v.plate_colour,
        "vin": v.vin.upper(),
        "registered_on": v.registered_on,
        "brand_model": v.brand_model,
        "vehicle_type": v.vehicle_type,
        "vehicle_class": v.vehicle_class,
        "fuel": v.fuel,
        "emission_stage": v.emission_stage,
        "hazardous": v.hazardous,
        "fleet": v.fleet,
        "engine_no": v.engine_no.upper(),
        "cargo": v.cargo,
        "category": v.category,
        "rfid_tags": ",".join(t.upper() for t in v.rfid_tags),
        "documents": json.dumps(dict(sorted(v.documents.items()))),
        "valid_until": iso(v.valid_until),
        "source": v.source,
        "updated_at": iso(v.updated_at or now),
    }


def black(r: Any) -> BlacklistEntry:
    return BlacklistEntry(
        plate=r.plate,
        reason=r.reason,
        source=r.source,
        valid_from=dt(r.valid_from),
        valid_until=dt(r.valid_until),
    )


def black_row(b: BlacklistEntry, now: datetime | None = None) -> dict[str, Any]:
    return {
        "plate": normalize_plate(b.plate),
        "reason": b.reason,
        "source": b.source,
        "valid_from": iso(b.valid_from),
        "valid_until": iso(b.valid_until),
    }


def nrmm(r: Any) -> Nrmm:
    return Nrmm(
        registry_no=r.registry_no,
        machine_type=r.machine_type,
        emission_stage=r.emission_stage,
        owner=r.owner,
        env_code=r.env_code,
        made_on=r.made_on,
        fuel=r.fuel,
        plate=r.plate,
        rfid_tags=_tags(r.rfid_tags),
        documents=_documents(r.documents),
        valid_until=dt(r.valid_until),
        source=r.source,
        updated_at=dt(r.updated_at),
    )


def nrmm_row(n: Nrmm, now: datetime) -> dict[str, Any]:
    return {
        "registry_no": machine_key(n.registry_no),
        "machine_type": n.machine_type,
        "emission_stage": n.emission_stage,
        "owner": n.owner,
        "env_code": n.env_code.strip().upper(),
        "made_on": n.made_on,
        "fuel": n.fuel,
        "plate": normalize_plate(n.plate),
        "rfid_tags": ",".join(t.upper() for t in n.rfid_tags),
        "documents": json.dumps(dict(sorted(n.documents.items()))),
        "valid_until": iso(n.valid_until),
        "source": n.source,
        "updated_at": iso(n.updated_at or now),
    }


def approval(r: Any) -> Approval:
    return Approval(
        id=r.id,
        plate=r.plate,
        reason=r.reason,
        applicant=r.applicant,
        approver=r.approver,
        valid_from=dt(r.valid_from),  # type: ignore[arg-type]
        valid_until=dt(r.valid_until),  # type: ignore[arg-type]
        created_at=dt(r.created_at),
        used_at=dt(r.used_at),
        used_by_passage=r.used_by_passage,
        direction=r.direction,
        uses=r.uses,
        used=r.used,
        ref=r.ref,
        approved_at=dt(r.approved_at),
    )


def alert(r: Any) -> AlertEntry:
    return AlertEntry(
        id=r.id,
        level=r.level,
        set_by=r.set_by,
        set_at=dt(r.set_at),  # type: ignore[arg-type]
        valid_from=dt(r.valid_from or r.set_at),  # type: ignore[arg-type]
        valid_until=dt(r.valid_until),
        reason=r.reason,
    )


def cargo(r: Any) -> CargoDeclaration:
    return CargoDeclaration(
        id=r.id,
        plate=r.plate,
        cargo=r.cargo,
        valid_from=dt(r.valid_from),  # type: ignore[arg-type]
        valid_until=dt(r.valid_until),  # type: ignore[arg-type]
        declared_by=r.declared_by,
        declared_at=dt(r.declared_at),  # type: ignore[arg-type]
        uses=r.uses,
        used=r.used,
        tag=r.tag or None,
    )
