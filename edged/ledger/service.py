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

from edged.devicekey import DeviceKey, DeviceKeyError, key_path
from edged.devicekey import create as create_device_key
from edged.ledger.attest import Attestation, attest
from edged.ledger.retention import LedgerConfig, RetentionKeeper
from edged.ledger.store import LedgerStore
from edged.ledger.trips import Trips
from edged.logs import get_logger

log = get_logger("ledger")


class LedgerService:
    """Supervised part ``ledger``: the store, its retention keeper, the image sweep and the
    device key that signs where the chains stand (attestations)."""

    name = "ledger"

    def __init__(self, cfg: LedgerConfig, data_dir: str | Path, sink: Any) -> None:
        self.cfg = cfg
        self.data_dir = Path(data_dir)
        self.path = _under(data_dir, cfg.db_path)
        self.images_dir = _under(data_dir, cfg.images_dir)
        self.sink = sink
        self.store: LedgerStore | None = None
        self.retention: RetentionKeeper | None = None
        self.device_key: DeviceKey | None = None
        self.trips = Trips()  # vehicles in the plant now, and the entry an exit closes

    def start(self) -> None:
        self.store = LedgerStore(self.path, events_keep=self.cfg.events_keep)
        self.device_key = self._device_key()
        n = self.trips.load(self.store)
        log.info("in_plant_loaded", vehicles=n)
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

    def _device_key(self) -> DeviceKey | None:
        """The box's key, made on the first start; no key means no attestations, never no
        passages."""
        try:
            key, made = create_device_key(key_path(self.data_dir))
        except (DeviceKeyError, OSError) as exc:
            log.error(
                "device_key_unusable",
                error=str(exc),
                hint="ledger heads are not attested: the key must belong to the service user"
                " (chown edged keys/device-ed25519.pem, mode 600)",
            )
            return None
        if made:
            log.info("device_key_created", public_key=key.public_hex)
        return key

    def attest(self, site: str, gate: str) -> Attestation | None:
        """Sign where both chains stand now (stored in the ledger and beside it)."""
        if self.store is None or self.device_key is None:
            return None
        return attest(self.store, self.device_key, site, gate)

    def sweep_images(self) -> None:
        """Remove images past their age or over budget; a failure never stops passages."""
        try:
            if self.retention is not None:
                self.retention.sweep()
        except Exception as exc:
            log.error("images_sweep_failed", error=repr(exc), hint="check the images folder")

    def status(self) -> dict[str, Any]:
        heads = self.store.heads() if self.store is not None else {}
        return {
            "ledger_head": {k: {"seq": v[0], "hash": v[1]} for k, v in heads.items()},
            "device_key": None if self.device_key is None else self.device_key.public_hex,
        }


def _under(data_dir: str | Path, value: str) -> Path:
    """Paths in the config that are not absolute are under ``daemon.data_dir``."""
    p = Path(value)
    return p if p.is_absolute() else Path(data_dir) / p
