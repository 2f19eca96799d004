"""``[registry]``: where the local vehicle registry lives."""

from __future__ import annotations

from dataclasses import dataclass, field

from edged.config.schema import doc


@dataclass(frozen=True)
class RegistryConfig:
    """Where the local registry lives; it must work with no network."""

    db_path: str = field(
        default="registry.db",
        metadata=doc("Registry database, relative to daemon.data_dir unless absolute"),
    )
    seed_csv: str = field(
        default="",
        metadata=doc(
            "CSV of vehicles imported (upsert) at start when the registry is empty; empty: none"
        ),
    )
    seed_blacklist_csv: str = field(
        default="",
        metadata=doc(
            "CSV of blacklist entries imported at start when the registry is empty; empty: none"
        ),
    )
    seed_machinery_csv: str = field(
        default="",
        metadata=doc(
            "CSV of non-road machinery imported at start when the registry is empty; empty: none"
        ),
    )
    seed_plant_vehicles_csv: str = field(
        default="",
        metadata=doc(
            "CSV of in-plant vehicles (厂内运输车辆) imported at start when the registry is"
            " empty; empty: none"
        ),
    )
    documents_dir: str = field(
        default="documents",
        metadata=doc(
            "Document photos (随车清单, 行驶证, 发动机铭牌), stored by SHA-256; relative to"
            " daemon.data_dir unless absolute"
        ),
    )
    document_max_mb: int = field(
        default=20,
        metadata=doc("Largest document photo accepted, in MB", min=1, max=200),
    )
    import_max_rows: int = field(
        default=2_000_000,
        metadata=doc(
            "Most rows one CSV import may hold (the seed files here); over it: refused", min=1
        ),
    )
