"""What a passage row says about the vehicle, its trip and its weight. Pure.

The national table (HJ 1321-2023) asks every row for registration date, VIN,
engine number, emission stage (as ``0``–``6``, ``d``, ``x``), fuel, fleet,
cargo, load and the document photos; inspectors pull rows at random and a
blank field is a finding. So every field is filled from the registry, the
weighbridge and the vehicle's entry row, and where one truly cannot be, the
row says why (``missing``) instead of leaving an unexplained null.
"""

from __future__ import annotations

from typing import Any

from edged.ledger.trips import Entry, close


def vehicle_fields(vehicle: Any, machine: Any = None) -> dict[str, Any]:
    """The registry's side of the row: the vehicle's (or machine's) national fields."""
    if machine is not None:
        return {
            "category": "machinery",
            "vehicle_type": machine.machine_type or None,
            "fuel": machine.fuel or None,
            "emission_stage": machine.emission_stage,
            "stage_code": machine.national_stage,
            "documents": _documents(machine),
            "machinery": {
                "registry_no": machine.registry_no,
                "env_code": machine.env_code or None,
                "made_on": machine.made_on or None,
                "owner": machine.owner or None,
                "machine_type": machine.machine_type or None,
                "plate": machine.plate or None,
            },
        }
    if vehicle is None:
        return {}
    return {
        "category": vehicle.category or "transport",
        "plate_colour": vehicle.plate_colour,
        "vehicle_type": vehicle.vehicle_type or vehicle.vehicle_class or None,
        "vin": vehicle.vin or None,
        "fuel": vehicle.fuel,
        "emission_stage": vehicle.emission_stage,
        "stage_code": vehicle.national_stage,
        "registered_on": vehicle.registered_on or None,
        "engine_no": vehicle.engine_no or None,
        "fleet": vehicle.fleet or None,
        "documents": _documents(vehicle),
    }


def _documents(holder: Any) -> dict[str, str]:
    return dict(holder.documents)


def trip_fields(direction: str, entry: Entry | None, time: str, kg: int | None) -> dict[str, Any]:
    """An exit row's link to its entry: entry row and time, dwell, load carried (t)."""
    if direction != "out" or entry is None:
        return {}
    trip = close(entry, time, kg)
    return {
        "entry_seq": entry.seq,
        "entry_time": entry.time,
        "dwell_s": trip.dwell_s,
        "net_t": trip.net_t,
    }


#: Fields of the national table a row explains when it leaves them empty.
EXPLAINED = (
    "plate",
    "vin",
    "registered_on",
    "engine_no",
    "emission_stage",
    "fleet",
    "cargo",
    "weight_kg",
    "net_t",
    "documents",
    "snapshots",
)


#: Fields of the transport-vehicle table that the machinery table does not have.
VEHICLE_ONLY = ("vin", "registered_on", "engine_no", "fleet")


def missing(fields: dict[str, Any], why: dict[str, str]) -> dict[str, str]:
    """For each explained field left empty, the reason: the specific one given, or the general."""
    vehicle_known = fields.get("category") is not None
    out: dict[str, str] = {}
    for name in EXPLAINED:
        value = fields.get(name)
        if value not in (None, "", [], {}, ()):
            continue
        if name in why:
            out[name] = why[name]
        elif name == "plate":
            out[name] = "plate not read and no known tag"
        elif name == "net_t":
            out[name] = (
                "known when the vehicle leaves" if fields.get("direction") == "in" else "not a trip"
            )
        elif not vehicle_known:
            out[name] = "vehicle not in the registry"
        elif fields.get("category") == "machinery" and name in VEHICLE_ONLY:
            out[name] = "not a field of the machinery table"
        elif name == "documents":
            out[name] = "no document photos in the registry entry"
        elif name == "cargo":
            out[name] = "no cargo declared or registered for this vehicle"
        elif name == "emission_stage" and fields.get("stage_code") == "d":
            continue  # new energy: no stage, coded d
        else:
            out[name] = "not in the registry entry"
    return out


def goods_flags(vehicle: Any) -> tuple[str, ...]:
    """``hazardous`` on every row of a hazardous-goods vehicle (危险货物运输车辆): reports list
    them, admitted or not."""
    return ("hazardous",) if vehicle is not None and vehicle.hazardous else ()
