"""The gate's hourly image sweep: old snapshots go, and the ledger remembers they were purged."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.gate_rig import running_gate

CONFIG = """
[camera]
source = "none"
[mqtt]
enabled = false
"""


def test_gate_tick_sweeps_images_past_their_age_on_the_worker(tmp_path: Path) -> None:
    with running_gate(tmp_path, CONFIG, ["ledger", "registry", "gate"]) as gate:
        day = tmp_path / "data" / "images" / "2026" / "01" / "02"
        day.mkdir(parents=True)
        old, new = day / "old.jpg", day / "new.jpg"
        old.write_bytes(b"x" * 100)
        new.write_bytes(b"y" * 100)
        past = time.time() - 400 * 86400  # past the default image retention
        os.utime(old, (past, past))

        gate.tick()  # too early: the first sweep waits for the gate to settle
        assert old.exists()
        gate._next_sweep = 0.0
        gate.tick()
        db = gate.ledger.raw_connection()

        def purged() -> list[tuple[str, str]]:
            return db.execute("SELECT path, reason FROM purged_images").fetchall()

        # the file goes first, then the purge is recorded: wait for both
        deadline = time.monotonic() + 10
        while (old.exists() or not purged()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not old.exists() and new.exists()
        assert purged() == [("2026/01/02/old.jpg", "age")]
