"""What a ledger command works on: the database, images, zone, site and gate names.

Every ledger command takes ``--db FILE`` so it works on a copy (an inspector's
laptop, a backup) without a config file; without it, the paths come from the
config (``[ledger]``, ``[site]``, ``daemon.data_dir``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any

from edged.ledger.query import zone
from edged.ledger.retention import LedgerConfig


@dataclass
class Settings:
    db: Path
    images: Path | None
    tz: tzinfo
    site: str
    gate: str
    ledger: LedgerConfig
    data_dir: Path  # where the device key is (keys/): daemon.data_dir, or beside --db
    clips: Path | None = None  # the clip folder (clips.dir), when a config names one
    clip_retention_days: int = 183
    plant: str = ""  # site.name, as reports print it (else the site id)
    gate_name: str = ""  # site.gate_name (else the gate id)
    cfg: Any = None  # the whole config, when one was read


def settings(args: argparse.Namespace) -> Settings:
    """--db/--images win; otherwise the config file; a bare --db needs no config at all."""
    tz_name = getattr(args, "tz", None)
    clips = getattr(args, "clips_dir", None)
    if getattr(args, "db", None):
        images = getattr(args, "images_dir", None)
        return Settings(
            Path(args.db),
            Path(images) if images else None,
            zone(tz_name or "Asia/Shanghai"),
            getattr(args, "site", None) or "site",
            "gate",
            LedgerConfig(),
            Path(args.db).parent,
            clips=Path(clips) if clips else None,
            plant=getattr(args, "plant", None) or "",
            gate_name=getattr(args, "gate_name", None) or "",
        )
    from edged.config.load import load_config

    cfg = load_config(getattr(args, "config", None))
    lc = cfg.ledger if isinstance(cfg.ledger, LedgerConfig) else LedgerConfig(**(cfg.ledger or {}))
    data_dir = Path(cfg.daemon.data_dir)  # config paths are relative to it, unless absolute
    images = getattr(args, "images_dir", None)
    return Settings(
        data_dir / lc.db_path,
        Path(images) if images else data_dir / lc.images_dir,
        zone(tz_name or cfg.site.timezone),
        cfg.site.id,
        cfg.site.gate_id,
        lc,
        data_dir,
        clips=Path(clips) if clips else data_dir / cfg.clips.dir,
        clip_retention_days=cfg.clips.retention_days,
        plant=getattr(args, "plant", None) or cfg.site.name or cfg.site.id,
        gate_name=getattr(args, "gate_name", None) or cfg.site.gate_name or cfg.site.gate_id,
        cfg=cfg,
    )


def documents_dir(s: Settings, given: str | None = None) -> Path:
    """The registry's document photos (随车清单, 行驶证, 发动机铭牌): ``--documents-dir``,
    else ``registry.documents_dir``, else ``documents`` beside the ledger."""
    if given:
        return Path(given)
    configured = getattr(getattr(s.cfg, "registry", None), "documents_dir", None)
    if configured:
        p = Path(configured)
        return p if p.is_absolute() else s.data_dir / p
    return s.data_dir / "documents"


def need_db(s: Settings) -> int | None:
    if not s.db.is_file():
        print(
            f"edged: ledger database {s.db} not found (pass --db FILE or set ledger.db_path)",
            file=sys.stderr,
        )
        return 2
    return None


def db_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", metavar="FILE", help="ledger database (default: ledger.db_path from the config)"
    )
    p.add_argument(
        "--tz",
        metavar="ZONE",
        help="time zone for dates and reports (default: site.timezone, Asia/Shanghai)",
    )
