"""The registry's lists: transport and in-plant vehicles, the blacklist, machinery.

Single changes (a blacklist entry, a deleted vehicle, a vehicle's photos) and
bulk ones (a CSV import, an MQTT list command) go through here, each in one
transaction and each audited with who and what it was before and after.

A bulk change is scoped by its kind: ``vehicles`` are the transport vehicles
(运输车辆) and ``plant_vehicles`` the in-plant ones (厂内运输车辆), so replacing
one list never empties the other. A vehicle written again keeps the photos it
has unless the new record brings its own (a backend's nightly list carries no
photos, and must not wipe those the plant attached).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from edged import sitetime
from edged.admission import rows
from edged.admission.audit import Auditor, BatchChanges
from edged.admission.model import (
    DOCUMENT_NAMES,
    MACHINE_DOCUMENTS,
    VEHICLE_DOCUMENTS,
    BlacklistEntry,
    Nrmm,
    Vehicle,
    normalize_plate,
)
from edged.admission.tables import RegistryDb

Kind = Literal["vehicles", "plant_vehicles", "blacklist", "nrmm"]
Mode = Literal["replace", "upsert", "delete"]

MIN_REASON_CHARS = 4
CATEGORY_OF_KIND = {"vehicles": "transport", "plant_vehicles": "in_plant"}
_TABLE = {
    "vehicles": ("vehicle", "plate"),
    "plant_vehicles": ("vehicle", "plate"),
    "blacklist": ("blacklist", "plate"),
    "nrmm": ("nrmm", "registry_no"),
}


def now_local() -> datetime:
    """Now, in the site's zone (``site.timezone``), as every registry time is written."""
    return sitetime.now()


def _fetch(conn: sqlite3.Connection, sql: str, args: Iterable[Any]) -> list[dict[str, Any]]:
    cur = conn.execute(sql, list(args))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur]


def _upsert_sql(table: str, pk: str, cols: list[str]) -> str:
    """Insert or update; ``documents`` is merged, so photos stay unless replaced."""
    sets = ", ".join(
        "documents = CASE WHEN excluded.documents = '{}' THEN documents"
        " ELSE json_patch(documents, excluded.documents) END"
        if c == "documents"
        else f"{c} = excluded.{c}"
        for c in cols
        if c != pk
    )
    return (
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        f" ON CONFLICT({pk}) DO UPDATE SET {sets}"
    )


