"""The ledger as a running part of the box: opened first, closed last, swept hourly.

The box has one ledger (``ledger.db``) however many lanes it drives; the
store serialises writers behind its own lock. This part owns opening it,
the image retention keeper that goes with it, and the hourly image sweep,
and reports the chain heads for the status.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edged.ledger.retention import LedgerConfig, RetentionKeeper
from edged.ledger.store import LedgerStore
from edged.logs import get_logger

log = get_logger("ledger")


class LedgerService:
    """Supervised part ``ledger``: the store, its retention keeper and the image sweep."""

    name = "ledger"

    def __init__(self, cfg: LedgerConfig, data_dir: str | Path, sink: Any) -> None:
        self.cfg = cfg
        self.path = _under(data_dir, cfg.db_path)
        self.images_dir = _under(data_dir, cfg.images_dir)
        self.sink = sink
        self.store: LedgerStore | None = None
        self.retention: RetentionKeeper | None = None

    def start(self) -> None:
        self.store = LedgerStore(self.path, events_keep=self.cfg.events_keep)
        # The keeper measures free space where images really go: a relative
        # images_dir is under data_dir, not the service's working directory.
        self.retention = RetentionKeeper(
            self.store,
            dataclasses.replace(self.cfg, images_dir=str(self.images_dir)),
            event=self.sink.event,
        )
        self.sink.attach_ledger(self.store)

    def stop(self) -> None:
        self.sink.detach_ledger()
        if self.store is not None:
            self.store.close()
            self.store = None

    def sweep_images(self) -> None:
        """Remove images past their age or over budget; a failure never stops passages."""
        try:
            if self.retention is not None:
                self.retention.sweep()
        except Exception as exc:
            log.error("images_sweep_failed", error=repr(exc), hint="check the images folder")

    def status(self) -> dict[str, Any]:
        heads = self.store.heads() if self.store is not None else {}
        return {"ledger_head": {k: {"seq": v[0], "hash": v[1]} for k, v in heads.items()}}


def _under(data_dir: str | Path, value: str) -> Path:
    """Paths in the config that are not absolute are under ``daemon.data_dir``."""
    p = Path(value)
    return p if p.is_absolute() else Path(data_dir) / p
