"""The registry's SQLite file: its tables, their upgrades, and the one lock on them.

It lives apart from the ledger (WAL) so the gate keeps deciding offline and a
corrupt ledger cannot take the whitelist with it. A registry written by an
older edged opens and keeps its data: missing columns are added with their
defaults before anything reads them (``migrate``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import peewee as pw

from edged.logs import get_logger

log = get_logger("registry")


def make_models(db: pw.Database) -> SimpleNamespace:
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
        fleet = pw.CharField(default="")
        engine_no = pw.CharField(default="")
        cargo = pw.CharField(default="")
        category = pw.CharField(default="transport", index=True)
        rfid_tags = pw.TextField(default="")  # comma-joined, upper-case
        documents = pw.TextField(default="{}")  # JSON object: kind -> sha256
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
        env_code = pw.CharField(default="")
        made_on = pw.CharField(default="")
        fuel = pw.CharField(default="diesel")
        plate = pw.CharField(default="", index=True)
        rfid_tags = pw.TextField(default="")
        documents = pw.TextField(default="{}")
        valid_until = pw.CharField(null=True)
        source = pw.CharField(default="")
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
        approved_at = pw.CharField(null=True)

        class Meta:
            table_name = "approval"

    class AlertRow(Base):
        level = pw.CharField()
        set_by = pw.CharField()
        set_at = pw.CharField()
        reason = pw.TextField(default="")
        valid_from = pw.CharField(null=True)
        valid_until = pw.CharField(null=True)
        superseded_by = pw.IntegerField(null=True, index=True)  # a later entry covers it all

        class Meta:
            table_name = "alert_level"

    class CargoRow(Base):
        plate = pw.CharField(index=True)
        cargo = pw.CharField()
        valid_from = pw.CharField()
        valid_until = pw.CharField()
        until_ts = pw.FloatField(index=True)  # valid_until as epoch seconds, to filter on
        uses = pw.IntegerField(null=True)
        used = pw.IntegerField(default=0)
        used_by_passage = pw.CharField(null=True)
        declared_by = pw.CharField()
        declared_at = pw.CharField()
        tag = pw.CharField(null=True, index=True)  # a waybill card's EPC (plate then '')

        class Meta:
            table_name = "cargo_declaration"

    return SimpleNamespace(
        vehicle=VehicleRow,
        blacklist=BlacklistRow,
        nrmm=NrmmRow,
        approval=ApprovalRow,
        alert=AlertRow,
        cargo=CargoRow,
        all=[VehicleRow, BlacklistRow, NrmmRow, ApprovalRow, AlertRow, CargoRow],
    )


# Columns a registry written by an older edged lacks, with their SQL declaration.
_ADDED: dict[str, dict[str, str]] = {
    "vehicle": {
        "engine_no": "TEXT NOT NULL DEFAULT ''",
        "cargo": "TEXT NOT NULL DEFAULT ''",
        "category": "TEXT NOT NULL DEFAULT 'transport'",
    },
    "nrmm": {
        "env_code": "TEXT NOT NULL DEFAULT ''",
        "made_on": "TEXT NOT NULL DEFAULT ''",
        "fuel": "TEXT NOT NULL DEFAULT 'diesel'",
        "plate": "TEXT NOT NULL DEFAULT ''",
        "rfid_tags": "TEXT NOT NULL DEFAULT ''",
        "documents": "TEXT NOT NULL DEFAULT '{}'",
        "valid_until": "TEXT",
        "source": "TEXT NOT NULL DEFAULT ''",
    },
    "approval": {
        "direction": "TEXT NOT NULL DEFAULT 'any'",
        "uses": "INTEGER NOT NULL DEFAULT 1",
        "used": "INTEGER NOT NULL DEFAULT 0",
        "ref": "TEXT",
        "approved_at": "TEXT",
    },
    "alert_level": {
        "valid_from": "TEXT",
        "valid_until": "TEXT",
        "superseded_by": "INTEGER",
    },
    "cargo_declaration": {"tag": "TEXT"},
}


def migrate(db: pw.SqliteDatabase) -> list[str]:
    """Bring an older registry file to the current tables; returns what was done.

    Runs before ``create_tables``, which would otherwise index columns that do
    not exist yet. Every step is idempotent, so an interrupted upgrade is
    finished by the next start.
    """
    done: list[str] = []
    with db.atomic():
        for table, added in _ADDED.items():
            if not db.table_exists(table):
                continue
            have = {c.name for c in db.get_columns(table)}
            if table == "vehicle" and "haulier" in have and "fleet" not in have:
                db.execute_sql("ALTER TABLE vehicle RENAME COLUMN haulier TO fleet")
                done.append("vehicle.haulier renamed fleet")
            for name, decl in added.items():
                if name not in have:
                    db.execute_sql(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
                    done.append(f"{table}.{name} added")
            if table == "approval" and "used" not in have:
                # an old one-time pass already used counts as used up
                db.execute_sql("UPDATE approval SET used = 1 WHERE used_at IS NOT NULL")
            if table == "alert_level":
                # an old entry was "set now, until replaced"
                db.execute_sql(
                    "UPDATE alert_level SET valid_from = set_at WHERE valid_from IS NULL"
                )
        if db.table_exists("vehicle"):
            done += _legacy_documents(db)
    if done:
        log.info("registry_upgraded", steps=len(done), what="; ".join(done))
    return done


def _legacy_documents(db: pw.SqliteDatabase) -> list[str]:
    """Older registries kept free-text document references (a JSON list) where photos are
    now kept by SHA-256 (a JSON object). The text is moved to ``legacy_documents``,
    kept, and the photos must be attached again (``edged registry photo``)."""
    (n,) = db.execute_sql(
        "SELECT count(*) FROM vehicle WHERE documents LIKE '[%' AND documents != '[]'"
    ).fetchone()
    if n:
        have = {c.name for c in db.get_columns("vehicle")}
        if "legacy_documents" not in have:
            db.execute_sql("ALTER TABLE vehicle ADD COLUMN legacy_documents TEXT")
        db.execute_sql(
            "UPDATE vehicle SET legacy_documents = documents"
            " WHERE documents LIKE '[%' AND documents != '[]'"
        )
        log.warning(
            "registry_document_refs_kept",
            vehicles=n,
            hint="document references of an older edged are kept in legacy_documents; attach"
            " the photos with: edged registry photo PLATE --env-list FILE --licence FILE",
        )
    (m,) = db.execute_sql("SELECT count(*) FROM vehicle WHERE documents LIKE '[%'").fetchone()
    if m:
        db.execute_sql("UPDATE vehicle SET documents = '{}' WHERE documents LIKE '[%'")
        return [f"vehicle.documents: {m} rows to kind -> sha256"]
    return []


class RegistryDb:
    """The open registry file: connection, models, and the lock every part takes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.db = pw.SqliteDatabase(
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
        self.m = make_models(self.db)
        with self.lock:
            self.db.connect()
            self.upgraded = migrate(self.db)
            self.db.create_tables(self.m.all)

    def data_version(self) -> int:
        """Changes when another connection (the CLI) commits: the snapshot is then stale."""
        return int(self.db.execute_sql("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        with self.lock:
            if not self.db.is_closed():
                self.db.close()
