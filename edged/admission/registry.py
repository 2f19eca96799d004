"""The local vehicle registry: vehicles, blacklist, machinery, approvals, alert level.

It lives in its own SQLite file (WAL) so the gate keeps deciding offline and a
corrupt ledger cannot take the whitelist with it. One ``Registry`` owns the file
in the daemon; the CLI may open the same file from another process, and the
daemon notices through ``PRAGMA data_version`` and rebuilds its snapshot.

Decisions never touch SQLite: they read an immutable in-memory ``Snapshot``
(dict lookups), so a 50,000-vehicle registry still decides in microseconds and
a reader thread never waits for a writer.

Every change an operator makes is reported to the optional ``audit`` callable
as ``audit(actor, action, details)``; the ledger owns the tamper-evident chain.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import peewee as pw

from edged.admission.model import (
    ALERT_LEVELS,
    APPROVAL_DIRECTIONS,
    Approval,
    BlacklistEntry,
    Nrmm,
    Vehicle,
    normalize_plate,
)
from edged.logs import get_logger

log = get_logger("gate")

Audit = Callable[[str, str, dict[str, Any]], None]
Kind = Literal["vehicles", "blacklist", "nrmm"]
Mode = Literal["replace", "upsert", "delete"]

MIN_REASON_CHARS = 4


class ApprovalRefused(ValueError):
    """A special approval that a regulator would not accept (vague reason, bad window)."""


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def _dt(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


def _tags(text: str) -> tuple[str, ...]:
    return tuple(t for t in text.split(",") if t)


def now_local() -> datetime:
    return datetime.now().astimezone()


def _make_models(db: pw.Database) -> SimpleNamespace:
    """Model classes bound to one database, so two registries never share a binding."""

    class Base(pw.Model):
        class Meta:
            database = db

    class VehicleRow(Base):
        plate = pw.CharField(primary_key=True)
        plate_colour = pw.CharField(default="yellow")
        vin = pw.CharField(default="", index=True)
        registered_on = pw.CharField(default="")
        brand_model = pw.CharField(default="")
        vehicle_type = pw.CharField(default="")
        vehicle_class = pw.CharField(default="heavy_truck")
        fuel = pw.CharField(default="diesel")
        emission_stage = pw.CharField(null=True)
        hazardous = pw.BooleanField(default=False)
        haulier = pw.CharField(default="")
        rfid_tags = pw.TextField(default="")  # comma-joined, upper-case
        documents = pw.TextField(default="[]")  # JSON list of refs
        valid_until = pw.CharField(null=True)
        source = pw.CharField(default="")
        updated_at = pw.CharField(null=True)

        class Meta:
            table_name = "vehicle"

    class BlacklistRow(Base):
        plate = pw.CharField(primary_key=True)
        reason = pw.TextField()
        source = pw.CharField(default="")
        valid_from = pw.CharField(null=True)
        valid_until = pw.CharField(null=True)

        class Meta:
            table_name = "blacklist"

    class NrmmRow(Base):
        registry_no = pw.CharField(primary_key=True)
        machine_type = pw.CharField(default="")
        emission_stage = pw.CharField(null=True)
        owner = pw.CharField(default="")
        updated_at = pw.CharField(null=True)

        class Meta:
            table_name = "nrmm"

    class ApprovalRow(Base):
        plate = pw.CharField(index=True)
        reason = pw.TextField()
        applicant = pw.CharField()
        approver = pw.CharField()
        valid_from = pw.CharField()
        valid_until = pw.CharField()
        created_at = pw.CharField()
        created_by = pw.CharField(default="")
        used_at = pw.CharField(null=True)
        used_by_passage = pw.CharField(null=True)
        direction = pw.CharField(default="any")
        uses = pw.IntegerField(default=1)
        used = pw.IntegerField(default=0)
        ref = pw.CharField(null=True, unique=True)

        class Meta:
            table_name = "approval"

    class AlertRow(Base):
        level = pw.CharField()
        set_by = pw.CharField()
        set_at = pw.CharField()
        reason = pw.TextField(default="")

        class Meta:
            table_name = "alert_level"

    return SimpleNamespace(
        vehicle=VehicleRow,
        blacklist=BlacklistRow,
        nrmm=NrmmRow,
        approval=ApprovalRow,
        alert=AlertRow,
        all=[VehicleRow, BlacklistRow, NrmmRow, ApprovalRow, AlertRow],
    )


@dataclass(frozen=True)
class AlertState:
    """The heavy-pollution alert level (重污染天气预警) in force, and who set it."""

    level: str = "none"
    set_by: str = ""
    set_at: datetime | None = None
    reason: str = ""


@dataclass(frozen=True)
class Snapshot:
    """Immutable view of the lists for the decision path: dict lookups only."""

    vehicles: Mapping[str, Vehicle]
    tags: Mapping[str, str]  # RFID tag id → plate
    blacklist: Mapping[str, BlacklistEntry]
    approvals: Mapping[str, tuple[Approval, ...]]  # unused approvals by plate
    alert: AlertState

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


class Registry:
    """Owner of the registry SQLite file. Thread-safe: every call takes one lock."""

    def __init__(self, path: str | Path, audit: Audit | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._audit = audit
        self._lock = threading.RLock()
        self._db = pw.SqliteDatabase(
            str(self.path),
            pragmas={
                "journal_mode": "wal",
                "synchronous": "normal",
                "foreign_keys": 1,
                "busy_timeout": 5000,
            },
            thread_safe=False,
            check_same_thread=False,
        )
        self._m = _make_models(self._db)
        with self._lock:
            self._db.connect()
            if self._db.table_exists("approval"):
                self._migrate()  # before create_tables makes indexes on the new columns
            self._db.create_tables(self._m.all)
        self._snapshot: Snapshot | None = None
        self._data_version: int | None = None

    # -- plumbing ---------------------------------------------------------------

    def _migrate(self) -> None:
        """Add the approval columns a registry written by an older edged lacks."""
        have = {c.name for c in self._db.get_columns("approval")}
        added = {
            "direction": "TEXT NOT NULL DEFAULT 'any'",
            "uses": "INTEGER NOT NULL DEFAULT 1",
            "used": "INTEGER NOT NULL DEFAULT 0",
            "ref": "TEXT",
        }
        with self._db.atomic():
            for name, decl in added.items():
                if name not in have:
                    self._db.execute_sql(f"ALTER TABLE approval ADD COLUMN {name} {decl}")
            if "used" not in have:  # an old one-time pass already used counts as used up
                self._db.execute_sql("UPDATE approval SET used = 1 WHERE used_at IS NOT NULL")

    def close(self) -> None:
        with self._lock:
            if not self._db.is_closed():
                self._db.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _report(self, actor: str, action: str, details: dict[str, Any]) -> None:
        log.info(
            "registry_change",
            actor=actor,
            action=action,
            **{k: v for k, v in details.items() if isinstance(v, str | int | float | bool)},
        )
        if self._audit is not None:
            try:
                self._audit(actor, action, details)
            except Exception as exc:  # the change is made; losing the audit must be loud
                log.error(
                    "audit_failed",
                    action=action,
                    error=repr(exc),
                    hint="the registry change was saved but not audited; check the ledger",
                )

    def _changed(self, small: bool = False) -> None:
        """Forget the snapshot; for approvals and the alert level (small tables changed
        at passage time) patch it instead, so a consumed pass never stalls the gate
        behind a 50,000-row rebuild."""
        if small and self._snapshot is not None:
            self._snapshot = replace(
                self._snapshot, approvals=self._approvals_map(), alert=self.alert_state()
            )
        else:
            self._snapshot = None

    # -- rows <-> records -------------------------------------------------------

    @staticmethod
    def _vehicle(r: Any) -> Vehicle:
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
            haulier=r.haulier,
            rfid_tags=_tags(r.rfid_tags),
            documents=tuple(json.loads(r.documents or "[]")),
            valid_until=_dt(r.valid_until),
            source=r.source,
            updated_at=_dt(r.updated_at),
        )

    @staticmethod
    def _vehicle_row(v: Vehicle, now: datetime) -> dict[str, Any]:
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
            "haulier": v.haulier,
            "rfid_tags": ",".join(t.upper() for t in v.rfid_tags),
            "documents": json.dumps(list(v.documents), ensure_ascii=False),
            "valid_until": _iso(v.valid_until),
            "source": v.source,
            "updated_at": _iso(v.updated_at or now),
        }

    @staticmethod
    def _black(r: Any) -> BlacklistEntry:
        return BlacklistEntry(
            plate=r.plate,
            reason=r.reason,
            source=r.source,
            valid_from=_dt(r.valid_from),
            valid_until=_dt(r.valid_until),
        )

    @staticmethod
    def _black_row(b: BlacklistEntry) -> dict[str, Any]:
        return {
            "plate": normalize_plate(b.plate),
            "reason": b.reason,
            "source": b.source,
            "valid_from": _iso(b.valid_from),
            "valid_until": _iso(b.valid_until),
        }

    @staticmethod
    def _nrmm(r: Any) -> Nrmm:
        return Nrmm(
            registry_no=r.registry_no,
            machine_type=r.machine_type,
            emission_stage=r.emission_stage,
            owner=r.owner,
            updated_at=_dt(r.updated_at),
        )

    @staticmethod
    def _nrmm_row(n: Nrmm, now: datetime) -> dict[str, Any]:
        return {
            "registry_no": n.registry_no.strip().upper(),
            "machine_type": n.machine_type,
            "emission_stage": n.emission_stage,
            "owner": n.owner,
            "updated_at": _iso(n.updated_at or now),
        }

    @staticmethod
    def _approval(r: Any) -> Approval:
        return Approval(
            id=r.id,
            plate=r.plate,
            reason=r.reason,
            applicant=r.applicant,
            approver=r.approver,
            valid_from=_dt(r.valid_from),
            valid_until=_dt(r.valid_until),  # type: ignore[arg-type]
            created_at=_dt(r.created_at),
            used_at=_dt(r.used_at),
            used_by_passage=r.used_by_passage,
            direction=r.direction,
            uses=r.uses,
            used=r.used,
            ref=r.ref,
        )

    # -- vehicles ---------------------------------------------------------------

    def get_vehicle(self, plate: str) -> Vehicle | None:
        with self._lock:
            r = self._m.vehicle.get_or_none(self._m.vehicle.plate == normalize_plate(plate))
            return None if r is None else self._vehicle(r)

    def find_by_tag(self, tag: str) -> Vehicle | None:
        """Vehicle holding this RFID tag (served from the snapshot)."""
        return self.snapshot().vehicle_by_tag(tag)

    def list_vehicles(self, limit: int | None = None, offset: int = 0) -> list[Vehicle]:
        with self._lock:
            q = self._m.vehicle.select().order_by(self._m.vehicle.plate).offset(offset)
            if limit is not None:
                q = q.limit(limit)
            return [self._vehicle(r) for r in q]

    def count_vehicles(self) -> int:
        with self._lock:
            return self._m.vehicle.select().count()

    def upsert_vehicles(
        self, vehicles: Iterable[Vehicle], actor: str = "system", source: str = ""
    ) -> int:
        return self.apply("vehicles", "upsert", list(vehicles), actor=actor, source=source)

    def delete_vehicle(self, plate: str, actor: str = "system") -> bool:
        plate = normalize_plate(plate)
        with self._lock:
            n = self._m.vehicle.delete().where(self._m.vehicle.plate == plate).execute()
            self._changed()
        if n:
            self._report(actor, "vehicle.delete", {"plate": plate})
        return bool(n)

    # -- blacklist --------------------------------------------------------------

    def get_blacklist(self, plate: str) -> BlacklistEntry | None:
        with self._lock:
            r = self._m.blacklist.get_or_none(self._m.blacklist.plate == normalize_plate(plate))
            return None if r is None else self._black(r)

    def list_blacklist(self) -> list[BlacklistEntry]:
        with self._lock:
            return [
                self._black(r) for r in self._m.blacklist.select().order_by(self._m.blacklist.plate)
            ]

    def add_blacklist(self, entry: BlacklistEntry, actor: str = "system") -> None:
        if len(entry.reason.strip()) < MIN_REASON_CHARS:
            raise ValueError(
                f"reason: a blacklist entry needs a reason of at least {MIN_REASON_CHARS}"
                " characters"
            )
        self.apply("blacklist", "upsert", [entry], actor=actor)

    def remove_blacklist(self, plate: str, actor: str = "system") -> bool:
        plate = normalize_plate(plate)
        with self._lock:
            n = self._m.blacklist.delete().where(self._m.blacklist.plate == plate).execute()
            self._changed()
        if n:
            self._report(actor, "blacklist.remove", {"plate": plate})
        return bool(n)

    # -- non-road mobile machinery ---------------------------------------------

    def get_nrmm(self, registry_no: str) -> Nrmm | None:
        with self._lock:
            r = self._m.nrmm.get_or_none(self._m.nrmm.registry_no == registry_no.strip().upper())
            return None if r is None else self._nrmm(r)

    def list_nrmm(self) -> list[Nrmm]:
        with self._lock:
            return [self._nrmm(r) for r in self._m.nrmm.select().order_by(self._m.nrmm.registry_no)]

    # -- bulk (CSV import, MQTT sync) -------------------------------------------

    def apply(
        self, kind: Kind, mode: Mode, records: list[Any], actor: str = "system", source: str = ""
    ) -> int:
        """Replace, upsert or delete a batch in one transaction: all of it or nothing.

        For ``delete`` the records may be keys (plate / registry number) or records.
        """
        model = {"vehicles": self._m.vehicle, "blacklist": self._m.blacklist, "nrmm": self._m.nrmm}[
            kind
        ]
        now = now_local()
        with self._lock, self._db.atomic():
            if mode == "delete":
                keys = [self._key(kind, r) for r in records]
                n = 0
                for i in range(0, len(keys), 500):
                    n += (
                        model.delete().where(model._meta.primary_key << keys[i : i + 500]).execute()
                    )
            else:
                rows = [self._row(kind, r, now) for r in records]
                if mode == "replace":
                    model.delete().execute()
                for i in range(0, len(rows), 200):
                    model.insert_many(rows[i : i + 200]).on_conflict_replace().execute()
                n = len(rows)
            self._changed()
        self._report(actor, f"{kind}.{mode}", {"count": n, "source": source})
        return n

    def apply_stream(
        self,
        kind: Kind,
        mode: Mode,
        batches: Iterable[list[Any]],
        actor: str = "system",
        source: str = "",
    ) -> int:
        """``apply`` for batches that arrive one at a time (a streamed CSV import).

        One transaction over all of them: if the iterator raises (a bad row found
        late in the file), every batch already written is rolled back. Only one
        batch is in memory at a time.
        """
        model = {"vehicles": self._m.vehicle, "blacklist": self._m.blacklist, "nrmm": self._m.nrmm}[
            kind
        ]
        table = model._meta.table_name
        now = now_local()
        n = 0
        with self._lock, self._db.atomic():
            if mode == "replace":
                model.delete().execute()
            conn = self._db.connection()
            for batch in batches:
                if mode == "delete":
                    keys = [self._key(kind, r) for r in batch]
                    marks = ",".join("?" * len(keys))
                    pk = model._meta.primary_key.column_name
                    n += conn.execute(f"DELETE FROM {table} WHERE {pk} IN ({marks})", keys).rowcount
                    continue
                rows = [self._row(kind, r, now) for r in batch]
                cols = list(rows[0])
                sql = (
                    f"INSERT OR REPLACE INTO {table} ({', '.join(cols)})"
                    f" VALUES ({', '.join('?' * len(cols))})"
                )
                conn.executemany(sql, [tuple(r[c] for c in cols) for r in rows])
                n += len(rows)
            self._changed()
        self._report(actor, f"{kind}.{mode}", {"count": n, "source": source})
        return n

    def _key(self, kind: Kind, record: Any) -> str:
        if isinstance(record, str):
            return record.strip().upper() if kind == "nrmm" else normalize_plate(record)
        return self._key(kind, record.registry_no if kind == "nrmm" else record.plate)

    def _row(self, kind: Kind, record: Any, now: datetime) -> dict[str, Any]:
        if kind == "vehicles":
            return self._vehicle_row(record, now)
        if kind == "blacklist":
            return self._black_row(record)
        return self._nrmm_row(record, now)

    # -- special approvals (特批放行) ----------------------------------------------

    def add_approval(
        self,
        plate: str,
        reason: str,
        applicant: str,
        approver: str,
        valid_from: datetime,
        valid_until: datetime,
        actor: str = "system",
        *,
        direction: str = "any",
        uses: int = 1,
        ref: str | None = None,
    ) -> Approval:
        """Record a pass for ``uses`` passages in ``direction`` (in, out or any); ``ref`` is
        the backend's id for it. Vague or incomplete approvals are refused, because
        an inspector reads them later and "ok" or "急" explains nothing."""
        plate = normalize_plate(plate)
        problems = []
        if not plate:
            problems.append("plate: empty")
        if len(reason.strip()) < MIN_REASON_CHARS:
            problems.append(
                f"reason: at least {MIN_REASON_CHARS} characters saying why, found {reason!r}"
            )
        if not applicant.strip():
            problems.append("applicant: who asked for the pass is required")
        if not approver.strip():
            problems.append("approver: who authorised the pass is required")
        if valid_until <= valid_from:
            problems.append(f"valid_until: must be after valid_from ({valid_from.isoformat()})")
        if direction not in APPROVAL_DIRECTIONS:
            problems.append(f"direction: expected in, out or any, found {direction!r}")
        if not isinstance(uses, int) or isinstance(uses, bool) or not 1 <= uses <= 100:
            problems.append(f"uses: expected 1..100 passages, found {uses!r}")
        if ref is not None and not 0 < len(ref) <= 64:
            problems.append("approval_id: expected 1-64 characters")
        if problems:
            raise ApprovalRefused("; ".join(problems))
        now = now_local()
        with self._lock:
            if ref is not None:
                clash = self._m.approval.get_or_none(self._m.approval.ref == ref)
                if clash is not None:
                    raise ApprovalRefused(
                        f"approval_id: {ref!r} already entered (local id {clash.id}, plate"
                        f" {clash.plate}); an approval is entered once"
                    )
            row = self._m.approval.create(
                plate=plate,
                reason=reason.strip(),
                applicant=applicant.strip(),
                approver=approver.strip(),
                valid_from=_iso(valid_from),
                valid_until=_iso(valid_until),
                created_at=_iso(now),
                created_by=actor,
                direction=direction,
                uses=uses,
                used=0,
                ref=ref,
            )
            self._changed(small=True)
            approval = self._approval(row)
        self._report(
            actor,
            "approval.add",
            {
                "id": approval.id,
                "plate": plate,
                "reason": approval.reason,
                "applicant": approval.applicant,
                "approver": approval.approver,
                "valid_from": _iso(valid_from),
                "valid_until": _iso(valid_until),
                "direction": direction,
                "uses": uses,
                "ref": ref,
            },
        )
        return approval

    def consume_approval(
        self, approval_id: int, passage_id: str, now: datetime | None = None, actor: str = "gate"
    ) -> bool:
        """Use one passage of an approval. Returns False if none was left (a second
        passage racing for the last use loses): the caller must then not open on it."""
        now = now or now_local()
        m = self._m.approval
        with self._lock:
            n = (
                m.update(used_at=_iso(now), used_by_passage=passage_id, used=m.used + 1)
                .where((m.id == approval_id) & (m.used < m.uses))
                .execute()
            )
            self._changed(small=True)
        if n:
            self._report(
                actor,
                "approval.consume",
                {"id": approval_id, "passage_id": passage_id, "used_at": _iso(now)},
            )
        else:
            log.warning(
                "approval_already_used",
                id=approval_id,
                passage_id=passage_id,
                hint="a one-time pass can open the barrier once; enter a new approval",
            )
        return bool(n)

    def get_approval(self, approval_id: int) -> Approval | None:
        with self._lock:
            r = self._m.approval.get_or_none(self._m.approval.id == approval_id)
            return None if r is None else self._approval(r)

    def list_approvals(self, include_used: bool = True) -> list[Approval]:
        with self._lock:
            q = self._m.approval.select().order_by(self._m.approval.id)
            if not include_used:
                q = q.where(self._m.approval.used < self._m.approval.uses)
            return [self._approval(r) for r in q]

    # -- alert level (重污染天气预警) ------------------------------------------------

    def set_alert_level(
        self, level: str, actor: str, reason: str = "", now: datetime | None = None
    ) -> AlertState:
        if level not in ALERT_LEVELS:
            raise ValueError(f"level: expected one of {', '.join(ALERT_LEVELS)}, found {level!r}")
        if not actor.strip():
            raise ValueError("actor: who set the alert level is required")
        now = now or now_local()
        with self._lock:
            self._m.alert.create(level=level, set_by=actor, set_at=_iso(now), reason=reason)
            self._changed(small=True)
        self._report(actor, "alert.set", {"level": level, "reason": reason, "set_at": _iso(now)})
        return AlertState(level, actor, now, reason)

    def alert_state(self) -> AlertState:
        with self._lock:
            r = self._m.alert.select().order_by(self._m.alert.id.desc()).first()
            if r is None:
                return AlertState()
            return AlertState(r.level, r.set_by, _dt(r.set_at), r.reason)

    # -- snapshot ---------------------------------------------------------------

    def _data_version_now(self) -> int:
        return int(self._db.execute_sql("PRAGMA data_version").fetchone()[0])

    def snapshot(self) -> Snapshot:
        """The current lists in memory. Rebuilt only after a change, by this process
        or by another one (the CLI) — cheap to call before every decision."""
        with self._lock:
            version = self._data_version_now()
            if self._snapshot is None or version != self._data_version:
                self._snapshot = self._build()
                self._data_version = version
            return self._snapshot

    def _approvals_map(self) -> dict[str, tuple[Approval, ...]]:
        approvals: dict[str, list[Approval]] = {}
        m = self._m.approval
        for r in m.select().where(m.used < m.uses):
            a = self._approval(r)
            approvals.setdefault(a.plate, []).append(a)
        return {k: tuple(v) for k, v in approvals.items()}

    def _build(self) -> Snapshot:
        vehicles: dict[str, Vehicle] = {}
        tags: dict[str, str] = {}
        for r in self._m.vehicle.select().namedtuples().iterator():
            v = self._vehicle(r)
            vehicles[v.plate] = v
            for t in v.rfid_tags:
                tags[t] = v.plate
        black = {r.plate: self._black(r) for r in self._m.blacklist.select().namedtuples()}
        return Snapshot(
            vehicles=vehicles,
            tags=tags,
            blacklist=black,
            approvals=self._approvals_map(),
            alert=self.alert_state(),
        )


def with_updated(vehicle: Vehicle, **changes: Any) -> Vehicle:
    """Small helper for callers that edit one field (MQTT commands, CLI)."""
    return replace(vehicle, **changes)
