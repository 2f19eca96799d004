"""``edged probe rfid|scale``: let a technician see a serial device work.

Installing a gate means crawling under a weighbridge terminal box with a
laptop; the one question is "does the box hear the device?". The probes open
the line with the same drivers the daemon uses, print what they decode (or
the raw bytes with ``raw``), and end with one PASS/FAIL line that names the
likely fault.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any, TextIO

from drivers import config as driver_config
from drivers.rfid import RfidConfig, TagRead, open_reader
from drivers.scale import ScaleConfig, StableWeight, WeightReading
from edged.probe.output import ProbeOutput, lane_device, probe_config


def _hex(data: bytes) -> str:
    return " ".join(f"{b:02X}" for b in data)


def _fail_silent(v: ProbeOutput, port: str, baudrate: int, what: str) -> int:
    return v.failed(
        f"no bytes received on {port} at {baudrate} baud",
        f"check wiring (TX/RX, RS485 A/B), baud rate, {what} power",
    )


class _Timeline:
    """Lines stamped with seconds since the probe began; readers call from their threads."""

    def __init__(self, out: TextIO, raw: bool) -> None:
        self.out, self.raw = out, raw
        self.lock = threading.Lock()
        self.t0 = time.monotonic()

    def say(self, text: str) -> None:
        with self.lock:
            self.out.write(f"{time.monotonic() - self.t0:7.2f}s {text}\n")
            self.out.flush()

    def on_raw(self, data: bytes) -> None:
        if self.raw:
            self.say(f"rx {_hex(data)}")


#: Driver counters that point at a wiring, speed or protocol fault when not zero.
_PROBLEM_COUNTERS = (
    "garbage_bytes",
    "bad_checksums",
    "bad_frames",
    "rejected_lines",
    "parity_errors",
    "line_reconnects",
    "line_overflow_bytes",
    "reader_errors",
)


def _listen(reader: Any, seconds: float, out: TextIO) -> dict[str, Any]:
    """Run ``reader`` for ``seconds``, print its fault counters, return its stats.

    The window counts from the moment the port is open: a slow USB adapter or
    a busy board must not eat the time the technician asked to listen for. A
    port that does not open within ``seconds`` ends the probe after that long.
    """
    reader.start()
    try:
        line = getattr(reader, "line", None)
        deadline = time.monotonic() + seconds
        while line is not None and not line.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(seconds if line is None or line.connected else 0.0)
    finally:
        reader.close()
    stats = reader.stats()
    problems = {k: stats[k] for k in _PROBLEM_COUNTERS if stats.get(k)}
    if problems:
        out.write("problems: " + " ".join(f"{k}={v}" for k, v in problems.items()) + "\n")
    return stats


def with_flags(family: str, cfg: Any, kind: str | None, **changes: Any) -> Any:
    """The device config with the probe's flags applied (a new ``--type`` keeps what fits)."""
    types = driver_config.family(family)
    kind = kind or (cfg.type if cfg is not None else next(iter(types)))
    cls = types[kind].config
    keep = {} if cfg is None else {k: v for k, v in vars(cfg).items() if k != "type"}
    names = {f for f in cls.__dataclass_fields__ if f != "type"}
    given = {**keep, **{k: v for k, v in changes.items() if v is not None}}
    return cls(**{k: v for k, v in given.items() if k in names})


def probe_rfid(
    cfg: RfidConfig,
    raw: bool,
    seconds: float,
    out: TextIO,
    *,
    line_kwargs: dict[str, Any] | None = None,
) -> int:
    """Print tag reads for ``seconds``; 0 (PASS) if at least one tag was decoded."""
    port, baudrate = getattr(cfg, "port", "GPIO"), getattr(cfg, "baudrate", 0)
    protocol = cfg.type
    tl = _Timeline(out, raw)
    epcs: dict[str, int] = {}

    def on_read(r: TagRead) -> None:
        epcs[r.epc] = epcs.get(r.epc, 0) + 1
        if not raw:
            rssi = f" rssi={r.rssi:.0f}dBm" if r.rssi is not None else ""
            ant = f" ant={r.antenna}" if r.antenna is not None else ""
            tl.say(f"tag {r.epc}{rssi}{ant}")

    reader = open_reader(cfg, on_read, name="probe", on_raw=tl.on_raw, line_kwargs=line_kwargs)
    out.write(f"probing {protocol} RFID reader on {port} at {baudrate} baud for {seconds:g} s\n")
    stats = _listen(reader, seconds, out)
    total = sum(epcs.values())
    v = ProbeOutput(out)
    if total:
        return v.passed(f"{total} tag reads from {len(epcs)} tags in {seconds:g} s")
    if protocol == "wiegand":
        return v.failed(
            f"no valid Wiegand card in {seconds:g} s on GPIO D0={cfg.d0_pin} D1={cfg.d1_pin}",
            "check wiring, common ground, and hold a card to the reader",
        )
    if not stats.get("line_bytes_in"):
        return _fail_silent(v, port, baudrate, "reader")
    return v.failed(
        f"{stats['line_bytes_in']} bytes received on {port} but no tag decoded",
        f"check the protocol setting ({protocol}) and baud rate, and put a tag in the field",
    )


