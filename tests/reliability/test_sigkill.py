"""50 SIGKILLs at random moments during continuous passages.

A power cut or an OOM kill gives the daemon no chance to tidy up, and it
can land anywhere: between the ledger commit and the relay, between the
relay and the outbox, in the middle of an outbox PUBACK batch. What must
hold afterwards: every passage the control socket acknowledged is in the
ledger exactly once, the chain verifies, and every ledger row (also those
written by a passage killed before its reply) reaches the backend.

The moments are random but seeded; the seed is printed, and
``EDGED_RELIABILITY_SEED`` replays a run.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.broker import Mosquitto
from tests.reliability import summary
from tests.reliability.daemon import Collector, Instance, event_ids, plate

KILLS = 50
INJECTORS = 2  # two callers, so a kill also finds a passage waiting in the gate queue


@pytest.mark.reliability
@pytest.mark.slow
def test_sigkill_during_passages_loses_and_duplicates_nothing(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    seed = int(os.environ.get("EDGED_RELIABILITY_SEED") or random.randrange(2**32))
    print(f"sigkill scenario seed {seed} (replay: EDGED_RELIABILITY_SEED={seed})")
    rng = random.Random(seed)
    t0 = time.monotonic()
    collector = Collector(mosquitto.port).start()
    gate = Instance(tmp_path / "gate", mosquitto.port)

    acked: dict[str, tuple[int, str]] = {}  # plate -> (seq, event_id) from the reply
    lock = threading.Lock()
    numbers = itertools.count(1)
    stop = threading.Event()
    failed_calls = 0

    def inject() -> None:
        nonlocal failed_calls
        while not stop.is_set():
            p = plate(next(numbers))  # a fresh plate per try: a retry is a new vehicle
            try:
                reply = gate.passage(p, timeout=15)
            except (OSError, ValueError):  # no daemon, or killed before it replied
                with lock:
                    failed_calls += 1
                time.sleep(0.02)
                continue
            if reply.get("ok"):
                with lock:
                    acked[p] = (int(reply["seq"]), str(reply["event_id"]))

    gate.start()
    threads = [threading.Thread(target=inject, daemon=True) for _ in range(INJECTORS)]
    for t in threads:
        t.start()
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.0, 0.8))
            gate.kill()
            gate.start()
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(20)
        # The last start is the clean run: it must deliver everything, then stop cleanly.
        rows = gate.ledger_rows()
        expected = {(gate.site, gate.gate): event_ids(rows)}
        missing = collector.wait_for(expected, timeout=90)
        rc = gate.stop()
    finally:
        stop.set()
        if gate.running:
            gate.kill()
        collector.stop()

    rows = gate.ledger_rows()
    ids = event_ids(rows)
    plates = [f["plate"] for _s, f in rows]
    by_plate = {f["plate"]: (seq, f["event_id"]) for seq, f in rows}
    not_in_ledger = {p: v for p, v in acked.items() if by_plate.get(p) != v}
    seen = collector.ids(gate.site, gate.gate)
    lost = len(set(ids) - seen) + len(not_in_ledger)
    summary.record(
        "sigkill",
        faults=KILLS,
        passages=len(acked),
        rows=len(rows),
        delivered=len(set(ids) & seen),
        lost=lost,
        seconds=time.monotonic() - t0,
        note=f"seed {seed}; {len(rows) - len(acked)} rows from unanswered calls;"
        f" start {max(gate.startup_s):.1f} s max",
    )
    print(
        f"sigkill: {KILLS} kills, {len(acked)} acknowledged, {len(rows)} rows,"
        f" {failed_calls} calls refused or cut by a kill, {collector.messages} passage messages,"
        f" startup mean {sum(gate.startup_s) / len(gate.startup_s):.2f} s"
    )

    assert rc == 0, gate.log_tail()
    assert len(acked) >= KILLS, "too few passages to mean anything: is the gate worker stuck?"
    assert not not_in_ledger, f"acknowledged but not in the ledger as replied: {not_in_ledger}"
    assert [s for s, _f in rows] == list(range(1, len(rows) + 1))
    dup_ids = [k for k, n in Counter(ids).items() if n > 1]
    dup_plates = [k for k, n in Counter(plates).items() if n > 1]
    assert not dup_ids and not dup_plates, f"duplicated rows: {dup_ids or dup_plates}"
    result = gate.verify()
    assert result.ok, str(result.problem)
    assert not missing, (
        f"{len(set(ids) - seen)} ledger rows never reached the backend, e.g."
        f" {sorted(set(ids) - seen)[:5]}"
    )
