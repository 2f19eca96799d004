"""The local registry: one file, its parts, and the snapshot the gate decides on.

``Registry`` owns the registry SQLite file in the daemon (the CLI may open the
same file from another process; the daemon notices through ``PRAGMA
data_version`` and rebuilds its snapshot). The work is done by its parts, each
in its own module: the lists of vehicles, blacklist and machinery
(``RegistryLists``), special approvals (``ApprovalBook``), alert levels
(``AlertSchedule``), cargo declarations (``CargoBook``) and the document
photos (``DocumentStore``). ``Registry`` keeps one-line methods over them so
its callers need not know the parts.

Every change is reported to the optional ``audit`` callable as
``audit(actor, action, details)``; the ledger owns the tamper-evident chain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from edged.admission.alerts import AlertSchedule, AlertState
from edged.admission.approvals import ApprovalBook, ApprovalRefused
from edged.admission.audit import Audit, Auditor
from edged.admission.cargo import CargoBook
from edged.admission.documents import DEFAULT_MAX_BYTES, DocumentStore
from edged.admission.lists import Kind, Mode, RegistryLists, now_local
from edged.admission.model import (
    AlertEntry,
    Approval,
    BlacklistEntry,
    CargoDeclaration,
    Nrmm,
    Vehicle,
)
from edged.admission.snapshot import Snapshot
from edged.admission.tables import RegistryDb

__all__ = [
    "AlertState",
    "ApprovalRefused",
    "Audit",
    "Kind",
    "Mode",
    "Registry",
    "Snapshot",
    "now_local",
    "with_updated",
]


class Registry:
    """Owner of the registry SQLite file. Thread-safe: every call takes one lock."""

    def __init__(
        self,
        path: str | Path,
        audit: Audit | None = None,
        documents_dir: str | Path | None = None,
        document_max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.rdb = RegistryDb(path)
        self.path = self.rdb.path
        self.auditor = Auditor(audit)
        self.documents = DocumentStore(
            documents_dir if documents_dir is not None else self.path.parent / "documents",
            document_max_bytes,
        )
        self._snapshot: Snapshot | None = None
        self._data_version: int | None = None
        self.lists = RegistryLists(self.rdb, self.auditor, self._changed)
        self.approval_book = ApprovalBook(self.rdb, self.auditor, self._changed)
        self.alert_schedule = AlertSchedule(self.rdb, self.auditor, self._changed)
        self.cargo_book = CargoBook(self.rdb, self.auditor, self._changed)

    def close(self) -> None:
        self.rdb.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- vehicles, blacklist, machinery ------------------------------------------------

    def get_vehicle(self, plate: str) -> Vehicle | None:
        return self.lists.get_vehicle(plate)

    def find_by_tag(self, tag: str) -> Vehicle | None:
        """Vehicle holding this RFID tag (served from the snapshot)."""
        return self.snapshot().vehicle_by_tag(tag)

    def list_vehicles(
        self, limit: int | None = None, offset: int = 0, category: str | None = None
    ) -> list[Vehicle]:
        return self.lists.list_vehicles(limit, offset, category)

    def count_vehicles(self, category: str | None = None) -> int:
        return self.lists.count_vehicles(category)

    def upsert_vehicles(
        self, vehicles: Iterable[Vehicle], actor: str = "system", source: str = ""
    ) -> int:
        return self.apply("vehicles", "upsert", list(vehicles), actor=actor, source=source)

    def delete_vehicle(self, plate: str, actor: str = "system") -> bool:
        return self.lists.delete_vehicle(plate, actor)

    def get_blacklist(self, plate: str) -> BlacklistEntry | None:
        return self.lists.get_blacklist(plate)

    def list_blacklist(self) -> list[BlacklistEntry]:
        return self.lists.list_blacklist()

    def add_blacklist(self, entry: BlacklistEntry, actor: str = "system") -> None:
        self.lists.add_blacklist(entry, actor)

    def remove_blacklist(self, plate: str, actor: str = "system") -> bool:
        return self.lists.remove_blacklist(plate, actor)

    def get_machine(self, plate_or_code: str) -> Nrmm | None:
        return self.lists.get_machine(plate_or_code)

    get_nrmm = get_machine

    def list_machines(self, limit: int | None = None) -> list[Nrmm]:
        return self.lists.list_machines(limit)

    list_nrmm = list_machines

    def count_machines(self) -> int:
        return self.lists.count_machines()

    def delete_machine(self, registry_no: str, actor: str = "system") -> bool:
        return self.lists.delete_machine(registry_no, actor)

    def apply(
        self,
        kind: Kind,
        mode: Mode,
        records: list[Any],
        actor: str = "system",
        source: str = "",
        digest: str | None = None,
    ) -> int:
        return self.lists.apply(kind, mode, records, actor, source, digest)

    def apply_stream(
        self,
        kind: Kind,
        mode: Mode,
        batches: Iterable[list[Any]],
        actor: str = "system",
        source: str = "",
        digest: str | None = None,
    ) -> int:
        return self.lists.apply_stream(kind, mode, batches, actor, source, digest)

    # -- document photos ------------------------------------------------------------------

    def attach_photos(
        self, key: str, files: Mapping[str, str | Path], actor: str, *, machine: bool = False
    ) -> Vehicle | Nrmm:
        """Store photo files (kind -> file) and attach them to a vehicle or machine."""
        stored = {kind: self.documents.put(path) for kind, path in files.items()}
        return self.lists.set_documents(key, stored, actor, machine=machine)

    def document_path(self, sha256: str) -> Path | None:
        """Where a stored document photo is, by the SHA-256 a record holds."""
        return self.documents.path(sha256)

    # -- special approvals (特批放行) --------------------------------------------------------

    def add_approval(
        self,
        plate: str,
        reason: str,
        applicant: str,
        approver: str,
        valid_from: datetime,
        valid_until: datetime,
        actor: str = "system",
        **options: Any,
    ) -> Approval:
        """See :meth:`ApprovalBook.add` (direction, uses, ref, approved_at,
        allow_self_approve)."""
        return self.approval_book.add(
            plate, reason, applicant, approver, valid_from, valid_until, actor, **options
        )

    def consume_approval(
        self, approval_id: int, passage_id: str, now: datetime | None = None, actor: str = "gate"
    ) -> bool:
        return self.approval_book.consume(approval_id, passage_id, now, actor)

    def get_approval(self, approval_id: int) -> Approval | None:
        return self.approval_book.get(approval_id)

    def list_approvals(self, include_used: bool = True) -> list[Approval]:
        return self.approval_book.list(include_used)

    # -- alert levels (重污染天气预警) -------------------------------------------------------

    def set_alert_level(
        self,
        level: str,
        actor: str,
        reason: str = "",
        now: datetime | None = None,
        *,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
    ) -> AlertEntry:
        return self.alert_schedule.set(
            level, actor, reason, valid_from=valid_from, valid_until=valid_until, now=now
        )

    def alert_state(self, now: datetime | None = None) -> AlertState:
        """The level in force at ``now`` (default: the wall clock), and who set it."""
        return self.alert_schedule.state(now)

    def list_alerts(self, include_superseded: bool = False) -> list[AlertEntry]:
        return self.alert_schedule.list(include_superseded)

    # -- cargo declarations ---------------------------------------------------------------

    def declare_cargo(
        self, plate: str, cargo: str, valid_until: datetime, actor: str, **options: Any
    ) -> CargoDeclaration:
        """See :meth:`CargoBook.declare` (valid_from, uses, now)."""
        return self.cargo_book.declare(plate, cargo, valid_until, actor, **options)

    def consume_cargo(self, declaration_id: int, passage_id: str, actor: str = "gate") -> bool:
        return self.cargo_book.consume(declaration_id, passage_id, actor)

    def list_cargo(
        self, plate: str | None = None, tag: str | None = None
    ) -> list[CargoDeclaration]:
        return self.cargo_book.list(plate, tag)

    # -- snapshot -------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current lists in memory. Rebuilt only after a change, by this process
        or by another one (the CLI) — cheap to call before every decision."""
        with self.rdb.lock:
            version = self.rdb.data_version()
            if self._snapshot is None or version != self._data_version:
                self._snapshot = Snapshot(
                    **self.lists.load(),
                    approvals=self.approval_book.unused(),
                    alerts=self.alert_schedule.entries(),
                    **self._cargo(),
                )
                self._data_version = version
            return self._snapshot

    def _cargo(self) -> dict[str, Any]:
        """The snapshot's cargo fields: open declarations by plate and by waybill card."""
        open_ = self.cargo_book.open()
        return {"cargo": open_.by_plate, "cargo_tags": open_.by_tag}

    def _changed(self, what: str) -> None:
        """Forget the snapshot; for approvals, alert levels and cargo (small tables changed
        at passage time) patch it instead, so a consumed pass never stalls the gate
        behind a 50,000-row rebuild."""
        snap = self._snapshot
        if snap is None:
            return
        if what == "approvals":
            self._snapshot = replace(snap, approvals=self.approval_book.unused())
        elif what == "alerts":
            self._snapshot = replace(snap, alerts=self.alert_schedule.entries())
        elif what == "cargo":
            self._snapshot = replace(snap, **self._cargo())
        else:
            self._snapshot = None


def with_updated(vehicle: Vehicle, **changes: Any) -> Vehicle:
    """Small helper for callers that edit one field (MQTT commands, CLI)."""
    return replace(vehicle, **changes)
