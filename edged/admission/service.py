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
        path = Path(cfg.db_path)
        self.path = path if path.is_absolute() else Path(data_dir) / path
        self.sink = sink
        self.registry: Registry | None = None

    def start(self) -> None:
        self.registry = Registry(self.path, audit=self.sink.audit)
        if not self.registry.list_vehicles():
            for csv, kind in (
                (self.cfg.seed_csv, "vehicles"),
                (self.cfg.seed_blacklist_csv, "blacklist"),
            ):
                if csv:
                    report = import_csv(
                        self.registry,
                        csv,
                        kind,
                        "upsert",
                        actor="seed",
                        max_rows=self.cfg.import_max_rows,
                    )
                    log.info("registry_seeded", file=csv, kind=kind, report=str(report))

    def stop(self) -> None:
        if self.registry is not None:
            self.registry.close()
            self.registry = None
