"""An in-process gate for the reliability scenarios: real parts, mock GPIO pins."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from edged.app.supervisor import Supervisor
from edged.assembly import Gate
from edged.config.load import parse
from edged.lane.worker import GateWorker


def base_toml(tmp_path: Path) -> str:
    """The config every test gate starts from: site p1, gate g1, data under tmp_path."""
    return f"""
[site]
id = "p1"
gate_id = "g1"
[daemon]
data_dir = "{tmp_path / "data"}"
[ledger]
db_path = "ledger.db"
images_dir = "images"
"""


@contextlib.contextmanager
def running_gate(tmp_path: Path, extra_toml: str, parts: list[str]) -> Iterator[Any]:
    """Start ``parts`` of a gate configured by ``extra_toml`` (site p1, gate g1)."""
    old = Device.pin_factory
    Device.pin_factory = MockFactory()
    cfg = parse(base_toml(tmp_path) + extra_toml, "test.toml")
    daemon = SimpleNamespace(started_at=time.time(), supervisor=Supervisor())
    gate = Gate(cfg, daemon)
    by_name = {p.name: p for p, _ in gate.parts()}
    started = []
    try:
        for name in parts:
            by_name[name].start()
            started.append(by_name[name])
        yield gate
    finally:
        for part in reversed(started):
            part.stop()
        Device.pin_factory = old


@contextlib.contextmanager
def held_worker(name: str = "held-worker") -> Iterator[tuple[GateWorker, threading.Event]]:
    """A gate worker busy with a long job until the event is set: jobs waited on time out."""
    worker = GateWorker(name)
    worker.start()
    release = threading.Event()
    worker.submit(release.wait, 20)
    try:
        yield worker, release
    finally:
        release.set()
        worker.stop()
