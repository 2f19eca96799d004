"""``edged datalogger poll|export|backup|restore``: the data logger's tools.

``poll``: commissioning a meter is mostly finding out which of unit id, baud
rate, address and word order is wrong. It reads every point of a register
map once and prints one JSON line per point with its flag, so the answer is
on the screen without starting the daemon or waiting for a platform.

``export``: minute/hour/day data as XLSX or CSV for people. ``backup`` and
``restore``: the logger's history, like the ledger's (restore with the daemon
stopped; it is recorded in the ledger's audit trail when the box has one).
Each takes ``--db FILE`` to work on a copy without a config.
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

    exp = dsub.add_parser(
        "export", help="minute, hour or day data (分钟/小时/日数据) as XLSX or CSV"
    )
    exp.add_argument("--period", choices=("minute", "hour", "day", "all"), default="all")
    exp.add_argument("--from", dest="since", metavar="TIME", help="from (site time)")
    exp.add_argument("--to", dest="until", metavar="TIME", help="up to (excluding)")
    exp.add_argument("--out", required=True, metavar="FILE", help="data.xlsx or data.csv")
    exp.add_argument("--format", choices=("xlsx", "csv"), help="default: from --out")
    _db_arg(exp)
    exp.set_defaults(func=_export)

    bak = dsub.add_parser("backup", help="online, consistent copy of the logger's history")
    bak.add_argument("file", metavar="FILE")
    _db_arg(bak)
    bak.set_defaults(func=_backup)

    res = dsub.add_parser(
        "restore", help="replace the logger's history with a backup (stop the daemon first)"
    )
    res.add_argument("file", metavar="FILE")
    _db_arg(res)
    res.add_argument(
        "--force", action="store_true", help="restore even if the backup ends before the live data"
    )
    res.set_defaults(func=_restore)


# -- export / backup / restore ---------------------------------------------------------


def _paths(args: argparse.Namespace) -> tuple[Path, Any]:
    """The logger database and the config (None with --db)."""
    if args.db:
        return Path(args.db), None
    from edged.config.load import load_config

    cfg = load_config(args.config)
    path = Path(cfg.datalogger.path)
    return (path if path.is_absolute() else Path(cfg.daemon.data_dir) / path), cfg


def _local(text: str | None) -> Any:
    from datetime import datetime

    if not text:
        return None
    try:
        return datetime.fromisoformat(text.strip().replace(" ", "T")).replace(tzinfo=None)
    except ValueError:
        raise ValueError(f"time: expected YYYY-MM-DD[ HH:MM], found {text!r}") from None


def _export(args: argparse.Namespace) -> int:
    from edged.datalogger.export import PERIODS, point_info, write_logger
    from edged.datalogger.store import DataStore
    from edged.sheets.table import format_for

    try:
        db, cfg = _paths(args)
        out = Path(args.out)
        fmt = format_for(out, args.format)
        begin, end = _local(args.since), _local(args.until)
    except ValueError as exc:
        print(f"edged: {exc}", file=sys.stderr)
        return 2
    if not db.is_file():
        print(f"edged: data logger database {db} not found (pass --db FILE)", file=sys.stderr)
        return 2
    periods = PERIODS if args.period == "all" else (args.period,)
    info = point_info(cfg.modbus) if cfg is not None else {}
    title = (cfg.site.name or cfg.site.id) if cfg is not None else ""
    store = DataStore(db)
    try:
        n = write_logger(store, out, fmt, periods, begin, end, info, title)
    finally:
        store.close()
    print(f"data logger {', '.join(periods)} data written to {out} ({fmt}, {n} rows)")
    return 0


def _backup(args: argparse.Namespace) -> int:
    from edged.datalogger.backup import LoggerRestoreError, backup

    db, _cfg = _paths(args)
    try:
        copy = backup(db, args.file)
    except (FileNotFoundError, LoggerRestoreError) as exc:
        print(f"edged: {exc}", file=sys.stderr)
        return 1
    print(f"data logger backup written to {args.file}: {copy.describe()}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from edged.datalogger.backup import LoggerRestoreError, inspect, restore

    db, cfg = _paths(args)
    try:
        copy = inspect(Path(args.file))
        kept = restore(db, args.file, force=args.force)
    except LoggerRestoreError as exc:
        print(f"edged: {exc}", file=sys.stderr)
        return 1
    _audit(
        cfg,
        {
            "file": Path(args.file).name,
            "newest": copy.newest,
            "previous_kept_as": kept.name if kept else None,
            "forced": args.force,
        },
    )
    print(f"restored {db} from {args.file}" + (f"; previous kept as {kept}" if kept else ""))
    return 0


def _audit(cfg: Any, details: dict[str, Any]) -> None:
    """Record the restore in the ledger's audit trail, where the box has a ledger."""
    if cfg is None:
        return
    from edged.ledger.store import LedgerStore

    path = Path(cfg.ledger.db_path)
    path = path if path.is_absolute() else Path(cfg.daemon.data_dir) / path
    if not path.is_file():
        return
    with LedgerStore(path) as store:
        store.append_audit("restore", "datalogger_restore", details)


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", metavar="FILE", help="logger database (default: datalogger.path from the config)"
    )
