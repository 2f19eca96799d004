"""The registry as a running part of the box, seeded from CSV on a first start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edged.admission.config import RegistryConfig
from edged.admission.csv_import import import_csv
from edged.admission.registry import Registry
from edged.logs import get_logger

log = get_logger("registry")


class RegistryService:
    """Supervised part ``registry``: one registry for every lane of the box."""

    name = "registry"

    def __init__(self, cfg: RegistryConfig, data_dir: str | Path, sink: Any) -> None:
        self.cfg = cfg
        self.path = Path(data_dir) / cfg.db_path  # an absolute db_path stays itself
        self.documents_dir = Path(data_dir) / cfg.documents_dir
        self.sink = sink
        self.registry: Registry | None = None

    def start(self) -> None:
        reg = self.registry = Registry(
            self.path,
            audit=self.sink.audit,
            documents_dir=self.documents_dir,
            document_max_bytes=self.cfg.document_max_mb * 1024 * 1024,
        )
        if reg.count_vehicles() or reg.count_machines() or reg.list_blacklist():
            return  # seeds fill a new registry only; later changes are the operator's
        for csv, kind in (
            (self.cfg.seed_csv, "vehicles"),
            (self.cfg.seed_plant_vehicles_csv, "plant_vehicles"),
            (self.cfg.seed_blacklist_csv, "blacklist"),
            (self.cfg.seed_machinery_csv, "nrmm"),
        ):
            if csv:
                report = import_csv(
                    reg, csv, kind, "upsert", actor="seed", max_rows=self.cfg.import_max_rows
                )
                log.info("registry_seeded", file=csv, kind=kind, report=str(report))

    def stop(self) -> None:
        if self.registry is not None:
            self.registry.close()
            self.registry = None
