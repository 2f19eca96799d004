"""``edged datalogger poll``: read the meters once, for a technician at the cabinet.

Commissioning a meter is mostly finding out which of unit id, baud rate,
address and word order is wrong. This command reads every point of a register
map once and prints one JSON line per point with its flag, so the answer is
on the screen without starting the daemon or waiting for a platform.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from edged.datalogger.poller import Poller
from edged.datalogger.registers import ModbusConfig


def _load(args: argparse.Namespace) -> ModbusConfig:
    from edged.config import schema

    if args.map:
        data = tomllib.loads(Path(args.map).read_text(encoding="utf-8"))
        return schema.build(ModbusConfig, data.get("modbus", {}))
    from edged.config.load import load_config

    cfg = load_config(args.config)
    section = getattr(cfg, "modbus", None)
    if isinstance(section, ModbusConfig):
        return section
    return schema.build(ModbusConfig, section or {})


def _poll(args: argparse.Namespace) -> int:
    from edged.config import schema

    try:
        cfg = _load(args)
    except schema.SchemaError as exc:
        for problem in exc.problems:
            print(problem.render(args.map or "config"), file=sys.stderr)
        return 2
    except Exception as exc:  # config problems are the technician's to fix: say which
        print(f"edged datalogger poll: {exc}", file=sys.stderr)
        return 2
    devices = [d for d in cfg.devices if not args.device or d.name in args.device]
    if not devices:
        print("edged datalogger poll: no matching device in the register map", file=sys.stderr)
        return 2
    poller = Poller(ModbusConfig(poll_groups=cfg.poll_groups, devices=devices), lambda s: None)
    bad = False
    try:
        for dev in devices:
            for s in poller.poll_device(dev):
                row: dict[str, Any] = {
                    "device": dev.name,
                    "key": s.key,
                    "value": s.value,
                    "flag": s.flag,
                }
                print(json.dumps(row, ensure_ascii=False))
                bad = bad or s.flag in "BD"
            st = poller.stats()[dev.name]
            if st["last_error"]:
                print(f"{dev.name}: {st['last_error']}", file=sys.stderr)
    finally:
        poller.stop()
    return 1 if bad else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datalogger", help="Modbus data logger (数采仪) tools")
    dsub = p.add_subparsers(dest="datalogger_cmd", required=True)
    poll = dsub.add_parser(
        "poll",
        help="read every point once and print JSON lines; exit 1 if any point is flagged B or D",
    )
    poll.add_argument("--map", help="register map TOML ([[modbus.devices]]) instead of the config")
    poll.add_argument("--device", action="append", help="only this device (repeatable)")
    poll.set_defaults(func=_poll)
