"""A registry file written by an older edged opens, upgrades and keeps its data."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

from edged.admission.model import Nrmm, Vehicle
from edged.admission.registry import Registry

TZ = timezone(timedelta(hours=8))
SET_AT = datetime(2026, 11, 20, 9, 0, tzinfo=TZ)

# The tables as the edged before national fields wrote them (peewee's DDL, abridged).
OLD_SCHEMA = [
    "CREATE TABLE vehicle (plate VARCHAR(255) NOT NULL PRIMARY KEY, plate_colour VARCHAR(255)"
    " NOT NULL, vin VARCHAR(255) NOT NULL, registered_on VARCHAR(255) NOT NULL, brand_model"
    " VARCHAR(255) NOT NULL, vehicle_type VARCHAR(255) NOT NULL, vehicle_class VARCHAR(255)"
    " NOT NULL, fuel VARCHAR(255) NOT NULL, emission_stage VARCHAR(255), hazardous INTEGER NOT"
    " NULL, haulier VARCHAR(255) NOT NULL, rfid_tags TEXT NOT NULL, documents TEXT NOT NULL,"
    " valid_until VARCHAR(255), source VARCHAR(255) NOT NULL, updated_at VARCHAR(255))",
    "CREATE INDEX vehicle_vin ON vehicle (vin)",
    "CREATE TABLE nrmm (registry_no VARCHAR(255) NOT NULL PRIMARY KEY, machine_type"
    " VARCHAR(255) NOT NULL, emission_stage VARCHAR(255), owner VARCHAR(255) NOT NULL,"
    " updated_at VARCHAR(255))",
    "CREATE TABLE alert_level (id INTEGER NOT NULL PRIMARY KEY, level VARCHAR(255) NOT NULL,"
    " set_by VARCHAR(255) NOT NULL, set_at VARCHAR(255) NOT NULL, reason TEXT NOT NULL)",
    # cargo declarations before waybill cards
    "CREATE TABLE cargo_declaration (id INTEGER NOT NULL PRIMARY KEY, plate VARCHAR(255) NOT"
    " NULL, cargo VARCHAR(255) NOT NULL, valid_from VARCHAR(255) NOT NULL, valid_until"
    " VARCHAR(255) NOT NULL, until_ts REAL NOT NULL, uses INTEGER, used INTEGER NOT NULL,"
    " used_by_passage VARCHAR(255), declared_by VARCHAR(255) NOT NULL, declared_at"
    " VARCHAR(255) NOT NULL)",
]


def _old_registry(path: Path) -> None:
    db = sqlite3.connect(path)
    for stmt in OLD_SCHEMA:
        db.execute(stmt)
    db.execute(
        "INSERT INTO vehicle VALUES ('冀A12345', 'yellow', 'LZZ1CLVB8JD123456', '2019-05-20',"
        " '', '', 'heavy_truck', 'diesel', '国5', 0, '唐山运输', 'E2001', '[\"qd-001.jpg\"]',"
        " NULL, 'csv', NULL)"
    )
    db.execute(
        "INSERT INTO vehicle VALUES ('冀B54321', 'yellow', '', '', '', '', 'heavy_truck', 'gas',"
        " '国6b', 0, '', '', '[]', NULL, '', NULL)"
    )
    db.execute("INSERT INTO nrmm VALUES ('HB130001', '装载机', '国3', '焦化厂', NULL)")
    db.execute(
        "INSERT INTO alert_level(level, set_by, set_at, reason) VALUES"
        " ('yellow', 'a', ?, ''), ('orange', '环保专员', ?, '市预警通知')",
        ((SET_AT - timedelta(days=1)).isoformat(), SET_AT.isoformat()),
    )
    db.commit()
    db.close()


def test_an_old_registry_opens_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    _old_registry(path)
    with Registry(path) as reg:
        v = reg.get_vehicle("冀A12345")
        assert (v.fleet, v.vin, v.registered_on, v.emission_stage) == (
            "唐山运输",
            "LZZ1CLVB8JD123456",
            "2019-05-20",
            "国5",
        ), "the haulier column became fleet with its data"
        assert (v.engine_no, v.cargo, v.category, v.documents) == ("", "", "transport", {})
        assert reg.get_vehicle("冀B54321").fuel == "gas"
        m = reg.get_machine("HB130001")
        assert (m.machine_type, m.emission_stage, m.owner, m.fuel) == (
            "装载机",
            "国3",
            "焦化厂",
            "diesel",
        )
        _yellow, orange = reg.list_alerts()  # each was "from when it was set, until replaced"
        assert (orange.valid_from, orange.valid_until, orange.reason) == (
            SET_AT,
            None,
            "市预警通知",
        )
        assert reg.alert_state(SET_AT - timedelta(hours=1)).level == "yellow"
        assert reg.alert_state(SET_AT + timedelta(days=30)).level == "orange"
        # the free-text document reference is kept beside the new photo map
        (legacy,) = (
            sqlite3.connect(path)
            .execute("SELECT legacy_documents FROM vehicle WHERE plate = '冀A12345'")
            .fetchone()
        )
        assert legacy == '["qd-001.jpg"]'
        # and the upgraded file takes the new fields
        reg.upsert_vehicles([Vehicle("冀C00001", engine_no="wp10.336e53", cargo="焦炭")])
        reg.apply("nrmm", "upsert", [Nrmm("HB130002", plate="冀A9999X", rfid_tags=("e9",))])
        assert reg.get_vehicle("冀C00001").engine_no == "WP10.336E53"
        assert reg.snapshot().machine_by_tag("E9").registry_no == "HB130002"
        # cargo declarations gained their waybill card
        assert "cargo_declaration.tag added" in reg.rdb.upgraded
        until = datetime.now(TZ) + timedelta(hours=1)
        d = reg.declare_cargo("", "焦炭", until, "wms", tag="e200aa01")
        assert (d.tag, d.plate) == ("E200AA01", "")
    with Registry(path) as reg:  # a second start finds nothing left to do
        assert reg.rdb.upgraded == []
        assert reg.get_vehicle("冀A12345").fleet == "唐山运输"


def test_new_fields_round_trip(tmp_path: Path) -> None:
    v = Vehicle(
        "冀A12345",
        vin="LZZ1CLVB8JD123456",
        registered_on="2019-05-20",
        engine_no="WP10.336E53",
        fleet="唐山运达物流",
        cargo="焦炭",
        emission_stage="国6b",
        documents={"env_list": "a" * 64},
    )
    with Registry(tmp_path / "r.db") as reg:
        reg.upsert_vehicles([v])
        got = reg.get_vehicle("冀A12345")
        assert got == v.__class__(**{**vars(v), "updated_at": got.updated_at})
        assert got.document("env_list") == "a" * 64 and got.document("licence") is None
