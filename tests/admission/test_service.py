"""The registry part of the box: seeded once from the demo's files, changes audited."""

from __future__ import annotations

import json
from pathlib import Path

from edged.admission.config import RegistryConfig
from edged.admission.service import RegistryService
from edged.app.events import EventSink
from edged.ledger.store import LedgerStore

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_a_new_registry_is_seeded_from_every_list_once(tmp_path: Path) -> None:
    cfg = RegistryConfig(
        seed_csv=str(CONFIG / "demo-vehicles.csv"),
        seed_plant_vehicles_csv=str(CONFIG / "demo-plant-vehicles.csv"),
        seed_blacklist_csv=str(CONFIG / "demo-blacklist.csv"),
        seed_machinery_csv=str(CONFIG / "demo-machinery.csv"),
    )
    sink = EventSink()
    with LedgerStore(tmp_path / "ledger.db") as ledger:
        sink.attach_ledger(ledger)
        service = RegistryService(cfg, tmp_path, sink)
        service.start()
        reg = service.registry
        assert reg is not None and reg.path == tmp_path / "registry.db"
        assert (reg.count_vehicles("transport"), reg.count_vehicles("in_plant")) == (4, 1)
        assert (len(reg.list_blacklist()), reg.count_machines()) == (1, 3)
        truck = reg.get_vehicle("冀B12345")
        assert (truck.registered_on, truck.fleet, truck.cargo, truck.national_stage) == (
            "2021-06-18",
            "唐山运达物流",
            "焦煤",
            "6",
        )
        assert reg.documents.root == tmp_path / "documents"
        for kind in ("env_list", "licence"):  # the demo's photos, copied from beside the CSV
            assert reg.documents.verify(truck.document(kind)), kind
        assert reg.get_machine("HB130203001").document("nameplate") is not None
        reg.delete_vehicle("冀A8K302", actor="op")
        service.stop()
        service.start()  # a restart does not seed again over the operator's changes
        assert service.registry.get_vehicle("冀A8K302") is None
        service.stop()
        rows = [json.loads(f) for *_x, f in ledger.audit_rows()]
    assert [(r["actor"], r["action"]) for r in rows] == [
        ("seed", "vehicles.upsert"),
        ("seed", "plant_vehicles.upsert"),
        ("seed", "blacklist.upsert"),
        ("seed", "nrmm.upsert"),
        ("op", "vehicle.delete"),
    ]
