"""A pushing camera replays the reads it kept offline: how fast they become rows, and what the
replay costs a truck at the barrier meanwhile.

A Zhenshi camera whose link was down for hours sends thousands of kept reads
once it is back, each recorded (spool, ledger row, pictures) before it is
answered. Live reads of the same camera must still open the barrier at once.
The bench runs a box with one pushing lane (no loop) and two simulated
cameras' worth of traffic from loopback: live reads alone (the baseline),
then the same live reads while the kept ones are replayed. It prints the
replay's rows a second and the live reads' time from push to relay, and the
ratio of that time during the replay to the time alone, in the same run.

    python bench/push_replay_bench.py [--quick] [--kept N] [--live N]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.report import emit  # noqa: E402
from edged.logs import configure  # noqa: E402

configure(level="warning")  # before the gate modules bind their loggers

PROVINCES = "冀晋蒙辽吉黑苏浙皖闽赣鲁豫鄂湘粤"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _plate(i: int) -> str:
    return f"{PROVINCES[i % len(PROVINCES)]}{chr(65 + i // 100000 % 26)}{i % 100000:05d}"


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))]


def run(kept: int, live: int, interval_s: float) -> dict[str, Any]:
    import cv2
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    from drivers.simulators import ZhenshiCameraSimulator
    from edged.admission.model import Vehicle
    from edged.app.supervisor import Supervisor
    from edged.app.wiring import build
    from edged.config.load import parse
    from edged.lpr.synth import render_scene

    Device.pin_factory = MockFactory()
    port = _port()
    ok, buf = cv2.imencode(".jpg", render_scene("冀B12345", "yellow", size=(1280, 720), seed=1))
    assert ok
    scene = buf.tobytes()  # each read carries a 720p scene, as a camera's push does
    with tempfile.TemporaryDirectory() as tmp:
        cfg = parse(
            f"""
[daemon]
data_dir = "{tmp}"
[camera]
type = "zhenshi"
address = "127.0.0.1"
own_read = false
[gpio]
pulse_ms = 50
[gpio.ground_loop]
pin = "none"
[receiver]
bind = "127.0.0.1"
port = {port}
[lpr]
model_dir = "{REPO / "models" / "onnx"}"
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
        supervisor._slots = [s for s in supervisor._slots if s.component.name != "recognizer"]
        supervisor.start_all()
        lane = box.lane(None)
        url = f"http://127.0.0.1:{port}/"
        box.registry.upsert_vehicles(
            Vehicle(_plate(i), emission_stage="国6a") for i in range(kept + 2 * live)
        )

        def live_reads(first: int) -> list[float]:
            cam = ZhenshiCameraSimulator(url, first_id=10_000_000 + first)
            took = []
            for i in range(live):
                before = lane.passages
                t0 = time.perf_counter()
                cam.read(_plate(kept + first + i), full=scene)
                while lane.passages == before and time.perf_counter() - t0 < 30:
                    time.sleep(0.001)
                took.append((time.perf_counter() - t0) * 1000)
                time.sleep(interval_s)
            return took

        alone = live_reads(0)
        replayer = ZhenshiCameraSimulator(url, first_id=1)
        replayer.offline = True
        now = time.time()
        for i in range(kept):
            replayer.read(_plate(i), now - 86400 + i, full=scene)
        replayer.offline = False
        done: dict[str, float] = {}

        def replay() -> None:
            t0 = time.perf_counter()
            # the camera sends a read again when it was not acknowledged (the receiver
            # refuses a third request open at once from one camera: refused_busy)
            done["sent"] = replayer.replay(retries=10, retry_s=0.2)
            done["s"] = time.perf_counter() - t0

        thread = threading.Thread(target=replay)
        thread.start()
        time.sleep(0.2)
        during = live_reads(live)
        thread.join()
        rows = sum(1 for _ in box.ledger.passages())
        busy = box.receiver.status()["refused"].get("refused_busy", 0)
        failures = [r for r in replayer.replies if r[0] != 200][:3]
        supervisor.stop_all(10.0)
    return {
        "kept": kept,
        "sent": done["sent"],
        "rows": rows,
        "rate": done["sent"] / done["s"],
        "busy": busy,
        "resent": replayer.resent,
        "failures": failures,
        "alone_p50": statistics.median(alone),
        "alone_p95": _pct(alone, 0.95),
        "during_p50": statistics.median(during),
        "during_p95": _pct(during, 0.95),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, smoke test (<30 s)")
    ap.add_argument("--kept", type=int, default=2000, help="reads the camera kept offline")
    ap.add_argument("--live", type=int, default=40, help="live reads, alone and during")
    args = ap.parse_args(argv)
    if args.quick:
        args.kept, args.live = 300, 10
    r = run(args.kept, args.live, interval_s=0.2)
    print(f"replay of {args.kept} kept reads (720p scene each), one pushing lane:")
    print(f"  sent and acknowledged {r['sent']:.0f}, ledger rows {r['rows']:.0f}")
    print(f"  {r['rate']:.0f} rows a second")
    print(
        f"  {r['resent']} sent again after no acknowledgement ({r['busy']} refused as busy):"
        f" {r['failures']}"
    )
    print(f"live read, push to passage recorded, relay pulse (50 ms) included ({args.live} each):")
    print(f"  alone         p50 {r['alone_p50']:.1f} ms  p95 {r['alone_p95']:.1f} ms")
    print(f"  during replay p50 {r['during_p50']:.1f} ms  p95 {r['during_p95']:.1f} ms")
    ratio = r["during_p95"] / max(r["alone_p95"], 1e-9)
    print(f"  ratio during/alone, p95: {ratio:.2f}")
    lost = r["kept"] + 2 * args.live - r["rows"]
    print("PASS" if lost == 0 else f"FAIL: {lost:.0f} reads without a row")
    emit("offline replay", r["rate"], "rows/s")
    emit("live push to relay during replay, p95", r["during_p95"], "ms")
    emit("live push p95 during replay / alone", ratio, "x")
    emit("reads without a row after replay", lost, "", "<= 0")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
