"""A broker that goes away every few seconds for a minute: every passage still arrives.

Plant uplinks drop for seconds at a time (a 4G router re-registering, a
broker being restarted by IT). Passages keep coming in the meantime, and
each outage can cut a QoS 1 window in flight. After the last outage the
backend must hold every ledger row's event id; duplicates on the wire are
allowed (QoS 1), gaps are not.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from pathlib import Path

import pytest

from tests.reliability import summary
from tests.reliability.daemon import Collector, Instance, event_ids, persistent_broker, plate

FLAP_FOR_S = 60.0


@pytest.mark.reliability
@pytest.mark.slow
def test_broker_flapping_for_a_minute_loses_no_passage(tmp_path: Path) -> None:
    seed = int(os.environ.get("EDGED_RELIABILITY_SEED") or random.randrange(2**32))
    print(f"broker flap scenario seed {seed} (replay: EDGED_RELIABILITY_SEED={seed})")
    rng = random.Random(seed)
    t0 = time.monotonic()
    broker = persistent_broker(tmp_path / "mosquitto")
    broker.start()
    collector = Collector(broker.port).start()
    gate = Instance(tmp_path / "gate", broker.port, gate="flap")
    acked: dict[str, str] = {}
    numbers = itertools.count(1)
    stop = threading.Event()
    errors: list[str] = []

    def inject() -> None:
        while not stop.is_set():
            p = plate(next(numbers))
            try:
                reply = gate.passage(p, timeout=15)
            except (OSError, ValueError) as exc:  # the broker must never stall the gate
                errors.append(f"{p}: {exc!r}")
                return
            if not reply.get("ok"):
                errors.append(f"{p}: {reply}")
                return
            acked[p] = reply["event_id"]
            time.sleep(0.05)

    flaps = 0
    injector = threading.Thread(target=inject, daemon=True)
    try:
        gate.start()
        injector.start()
        end = time.monotonic() + FLAP_FOR_S
        while time.monotonic() < end:
            time.sleep(rng.uniform(1.5, 3.0))  # up: long enough to reconnect, not to drain
            broker.stop()
            flaps += 1
            time.sleep(rng.uniform(0.5, 1.5))
            broker.start()
        stop.set()
        injector.join(20)
        rows = gate.ledger_rows()
        missing = collector.wait_for({(gate.site, gate.gate): event_ids(rows)}, timeout=60)
        stats = gate.status().get("outbox") or {}
        rc = gate.stop()
    finally:
        stop.set()
        if gate.running:
            gate.kill()
        collector.stop()
        broker.stop()

    ids = set(event_ids(rows))
    seen = collector.ids(gate.site, gate.gate)
    summary.record(
        "broker_flap",
        faults=flaps,
        passages=len(acked),
        rows=len(rows),
        delivered=len(ids & seen),
        lost=len(ids - seen),
        seconds=time.monotonic() - t0,
        note=f"seed {seed}; {collector.messages - len(seen)} duplicates on the wire;"
        f" {stats.get('connects')} connects",
    )
    assert not errors, f"passages refused while the broker flapped: {errors}"
    assert rc == 0, gate.log_tail()
    assert set(acked.values()) <= ids, "acknowledged passages missing from the ledger"
    assert len(acked) >= 100, f"only {len(acked)} passages in {FLAP_FOR_S} s"
    assert not missing, f"{len(ids - seen)} passages never reached the backend"
