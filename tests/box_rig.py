"""An in-process box for tests: real parts, mock GPIO pins, data under a temp dir."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from edged.app.supervisor import Supervisor
from edged.app.wiring import build
from edged.config.load import parse
from edged.lane.passage import PassageOutcome, Trigger
from edged.lane.worker import GateWorker


def base_toml(tmp_path: Path, daemon: str = "allow_simulation = true") -> str:
    """The config every test box starts from: site p1, gate g1, data under tmp_path.

    Simulated passages are allowed (tests drive passages through the control
    socket as the reliability suite does); they never move the barrier.
    ``daemon`` replaces the extra lines of the ``[daemon]`` section.
    """
    return f"""
[site]
id = "p1"
gate_id = "g1"
[daemon]
data_dir = "{tmp_path / "data"}"
{daemon}
[ledger]
db_path = "ledger.db"
images_dir = "images"
"""


@contextlib.contextmanager
def running_box(
    tmp_path: Path,
    extra_toml: str,
    parts: list[str] | None = None,
    daemon: str = "allow_simulation = true",
) -> Iterator[Any]:
    """Build a box from ``extra_toml`` (site p1, gate g1) and start its parts.

    ``parts``: only the parts of these names (in the box's start order);
    default every part. The box's own supervisor starts and stops them, and
    a part that fails to start fails the test at once.
    """
    old = Device.pin_factory
    Device.pin_factory = MockFactory()
    cfg = parse(base_toml(tmp_path, daemon) + extra_toml, "test.toml")
    supervisor = Supervisor()
    box = build(cfg, supervisor)
    if parts is not None:
        known = [slot.component.name for slot in supervisor._slots]
        missing = set(parts) - set(known)
        assert not missing, f"no parts {sorted(missing)} in this box; it has {known}"
        supervisor._slots = [s for s in supervisor._slots if s.component.name in parts]
    try:
        supervisor.start_all()
        failed = {n: s for n, s in supervisor.states().items() if s["state"] != "running"}
        assert not failed, f"parts did not start: {failed}"
        yield box
    finally:
        supervisor.stop_all(10.0)
        Device.pin_factory = old


def passage(
    box: Any,
    plate: str | None = None,
    tags: tuple[str, ...] = (),
    direction: str | None = None,
    lane: str | None = None,
    wait: float = 10.0,
) -> PassageOutcome:
    """One passage on a lane (the only one, or the one named), as a loop would start it."""
    return box.lane(lane).run(Trigger("test", plate, tags, direction), wait=wait)


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
