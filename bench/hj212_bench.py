"""HJ 212 codec throughput, with baselines measured in the same run.

Prints encode and decode packets/s for a typical real-time packet (28
factors, ~870-byte data segment like the field captures), next to json.dumps /
json.loads of the same data and a bare str.split parse (no CRC, no checks):
the ratio says what the validation costs. If ``bench/modbus_poll_bench.py``
offers ``measure(seconds) -> dict`` its polling CPU share is printed too.

    python bench/hj212_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit
from edged.hj212.codec import Cp, Packet, decode, encode, make_qn


def sample_packet(factors: int = 28) -> Packet:
    data = {
        f"a{34000 + i:05d}": {"Rtd": round(1.234 * i + 0.5, 3), "Flag": "N"} for i in range(factors)
    }
    cp = Cp.build({"DataTime": datetime(2024, 5, 1, 10, 0, 0)}, data)
    return Packet(
        "2011", "66330300010100001001", "123456", "31", make_qn(datetime(2024, 5, 1, 10)), 5, cp=cp
    )


def rate(fn, seconds: float) -> float:
    n = 0
    start = time.perf_counter()
    end = start + seconds
    while True:
        for _ in range(100):
            fn()
        n += 100
        now = time.perf_counter()
        if now >= end:
            return n / (now - start)


def naive_split(text: str) -> dict[str, str]:
    out = {}
    for item in text[6:-6].replace("CP=&&", "").replace("&&", "").split(";"):
        for part in item.split(","):
            key, _, value = part.partition("=")
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run for a smoke test (<20 s)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per measurement")
    parser.add_argument(
        "--no-poll", action="store_true", help="skip the Modbus polling figures (run_all runs it)"
    )
    args = parser.parse_args(argv)
    seconds = args.seconds or (0.5 if args.quick else 3.0)

    packet = sample_packet()
    wire = encode(packet)
    text = wire.decode()
    assert decode(wire) == packet
    as_json = packet.to_json()
    json_text = json.dumps(as_json)

    enc = rate(lambda: encode(packet), seconds)
    dec = rate(lambda: decode(wire), seconds)
    jd = rate(lambda: json.dumps(as_json), seconds)
    jl = rate(lambda: json.loads(json_text), seconds)
    sp = rate(lambda: naive_split(text), seconds)

    print(f"packet: CN=2011, {len(packet.cp.factors)} factors, {len(wire)} bytes on the wire")
    print(f"encode            {enc:12,.0f} packets/s   ({enc / jd:.2f}x json.dumps {jd:,.0f}/s)")
    print(f"decode (strict)   {dec:12,.0f} packets/s   ({dec / jl:.2f}x json.loads {jl:,.0f}/s)")
    print(f"baseline split    {sp:12,.0f} packets/s   (decode = {dec / sp:.2f}x bare str.split)")
    per_packet_ms = 1000 / dec + 1000 / enc
    print(f"cost per packet   {per_packet_ms:.3f} ms encode+decode on this CPU")
    emit(f"encode ({len(packet.cp.factors)} factors, {len(wire)} B)", enc, "packets/s")
    emit("decode, strict (CRC + checks)", dec, "packets/s")
    emit("decode / json.loads", dec / jl, "x")
    if args.no_poll:
        return 0

    poll = Path(__file__).resolve().parent / "modbus_poll_bench.py"
    if poll.exists():
        # A real import (not exec of the file) so its multiprocessing workers can pickle.
        sys.path.insert(0, str(poll.parent))
        try:
            module = importlib.import_module("modbus_poll_bench")
            measure = getattr(module, "measure", None)
            if measure is None:
                print("modbus polling: bench/modbus_poll_bench.py has no measure(seconds)")
            else:
                figures = measure(5.0 if args.quick else 30.0)
                print("modbus polling: " + " ".join(f"{k}={v}" for k, v in figures.items()))
        except Exception as exc:  # the other bench is not ours to break on
            print(f"modbus polling: bench failed: {exc!r}")
    else:
        print("modbus polling: bench/modbus_poll_bench.py not present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