class RegistryLists:
    """Vehicles, blacklist and machinery in the registry file; reads and audited changes."""

    def __init__(self, rdb: RegistryDb, audit: Auditor, changed: Callable[[str], None]) -> None:
        self.rdb = rdb
        self.m = rdb.m
        self.audit = audit
        self.changed = changed

    # -- vehicles -------------------------------------------------------------------

    def get_vehicle(self, plate: str) -> Vehicle | None:
        with self.rdb.lock:
            r = self.m.vehicle.get_or_none(self.m.vehicle.plate == normalize_plate(plate))
            return None if r is None else rows.vehicle(r)

    def list_vehicles(
        self, limit: int | None = None, offset: int = 0, category: str | None = None
    ) -> list[Vehicle]:
        m = self.m.vehicle
        with self.rdb.lock:
            q = m.select().order_by(m.plate).offset(offset)
            if category is not None:
                q = q.where(m.category == category)
            if limit is not None:
                q = q.limit(limit)
            return [rows.vehicle(r) for r in q]

    def count_vehicles(self, category: str | None = None) -> int:
        m = self.m.vehicle
        with self.rdb.lock:
            q = m.select()
            return (q if category is None else q.where(m.category == category)).count()

    def delete_vehicle(self, plate: str, actor: str) -> bool:
        return self._delete_one("vehicle", "plate", normalize_plate(plate), actor, "vehicle.delete")

    # -- blacklist --------------------------------------------------------------------

    def get_blacklist(self, plate: str) -> BlacklistEntry | None:
        with self.rdb.lock:
            r = self.m.blacklist.get_or_none(self.m.blacklist.plate == normalize_plate(plate))
            return None if r is None else rows.black(r)

    def list_blacklist(self) -> list[BlacklistEntry]:
        with self.rdb.lock:
            return [
                rows.black(r) for r in self.m.blacklist.select().order_by(self.m.blacklist.plate)
            ]

    def add_blacklist(self, entry: BlacklistEntry, actor: str) -> None:
        if len(entry.reason.strip()) < MIN_REASON_CHARS:
            raise ValueError(
                f"reason: a blacklist entry needs a reason of at least {MIN_REASON_CHARS}"
                " characters"
            )
        self.apply("blacklist", "upsert", [entry], actor=actor)

    def remove_blacklist(self, plate: str, actor: str) -> bool:
        return self._delete_one(
            "blacklist", "plate", normalize_plate(plate), actor, "blacklist.remove"
        )

    # -- non-road mobile machinery ------------------------------------------------------

    def get_machine(self, plate_or_code: str) -> Nrmm | None:
        """A machine by its registry code (登记编码), else by its plate."""
        key = rows.machine_key(plate_or_code)
        m = self.m.nrmm
        with self.rdb.lock:
            r = m.get_or_none(m.registry_no == key)
            if r is None and key:
                r = m.select().where(m.plate == key).first()
            return None if r is None else rows.nrmm(r)

    def list_machines(self, limit: int | None = None) -> list[Nrmm]:
        with self.rdb.lock:
            q = self.m.nrmm.select().order_by(self.m.nrmm.registry_no)
            return [rows.nrmm(r) for r in (q if limit is None else q.limit(limit))]

    def count_machines(self) -> int:
        with self.rdb.lock:
            return self.m.nrmm.select().count()

    def delete_machine(self, registry_no: str, actor: str) -> bool:
        key = rows.machine_key(registry_no)
        return self._delete_one("nrmm", "registry_no", key, actor, "machine.delete")

    # -- document photos ------------------------------------------------------------------

    def set_documents(
        self, key: str, documents: Mapping[str, str], actor: str, *, machine: bool = False
    ) -> Vehicle | Nrmm:
        """Attach stored photos (kind -> SHA-256) to a vehicle or a machine; others stay."""
        kinds = MACHINE_DOCUMENTS if machine else VEHICLE_DOCUMENTS
        wrong = [k for k in documents if k not in kinds]
        if wrong:
            raise ValueError(
                f"documents: {', '.join(wrong)} is not a photo of a"
                f" {'machine' if machine else 'vehicle'} (expected {', '.join(kinds)})"
            )
        table, pk = ("nrmm", "registry_no") if machine else ("vehicle", "plate")
        now = now_local()
        with self.rdb.lock, self.rdb.db.atomic():
            record = self.get_machine(key) if machine else self.get_vehicle(key)
            if record is None:
                what = "machinery registry" if machine else "registry"
                raise LookupError(f"{key}: not in the {what}")
            merged = {**record.documents, **documents}
            self.rdb.db.execute_sql(
                f"UPDATE {table} SET documents = ?, updated_at = ? WHERE {pk} = ?",
                (json.dumps(dict(sorted(merged.items()))), rows.iso(now), getattr(record, pk)),
            )
            self.changed("lists")
        self.audit(
            actor,
            "machine.documents" if machine else "vehicle.documents",
            {
                "key": getattr(record, pk),
                "kinds": {k: DOCUMENT_NAMES[k] for k in documents},
                "before": dict(record.documents),
                "after": merged,
            },
        )
        return replace(record, documents=merged)

    # -- bulk (CSV import, MQTT lists) -------------------------------------------------

    def apply(
        self,
        kind: Kind,
        mode: Mode,
        records: list[Any],
        actor: str = "system",
        source: str = "",
        digest: str | None = None,
    ) -> int:
        """Replace, upsert or delete a batch in one transaction: all of it or nothing.

        For ``delete`` the records may be keys (plate / registry code) or records.
        """
        return self.apply_stream(kind, mode, [records], actor=actor, source=source, digest=digest)

    def apply_stream(
        self,
        kind: Kind,
        mode: Mode,
        batches: Iterable[list[Any]],
        actor: str = "system",
        source: str = "",
        digest: str | None = None,
    ) -> int:
        """``apply`` for batches that arrive one at a time (a streamed CSV import).

        One transaction over all of them: if the iterator raises (a bad row found
        late in the file), every batch already written is rolled back. Only one
        batch is in memory at a time. ``digest`` is the SHA-256 of the file the
        batches came from, for the audit of a big change.
        """
        table, pk = _TABLE[kind]
        scope, scope_args = self._scope(kind)
        now = now_local()
        changes = BatchChanges()
        n = removed = 0
        with self.rdb.lock, self.rdb.db.atomic():
            conn = self.rdb.db.connection()
            if mode == "replace":
                conn.execute("CREATE TEMP TABLE IF NOT EXISTS replace_keep (k TEXT PRIMARY KEY)")
                conn.execute("DELETE FROM replace_keep")
                (there,) = conn.execute(
                    f"SELECT count(*) FROM {table} WHERE {scope}", scope_args
                ).fetchone()
                if there > changes.limit:
                    changes.give_up()
                else:
                    for row in _fetch(conn, f"SELECT * FROM {table} WHERE {scope}", scope_args):
                        changes.note(row[pk], row)
            for batch in batches:
                if not batch:
                    continue
                if mode == "delete":
                    keys = [self._key(kind, r) for r in batch]
                    self._note(conn, changes, table, pk, keys)
                    if digest is None:
                        changes.hash_keys(keys)
                    marks = ",".join("?" * len(keys))
                    n += conn.execute(
                        f"DELETE FROM {table} WHERE {pk} IN ({marks}) AND {scope}",
                        [*keys, *scope_args],
                    ).rowcount
                    continue
                written = [self._row(kind, r, now) for r in batch]
                keys = [r[pk] for r in written]
                self._note(conn, changes, table, pk, keys)
                if digest is None:
                    changes.hash_rows(written)
                cols = list(written[0])
                conn.executemany(
                    _upsert_sql(table, pk, cols), [tuple(r[c] for c in cols) for r in written]
                )
                if mode == "replace":
                    conn.executemany(
                        "INSERT OR IGNORE INTO replace_keep(k) VALUES (?)", [(k,) for k in keys]
                    )
                n += len(written)
            if mode == "replace":
                removed = conn.execute(
                    f"DELETE FROM {table} WHERE {scope}"
                    f" AND {pk} NOT IN (SELECT k FROM replace_keep)",
                    scope_args,
                ).rowcount
                conn.execute("DROP TABLE replace_keep")
            for key in changes.tracked():
                got = _fetch(conn, f"SELECT * FROM {table} WHERE {pk} = ?", [key])
                changes.after[key] = got[0] if got else None
            self.changed("lists")
        extra: dict[str, Any] = {"mode": mode, "source": source}
        if mode == "replace":
            extra["removed"] = removed
        self.audit(actor, f"{kind}.{mode}", changes.details(n, digest, **extra))
        return n

    def _scope(self, kind: Kind) -> tuple[str, list[str]]:
        category = CATEGORY_OF_KIND.get(kind)
        return ("category = ?", [category]) if category else ("1", [])

    def _note(
        self,
        conn: sqlite3.Connection,
        changes: BatchChanges,
        table: str,
        pk: str,
        keys: list[str],
    ) -> None:
        """Remember what the records were before they are written (while they are few)."""
        if not changes.tracking:
            return
        known = set(changes.tracked())
        new = [k for k in dict.fromkeys(keys) if k not in known]
        if not new:
            return
        if len(changes.tracked()) + len(new) > changes.limit:
            changes.give_up()
            return
        marks = ",".join("?" * len(new))
        found = {
            r[pk]: r for r in _fetch(conn, f"SELECT * FROM {table} WHERE {pk} IN ({marks})", new)
        }
        for k in new:
            changes.note(k, found.get(k))

    def _key(self, kind: Kind, record: Any) -> str:
        if isinstance(record, str):
            return rows.machine_key(record) if kind == "nrmm" else normalize_plate(record)
        return self._key(kind, record.registry_no if kind == "nrmm" else record.plate)

    def _row(self, kind: Kind, record: Any, now: datetime) -> dict[str, Any]:
        if kind == "blacklist":
            return rows.black_row(record)
        if kind == "nrmm":
            return rows.nrmm_row(record, now)
        row = rows.vehicle_row(record, now)
        row["category"] = CATEGORY_OF_KIND[kind]  # the list it arrived in says which
        return row

    def _delete_one(self, table: str, pk: str, key: str, actor: str, action: str) -> bool:
        with self.rdb.lock, self.rdb.db.atomic():
            conn = self.rdb.db.connection()
            before = _fetch(conn, f"SELECT * FROM {table} WHERE {pk} = ?", [key])
            if before:
                conn.execute(f"DELETE FROM {table} WHERE {pk} = ?", [key])
                self.changed("lists")
        if before:
            self.audit(actor, action, {"key": key, "before": before[0], "after": None})
        return bool(before)

    # -- for the snapshot -------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        """Every list as dictionaries, for a new snapshot (under the registry's lock)."""
        vehicles: dict[str, Vehicle] = {}
        tags: dict[str, str] = {}
        for r in self.m.vehicle.select().namedtuples().iterator():
            v = rows.vehicle(r)
            vehicles[v.plate] = v
            for t in v.rfid_tags:
                tags[t] = v.plate
        machines: dict[str, Nrmm] = {}
        machine_plates: dict[str, str] = {}
        machine_tags: dict[str, str] = {}
        for r in self.m.nrmm.select().namedtuples().iterator():
            n = rows.nrmm(r)
            machines[n.registry_no] = n
            if n.plate:
                machine_plates[n.plate] = n.registry_no
            for t in n.rfid_tags:
                machine_tags[t] = n.registry_no
        return {
            "vehicles": vehicles,
            "tags": tags,
            "blacklist": {r.plate: rows.black(r) for r in self.m.blacklist.select().namedtuples()},
            "machines": machines,
            "machine_plates": machine_plates,
            "machine_tags": machine_tags,
        }
