"""The gate's hourly image sweep: old snapshots go, and the ledger remembers they were purged."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace

from edged.assembly import Gate
from edged.config import parse
from edged.supervisor import Supervisor


def test_gate_tick_sweeps_images_past_their_age_on_the_worker(tmp_path: Path) -> None:
    cfg = parse(
        f"""
[site]
id = "p1"
gate_id = "g1"
[daemon]
data_dir = "{tmp_path / "data"}"
[camera]
source = "none"
[mqtt]
enabled = false
[ledger]
image_retention_days = 30
""",
        "test.toml",
    )
    gate = Gate(cfg, SimpleNamespace(started_at=time.time(), supervisor=Supervisor()))
    parts = {p.name: p for p, _ in gate.parts()}
    for name in ("ledger", "registry", "gate"):
        parts[name].start()
    try:
        day = tmp_path / "data" / "images" / "2026" / "01" / "02"
        day.mkdir(parents=True)
        old, new = day / "old.jpg", day / "new.jpg"
        old.write_bytes(b"x" * 100)
        new.write_bytes(b"y" * 100)
        past = time.time() - 40 * 86400
        os.utime(old, (past, past))

        gate.tick()  # too early: the first sweep waits for the gate to settle
        assert old.exists()
        gate._next_sweep = 0.0
        gate.tick()
        deadline = time.monotonic() + 5
        while old.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not old.exists() and new.exists()
        rows = (
            gate.ledger.raw_connection()
            .execute("SELECT path, reason FROM purged_images")
            .fetchall()
        )
        assert rows == [("2026/01/02/old.jpg", "age")]
    finally:
        for name in ("gate", "registry", "ledger"):
            parts[name].stop()
