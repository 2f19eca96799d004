"""CPU share of the data logger polling 50 registers every second.

The box is a Raspberry-Pi-class board that also runs plate recognition, so
acquisition must cost next to nothing. A pymodbus TCP server runs in a
separate process (its CPU is not counted); this process polls it for
``seconds`` with the real Poller (plan, decode, flags, SQLite commit of every
sample) and then, as a baseline, with a bare pymodbus client doing the same
single 50-register read each second. Printed: CPU time / wall time for each
and their ratio.

    python -m bench.modbus_poll_bench            # 30 s per run
    python -m bench.modbus_poll_bench --quick    # 5 s per run, smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pymodbus.client import ModbusTcpClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit
from edged.datalogger.poller import Poller
from edged.datalogger.registers import ModbusConfig, ModbusDevice, PollGroup, RegisterPoint
from edged.datalogger.store import DataStore, rules_from_points

REGISTERS = 50


def _serve(port: int, ready: Any) -> None:
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    device = SimDevice(
        id=1,
        simdata=[SimData(0, values=list(range(100, 100 + REGISTERS)), datatype=DataType.REGISTERS)],
    )

    async def main() -> None:
        server = ModbusTcpServer(device, address=("127.0.0.1", port))
        ready.set()
        await server.serve_forever()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Timer:
    """CPU time / wall time of this whole process (all threads) between start and stop."""

    def start(self) -> None:
        self.c0, self.w0 = time.process_time(), time.monotonic()

    def stop(self) -> float:
        return (time.process_time() - self.c0) / (time.monotonic() - self.w0)


def _poller_run(port: int, seconds: float, timer: _Timer) -> dict[str, Any]:
    points = [
        RegisterPoint(name=f"r{i}", address=i, type="uint16", scale=0.1, factor=f"i1{i:04d}")
        for i in range(REGISTERS)
    ]
    dev = ModbusDevice(
        name="bench", transport="tcp", host="127.0.0.1", port=port, poll_group="rt", points=points
    )
    cfg = ModbusConfig(poll_groups=[PollGroup(name="rt", interval_s=1)], devices=[dev])
    with tempfile.TemporaryDirectory() as tmp:
        store = DataStore(Path(tmp) / "bench.sqlite3", rules_from_points(cfg.points_by_key()))
        poller = Poller(cfg, store.add_samples)
        timer.start()  # setup (imports, schema) is not part of the steady-state cost
        poller.start()
        time.sleep(seconds)
        poller.stop()
        store.close_periods()
        share = timer.stop()
        store.close()
    return poller.stats()["bench"] | {"share": share}


def _baseline_run(port: int, seconds: float, timer: _Timer) -> dict[str, Any]:
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
    timer.start()
    client.connect()
    end, polls, ok = time.monotonic() + seconds, 0, 0
    next_due = time.monotonic()
    while time.monotonic() < end:
        resp = client.read_holding_registers(0, count=REGISTERS, device_id=1)
        polls += 1
        ok += not resp.isError()
        next_due += 1.0
        time.sleep(max(0.0, min(next_due, end) - time.monotonic()))
    client.close()
    return {"polls": polls, "ok": ok, "share": timer.stop()}


def measure(seconds: float) -> dict[str, Any]:
    """Run both measurements for ``seconds`` each; return the figures."""
    port = _free_port()
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    server = ctx.Process(target=_serve, args=(port, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("bench server did not start")
        time.sleep(0.3)
        poller_stats = _poller_run(port, seconds, _Timer())
        base_stats = _baseline_run(port, seconds, _Timer())
        poller_share, base_share = poller_stats["share"], base_stats["share"]
    finally:
        server.terminate()
        server.join(5)
    return {
        "seconds_per_run": seconds,
        "registers_per_poll": REGISTERS,
        "poller_cpu_share": poller_share,
        "poller_polls": poller_stats["polls"],
        "poller_success_rate": poller_stats["success_rate"],
        "baseline_cpu_share": base_share,
        "baseline_polls": base_stats["polls"],
        "ratio_poller_to_baseline": poller_share / base_share if base_share else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 s per run (smoke test)")
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds per run (default 30)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    from edged.logs import configure

    configure(level="warning")
    result = measure(5.0 if args.quick else args.seconds)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"polling {REGISTERS} registers every 1 s for {result['seconds_per_run']:.0f} s per run")
    print(
        f"  edged Poller (decode + flags + SQLite): CPU share {result['poller_cpu_share']:.3%}"
        f"  polls={result['poller_polls']} success={result['poller_success_rate']:.0%}"
    )
    print(
        f"  baseline bare pymodbus client:         CPU share {result['baseline_cpu_share']:.3%}"
        f"  polls={result['baseline_polls']}"
    )
    print(f"  ratio poller/baseline: {result['ratio_poller_to_baseline']:.2f}x")
    emit(f"poller CPU share ({REGISTERS} registers/s)", result["poller_cpu_share"] * 100, "%")
    # Collection success >= 95 % (the domain's data-logger requirement).
    emit("poll success rate", result["poller_success_rate"] * 100, "%", ">= 95")
    emit("poller / bare pymodbus CPU", result["ratio_poller_to_baseline"] or 0.0, "x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
