"""``edged probe modbus``: every configured meter read once, with values and units."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, TextIO

from edged.probe.output import ProbeOutput, listed, pick

_FLAG_WORDS = {"N": "ok", "T": "over limit", "D": "device error", "B": "no answer"}


def probe_modbus(
    mc: Any, out: TextIO, *, names: list[str] | None = None, overrides: dict[str, Any] | None = None
) -> int:
    """Read every configured point of each device once and print the values."""
    from edged.datalogger.poller import Poller
    from edged.datalogger.registers import ModbusConfig, point_key

    v = ProbeOutput(out)
    devices, missing = pick(mc.devices, names)
    if missing:
        return v.failed(
            f"no Modbus device named {', '.join(missing)}",
            f"configured devices: {listed(mc.devices)}",
        )
    if not devices:
        return v.failed(
            "no Modbus devices configured",
            "add [[modbus.devices]] with their register maps to the config"
            " (edged config example shows every key)",
        )
    devices = [replace(d, enabled=True, **(overrides or {})) for d in devices]
    poller = Poller(ModbusConfig(poll_groups=mc.poll_groups, devices=devices), lambda s: None)
    failed: list[str] = []
    values = 0
    hint = set()
    try:
        for d in devices:
            where = (
                f"tcp://{d.host}:{d.port}"
                if d.transport == "tcp"
                else f"{d.serial_port} {d.baudrate} {d.parity}8{d.stopbits}"
            )
            v.line(f"device {d.name}: {where} unit {d.unit}, {len(d.points)} points")
            if not d.points:
                failed.append(f"{d.name} (no points in its register map)")
                continue
            points = {point_key(d.name, p): p for p in d.points}
            t0 = time.monotonic()
            samples = poller.poll_device(d)
            ms = (time.monotonic() - t0) * 1000
            for s in samples:
                p = points[s.key]
                val = "-" if s.value is None else f"{s.value:g}"
                v.line(f"  {p.name:<18} {val:>14} {p.unit:<6} {s.flag} {_FLAG_WORDS[s.flag]}")
                values += s.value is not None
            st = poller.stats()[d.name]
            if st["state"] == "comm_fault":
                v.line(f"device {d.name}: NO ANSWER ({st['last_error']})")
                failed.append(f"{d.name} (no answer)")
                hint.add(
                    "check power, RS485 A/B wiring, baud rate/parity, unit id, or the"
                    " gateway's IP and port"
                )
            elif st["state"] == "device_fault":
                v.line(f"device {d.name}: ANSWERED WITH AN ERROR ({st['last_error']})")
                failed.append(f"{d.name} ({st['last_error']})")
                hint.add("check addresses, function codes and types against the meter manual")
            else:
                v.line(f"device {d.name}: ok in {ms:.0f} ms")
    finally:
        poller.stop()
    if failed:
        return v.failed(
            f"{len(failed)} of {len(devices)} Modbus devices failed: {', '.join(failed)}",
            "; ".join(sorted(hint)) or "check the register map",
        )
    return v.passed(f"{len(devices)} Modbus devices answered, {values} values read")
