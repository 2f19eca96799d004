"""Twenty gates on one broker, which restarts twice: every passage of every gate arrives.

A plant's backend sees many gates through one broker; a broker restart
then drops all of them at once, and they all reconnect and drain their
backlogs together. The gates are real ``edged run`` processes without a
camera (plates come in through the control socket), so twenty fit on a
small machine; each one's start-up time and memory are reported.
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

GATES = 20
# 60 s keeps the suite under 5 minutes on a 2-core runner; a soak run sets more.
RUN_S = float(os.environ.get("EDGED_FLEET_SECONDS", "60"))
BROKER_RESTARTS = 2
PASSAGE_EVERY_S = 2.0  # per gate
START_BATCH = 5


@pytest.mark.reliability
@pytest.mark.slow
def test_fleet_of_twenty_gates_survives_broker_restarts(tmp_path: Path) -> None:
    seed = int(os.environ.get("EDGED_RELIABILITY_SEED") or random.randrange(2**32))
    print(f"fleet scenario seed {seed} (replay: EDGED_RELIABILITY_SEED={seed})")
    rng = random.Random(seed)
    t0 = time.monotonic()
    broker = persistent_broker(tmp_path / "mosquitto")
    broker.start()
    collector = Collector(broker.port).start()
    gates = [
        Instance(tmp_path / f"g{i:02d}", broker.port, site="fleet", gate=f"g{i:02d}")
        for i in range(GATES)
    ]
    acked: dict[str, dict[str, str]] = {g.gate: {} for g in gates}
    errors: list[str] = []
    numbers = itertools.count(1)
    stop = threading.Event()

    def drive(gate: Instance, offset: float) -> None:
        """One gate's traffic: a vehicle every PASSAGE_EVERY_S, give or take."""
        time.sleep(offset)
        while not stop.is_set():
            p = plate(next(numbers))
            try:
                reply = gate.passage(p, timeout=30)
            except (OSError, ValueError) as exc:
                errors.append(f"{gate.gate} {p}: {exc!r}")
                return
            if not reply.get("ok"):
                errors.append(f"{gate.gate} {p}: {reply}")
                return
            acked[gate.gate][p] = reply["event_id"]
            stop.wait(rng.uniform(0.5, 1.5) * PASSAGE_EVERY_S)

    drivers = [
        threading.Thread(target=drive, args=(g, i * PASSAGE_EVERY_S / GATES), daemon=True)
        for i, g in enumerate(gates)
    ]
    restarts = 0
    rss: list[float] = []
    try:
        for i in range(0, GATES, START_BATCH):  # staggered: 2 cores, Python start-up is CPU
            batch = gates[i : i + START_BATCH]
            starts = [g.launch() for g in batch]
            for g, s in zip(batch, starts, strict=True):
                g.wait_ready(120)
                g.startup_s.append(time.monotonic() - s)
        for t in drivers:
            t.start()
        run_start = time.monotonic()
        run_end = run_start + RUN_S
        for k in range(BROKER_RESTARTS):  # evenly spread over the run
            at = run_start + RUN_S * (k + 1) / (BROKER_RESTARTS + 1)
            time.sleep(max(0.0, at - time.monotonic()))
            broker.stop()
            time.sleep(rng.uniform(1.0, 3.0))
            broker.start()
            restarts += 1
        rss = [g.rss_mb() for g in gates]
        time.sleep(max(0.0, run_end - time.monotonic()))
        stop.set()
        for t in drivers:
            t.join(40)
        rows = {g.gate: g.ledger_rows() for g in gates}
        expected = {(g.site, g.gate): event_ids(rows[g.gate]) for g in gates}
        missing = collector.wait_for(expected, timeout=90)
        for g in gates:  # SIGTERM to all first: they stop side by side, as at a plant shutdown
            g.terminate()
        rcs = [g.stop() for g in gates]
    finally:
        stop.set()
        for g in gates:
            if g.running:
                g.kill()
        collector.stop()
        broker.stop()

    n_rows = sum(len(r) for r in rows.values())
    n_acked = sum(len(a) for a in acked.values())
    lost = sum(len(v) for v in missing.values())
    startup = [s for g in gates for s in g.startup_s]
    summary.record(
        "fleet",
        faults=restarts,
        passages=n_acked,
        rows=n_rows,
        delivered=n_rows - lost,
        lost=lost,
        seconds=time.monotonic() - t0,
        note=f"{GATES} gates; start {max(startup):.1f} s max; RSS {max(rss, default=0):.0f} MB max",
    )
    print(
        f"fleet: {GATES} gates, start-up mean {sum(startup) / len(startup):.2f} s"
        f" max {max(startup):.2f} s; RSS mean {sum(rss) / len(rss):.0f} MB"
        f" max {max(rss):.0f} MB; {n_acked} passages, {collector.messages} messages"
    )
    assert not errors, f"passages refused: {errors[:5]}"
    assert rcs == [0] * GATES, [g.log_tail() for g, rc in zip(gates, rcs, strict=True) if rc]
    for g in gates:
        ids = set(event_ids(rows[g.gate]))
        assert set(acked[g.gate].values()) <= ids, f"{g.gate}: acknowledged passage not in ledger"
        assert len(acked[g.gate]) >= RUN_S / PASSAGE_EVERY_S / 3, f"{g.gate}: too few passages"
    assert not missing, {f"{s}/{g}": len(v) for (s, g), v in missing.items()}