def probe_scale(
    cfg: ScaleConfig,
    raw: bool,
    seconds: float,
    out: TextIO,
    *,
    line_kwargs: dict[str, Any] | None = None,
) -> int:
    """Print weights for ``seconds``; 0 (PASS) if at least one weight was decoded."""
    port, baudrate, fmt = cfg.port, cfg.baudrate, cfg.type
    tl = _Timeline(out, raw)
    count = [0]
    last: list[float] = []

    def on_weight(w: WeightReading) -> None:
        count[0] += 1
        last[:] = [w.kg]
        if not raw:
            tl.say(f"weight {w.kg:g} kg")

    def on_stable(s: StableWeight) -> None:
        tl.say(f"STABLE {s.kg:g} kg")

    reader = driver_config.build(
        cfg,
        name="probe",
        on_weight=on_weight,
        on_stable=on_stable,
        on_raw=tl.on_raw,
        line_kwargs=line_kwargs,
    )
    out.write(
        f"probing {fmt} weighbridge indicator on {port} at {baudrate} baud for {seconds:g} s\n"
    )
    stats = _listen(reader, seconds, out)
    v = ProbeOutput(out)
    if count[0]:
        return v.passed(f"{count[0]} weights in {seconds:g} s, last {last[0]:g} kg")
    if not stats.get("line_bytes_in"):
        return _fail_silent(v, port, baudrate, "indicator")
    return v.failed(
        f"{stats['line_bytes_in']} bytes received on {port} but no weight decoded",
        f"check format ({fmt}: XK3190 needs continuous mode tf=0) and baud rate",
    )


# -- CLI ------------------------------------------------------------------------


def _rfid(args: argparse.Namespace) -> int:
    out = ProbeOutput(sys.stdout)
    lane, cfg = lane_device(probe_config(args, out), "rfid", args.lane)
    out.line(f"lane: {lane}" + ("" if cfg else " (no [rfid] in the config: flags only)"))
    cfg = with_flags("rfid", cfg, args.type, port=args.port, baudrate=args.baudrate)
    return probe_rfid(cfg, args.raw, args.seconds, sys.stdout)


def _scale(args: argparse.Namespace) -> int:
    out = ProbeOutput(sys.stdout)
    lane, cfg = lane_device(probe_config(args, out), "scale", args.lane)
    out.line(f"lane: {lane}" + ("" if cfg else " (no [scale] in the config: flags only)"))
    cfg = with_flags("scale", cfg, args.type, port=args.port, baudrate=args.baudrate)
    return probe_scale(cfg, args.raw, args.seconds, sys.stdout)


def add_kinds(kinds: argparse._SubParsersAction) -> None:
    """Add ``rfid`` and ``scale`` to the ``edged probe`` group (see :mod:`edged.probe.cli`)."""
    for kind, handler in (("rfid", _rfid), ("scale", _scale)):
        p = kinds.add_parser(kind, help=f"listen to the {kind} device, print what it decodes")
        p.add_argument("--port", help="serial port (default: from config)")
        p.add_argument("--baudrate", type=int, help="baud rate (default: from config)")
        p.add_argument("--seconds", type=float, default=10.0, help="how long to listen")
        p.add_argument("--raw", action="store_true", help="print raw bytes in hex")
        p.add_argument(
            "--lane", help="the lane whose device to probe (default: the first with one)"
        )
        p.add_argument(
            "--type",
            choices=list(driver_config.family(kind)),
            help="device type (default: from config)",
        )
        p.set_defaults(func=handler)
