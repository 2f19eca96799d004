"""The registry as the decision path reads it: an immutable view, dict lookups only.

Decisions never touch SQLite: they read a ``Snapshot``, so a 50,000-vehicle
registry still decides in microseconds and a reader thread never waits for a
writer. Everything time-dependent (blacklist windows, approvals, the alert
level, cargo declarations) is answered for the ``now`` the caller passes, so
a snapshot built before a scheduled alert starts still gives the right level.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from edged import sitetime
from edged.admission.alerts import AlertState, entry_at, level_at
from edged.admission.cargo import declaration_for
from edged.admission.model import (
    AlertEntry,
    Approval,
    BlacklistEntry,
    CargoDeclaration,
    Nrmm,
    Vehicle,
    normalize_plate,
)


@dataclass(frozen=True)
class Snapshot:
    """Immutable view of the registry for the decision path."""

    vehicles: Mapping[str, Vehicle]
    tags: Mapping[str, str]  # RFID tag id -> plate
    blacklist: Mapping[str, BlacklistEntry]
    approvals: Mapping[str, tuple[Approval, ...]]  # unused approvals by plate
    alerts: tuple[AlertEntry, ...] = ()  # entries that can still be in force
    machines: Mapping[str, Nrmm] = field(default_factory=dict)  # registry code -> machine
    machine_plates: Mapping[str, str] = field(default_factory=dict)  # plate -> registry code
    machine_tags: Mapping[str, str] = field(default_factory=dict)  # RFID tag -> registry code
    cargo: Mapping[str, tuple[CargoDeclaration, ...]] = field(default_factory=dict)
    cargo_tags: Mapping[str, tuple[CargoDeclaration, ...]] = field(default_factory=dict)

    # -- vehicles and lists ---------------------------------------------------------

    def vehicle(self, plate: str | None) -> Vehicle | None:
        return None if plate is None else self.vehicles.get(plate)

    def vehicle_by_tag(self, tag: str) -> Vehicle | None:
        plate = self.tags.get(tag.upper())
        return None if plate is None else self.vehicles.get(plate)

    def blacklisted(self, plate: str | None, now: datetime) -> BlacklistEntry | None:
        entry = None if plate is None else self.blacklist.get(plate)
        return entry if entry is not None and entry.active(now) else None

    def approval_for(
        self, plate: str | None, now: datetime, direction: str | None = None
    ) -> Approval | None:
        """The usable approval that expires first: it is the one most at risk of lapsing."""
        if plate is None:
            return None
        usable = [a for a in self.approvals.get(plate, ()) if a.usable(now, direction)]
        return min(usable, key=lambda a: (a.valid_until, a.id)) if usable else None

    # -- machinery ----------------------------------------------------------------------

    def machine(self, plate_or_code: str | None) -> Nrmm | None:
        """A machine by its registry code (登记编码) or its plate."""
        if not plate_or_code:
            return None
        key = normalize_plate(plate_or_code)
        found = self.machines.get(key)
        if found is None and key in self.machine_plates:
            found = self.machines.get(self.machine_plates[key])
        return found

    def machine_by_tag(self, tag: str) -> Nrmm | None:
        code = self.machine_tags.get(tag.upper())
        return None if code is None else self.machines.get(code)

    # -- alert level --------------------------------------------------------------------

    def alert_at(self, now: datetime) -> str:
        """The alert level in force at ``now`` (``none``, ``blue``, ..., ``red``)."""
        return level_at(self.alerts, now)

    def alert_entry_at(self, now: datetime) -> AlertEntry | None:
        """The entry that sets the level at ``now`` (who, why, window); None: no alert."""
        return entry_at(self.alerts, now)

    @property
    def alert(self) -> AlertState:
        """The level in force on the wall clock now. Prefer ``alert_at(now)`` with the
        passage's own time; this is for status displays."""
        return AlertState.of(entry_at(self.alerts, sitetime.now()))

    # -- cargo --------------------------------------------------------------------------

    def cargo_declaration_for(self, plate: str | None, now: datetime) -> CargoDeclaration | None:
        """The logistics system's declaration in force for this plate, if any."""
        return None if plate is None else declaration_for(self.cargo.get(plate, ()), now)

    def is_waybill(self, tag: str) -> bool:
        """A tag with a cargo declaration open: a waybill card, not a vehicle's tag."""
        return tag.upper() in self.cargo_tags

    def cargo_declaration_for_tags(
        self, tags: Iterable[str], now: datetime
    ) -> CargoDeclaration | None:
        """The declaration in force for the first of these tags that is a waybill card."""
        for tag in tags:
            declared = declaration_for(self.cargo_tags.get(tag.upper(), ()), now)
            if declared is not None:
                return declared
        return None

    def cargo_for(self, plate: str | None, now: datetime) -> str | None:
        """运输货物名称 for a passage: the declaration in force, else the registry's default
        for the vehicle, else None."""
        declared = self.cargo_declaration_for(plate, now)
        if declared is not None:
            return declared.cargo
        v = self.vehicle(plate)
        return v.cargo if v is not None and v.cargo else None
