"""Gate decision timing: registry snapshot lookup + policy, per passage.

Prints p50/p99 of one decision (resolve + decide) against a registry of
50,000 vehicles and 5,000 blacklist entries (target ≤ 1 ms), with the ratio to a
bare dict lookup measured in the same run. The trigger-to-relay part is added
later by composing ``build_registry`` / ``bench_decision`` with the pipeline.

    python bench/gate_bench.py [--quick] [--vehicles N] [--blacklist N] [--decisions N]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.report import emit  # noqa: E402
from edged.logs import configure  # noqa: E402

configure(level="warning")  # before the gate modules bind their loggers

from edged.admission.model import STAGES, BlacklistEntry, GateRead, Vehicle  # noqa: E402
from edged.admission.policy import PolicyConfig, decide_read  # noqa: E402
from edged.admission.registry import Registry, Snapshot  # noqa: E402

PROVINCES = "冀晋蒙辽吉黑苏浙皖闽赣鲁豫鄂湘粤"
FUELS = ("diesel", "diesel", "diesel", "gas", "petrol", "electric")


def plate(i: int) -> str:
    return f"{PROVINCES[i % len(PROVINCES)]}{chr(65 + (i // 100000) % 26)}{i % 100000:05d}"


def build_registry(path: Path, vehicles: int, blacklist: int, seed: int = 1) -> Registry:
    """A registry file shaped like a busy plant's: mostly diesel trucks, some tags."""
    rnd = random.Random(seed)
    reg = Registry(path)
    reg.upsert_vehicles(
        Vehicle(
            plate(i),
            fuel=rnd.choice(FUELS),
            emission_stage=rnd.choice(STAGES[3:]),
            rfid_tags=(f"E200{i:08X}",) if i % 3 == 0 else (),
        )
        for i in range(vehicles)
    )
    reg.apply(
        "blacklist",
        "upsert",
        [
            BlacklistEntry(plate(vehicles + i * 7 if i % 2 else i * 9), "超标排放车辆")
            for i in range(blacklist)
        ],
    )
    now = datetime.now().astimezone()
    for i in range(0, 50):
        reg.add_approval(
            plate(i * 13), "抢修设备运输", "张三", "李四", now, now + timedelta(hours=8)
        )
    return reg


def reads(n: int, vehicles: int, seed: int = 2) -> list[GateRead]:
    """Known, unknown, blacklisted, tag-only and unread passages, mixed."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        r = rnd.random()
        if r < 0.7:
            out.append(GateRead(plate(rnd.randrange(vehicles))))
        elif r < 0.8:
            out.append(GateRead(plate(vehicles + rnd.randrange(100000))))
        elif r < 0.9:
            i = rnd.randrange(vehicles // 3) * 3
            out.append(GateRead(None, rfid_tags=(f"E200{i:08X}",)))
        elif r < 0.95:
            out.append(GateRead(plate(rnd.randrange(vehicles)), rfid_tags=("E200FFFFFFFF",)))
        else:
            out.append(GateRead(None))
    return out


def percentiles(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return s[len(s) // 2], s[min(len(s) - 1, int(len(s) * 0.99))]


def timed(fn: Callable[[GateRead], object], items: list[GateRead]) -> list[float]:
    out = []
    for item in items:
        t0 = time.perf_counter_ns()
        fn(item)
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def bench_decision(reg: Registry, items: list[GateRead]) -> dict[str, float]:
    """Per-decision time including the snapshot freshness check the daemon makes."""
    policy = PolicyConfig()
    now = datetime.now().astimezone()
    snap: Snapshot = reg.snapshot()

    def decision(read: GateRead) -> object:
        s = reg.snapshot()
        return decide_read(read, s, now, "in", policy)

    def baseline(read: GateRead) -> object:
        return snap.vehicles.get(read.plate)  # type: ignore[arg-type]

    decision_ms = timed(decision, items)
    base_ms = timed(baseline, items)
    p50, p99 = percentiles(decision_ms)
    b50, b99 = percentiles(base_ms)
    return {"p50_ms": p50, "p99_ms": p99, "base_p50_ms": b50, "base_p99_ms": b99}


def trigger_to_relay(
    passages: int, size: tuple[int, int] = (1920, 1080), release_above_mb: int = 180
) -> dict[str, float]:
    """Ground loop rises -> relay output changes, with the real models and ledger.

    The vehicle is in view when the loop rises (exposure excluded, as the
    issue asks); everything else of a passage runs: the wait for the first
    frame the camera takes after the trigger (a burst never reads an older
    one; at most one frame interval, 40 ms from a 25 fps camera), recogniser,
    vote, RFID window, registry lookup, decision, snapshot JPEGs, fsynced
    ledger row, relay. Vehicles alternate between allowed and refused ones.
    """
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    from edged.app.supervisor import Supervisor
    from edged.app.wiring import build
    from edged.config.load import parse
    from edged.lpr.synth import render_scene

    repo = Path(__file__).resolve().parent.parent
    Device.pin_factory = MockFactory()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = parse(
            f"""
[daemon]
data_dir = "{tmp}"
[camera]
type = "mock"
fps = 25
width = {size[0]}
height = {size[1]}
[lpr]
model_dir = "{repo / "models" / "onnx"}"
threads = 1
release_above_mb = {release_above_mb}
[gpio.ground_loop]
pin = 22
debounce_ms = 0
[registry]
db_path = "registry.db"
seed_csv = "{repo / "config" / "demo-vehicles.csv"}"
[ledger]
db_path = "ledger.db"
images_dir = "images"
[mqtt]
enabled = false
""",
            "bench.toml",
        )
        supervisor = Supervisor()
        box = build(cfg, supervisor)
        supervisor.start_all()
        lane = box.lane(None)
        scenes = [
            render_scene(p, "yellow", size=size, seed=i)
            for i, p in enumerate(("冀B12345", "冀A8K302"))
        ]
        pin = Device.pin_factory.pin(22)
        samples: list[float] = []
        waits: list[float] = []
        for i in range(passages):
            lane.camera_source.show(scenes[i % 2])
            while lane.camera.latest() is not scenes[i % 2]:
                time.sleep(0.005)  # the camera thread has the vehicle's frame
            before = lane.passages
            pin.drive_high()
            deadline = time.monotonic() + 30
            while lane.passages == before and time.monotonic() < deadline:
                time.sleep(0.001)
            samples.append(lane.last.trigger_to_relay_ms or 0.0)
            waits.append(lane.last.frame_wait_ms or 0.0)
            pin.drive_low()
            time.sleep(0.05)
        supervisor.stop_all(10.0)
    after = sorted(t - w for t, w in zip(samples, waits, strict=True))
    samples.sort()
    waits.sort()

    def pct(xs: list[float], q: float) -> float:
        return xs[min(len(xs) - 1, int(len(xs) * q))]

    return {
        "p50_ms": pct(samples, 0.5),
        "p99_ms": pct(samples, 0.99),
        "wait_p50_ms": pct(waits, 0.5),
        "wait_p99_ms": pct(waits, 0.99),
        "after_p50_ms": pct(after, 0.5),
        "after_p99_ms": pct(after, 0.99),
        "n": float(len(samples)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, smoke test (<20 s)")
    ap.add_argument("--vehicles", type=int, default=50000)
    ap.add_argument("--blacklist", type=int, default=5000)
    ap.add_argument("--decisions", type=int, default=20000)
    args = ap.parse_args(argv)
    if args.quick:
        args.vehicles, args.blacklist, args.decisions = 5000, 500, 2000
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        reg = build_registry(Path(tmp) / "registry.sqlite", args.vehicles, args.blacklist)
        t1 = time.perf_counter()
        reg.snapshot()
        t2 = time.perf_counter()
        r = bench_decision(reg, reads(args.decisions, args.vehicles))
        reg.close()
    print(f"registry: {args.vehicles} vehicles, {args.blacklist} blacklist entries")
    print(f"  import {t1 - t0:.2f} s, snapshot build {t2 - t1:.3f} s")
    print(f"decision (snapshot check + resolve + decide), {args.decisions} passages:")
    p50, p99 = r["p50_ms"] * 1000, r["p99_ms"] * 1000
    print(f"  p50 {p50:.1f} us  p99 {p99:.1f} us  (target p99 <= 1000 us)")
    b50, b99 = r["base_p50_ms"] * 1000, r["base_p99_ms"] * 1000
    print(f"baseline dict lookup: p50 {b50:.2f} us  p99 {b99:.2f} us")
    print(
        f"ratio decision/baseline: p50 {r['p50_ms'] / max(r['base_p50_ms'], 1e-9):.0f}x"
        f"  p99 {r['p99_ms'] / max(r['base_p99_ms'], 1e-9):.0f}x"
    )
    print("PASS" if r["p99_ms"] <= 1.0 else "FAIL: decision p99 over 1 ms")
    emit(f"decision p99 ({args.vehicles} vehicles)", p99, "us", "<= 1000")
    emit("decision p50", p50, "us")
    n = 10 if args.quick else 100
    # as configured (the models' memory given back after a burst above 180 MB), then
    # never giving it back (release_above_mb = 0): what the release costs a passage
    t = trigger_to_relay(n)
    kept = trigger_to_relay(n, release_above_mb=0)
    rss = Path("/proc/self/status").read_text().split("VmRSS:")
    if len(rss) > 1:
        print(f"(this process: {int(rss[1].split()[0]) / 1024:.0f} MB resident)")
    print(
        f"trigger-to-relay, real models, 1920x1080 frame, {n} passages (exposure excluded),"
        " lpr.release_above_mb as configured (180 MB):"
    )
    print(f"  p50 {t['p50_ms']:.1f} ms  p99 {t['p99_ms']:.1f} ms  (target p99 <= 150 ms)")
    print(
        f"  of which the wait for the first frame after the trigger (25 fps camera):"
        f" p50 {t['wait_p50_ms']:.1f} ms  p99 {t['wait_p99_ms']:.1f} ms;"
        f" from that frame to the relay: p50 {t['after_p50_ms']:.1f} ms"
        f"  p99 {t['after_p99_ms']:.1f} ms"
    )
    print(
        f"  never releasing the models' memory: p50 {kept['p50_ms']:.1f} ms"
        f"  p99 {kept['p99_ms']:.1f} ms; as configured / never:"
        f" p99 {t['p99_ms'] / kept['p99_ms']:.2f}"
    )
    print(f"  decision share of p50: {r['p50_ms'] / t['p50_ms'] * 100:.3f} %")
    print("PASS" if t["p99_ms"] <= 150 else "FAIL: trigger-to-relay p99 over 150 ms")
    emit(f"trigger-to-relay p99 ({n} passages, 1080p)", t["p99_ms"], "ms", "<= 150")
    emit("trigger-to-relay p50", t["p50_ms"], "ms")
    emit("first frame after the trigger, p99 (25 fps)", t["wait_p99_ms"], "ms")
    emit(
        "trigger-to-relay p99, release after every burst / never", t["p99_ms"] / kept["p99_ms"], "x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
