"""``edged export``: to a folder or a prepared USB stick, a range, verify, prepare a stick.

    edged export --dest DIR [--from T] [--to T] [--images]
    edged export --usb MOUNTPOINT                  (the udev/systemd unit)
    edged export verify DIR [--key HEX]            (any computer with the package)
    edged export prepare-stick DIR [--site ID | --any-site]
    edged export mount-stick DEVICE MOUNTPOINT     (root, from the export unit)

``--from``/``--to`` re-export a time range (site time) and leave the automatic
position where it is. ``verify`` reads nothing but the folder: no box, no
config.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from edged.logs import get_logger

log = get_logger("ledger")


def _export(args: argparse.Namespace) -> int:
    sub = getattr(args, "export_command", None)
    if sub is not None:
        return int(args.sub_func(args))
    from edged.ledger.export import ExportError, export
    from edged.ledger.query import parse_time
    from edged.ledger.settings import documents_dir, need_db, settings
    from edged.ledger.store import LedgerStore

    dest = args.usb or args.dest
    if dest is None:
        hint = ""
        if args.until and Path(args.until).is_dir():
            hint = " (--to now takes the end of a time range; the target folder is --dest DIR)"
        print(f"edged: export: give --dest DIR or --usb MOUNTPOINT{hint}", file=sys.stderr)
        return 2
    if args.usb and (args.since or args.until):
        print("edged: --from/--to re-export by hand, with --dest; not with --usb", file=sys.stderr)
        return 2
    s = settings(args)
    if (rc := need_db(s)) is not None:
        return rc
    try:
        start = parse_time(args.since, s.tz) if args.since else None
        end = parse_time(args.until, s.tz) if args.until else None
    except ValueError as exc:
        print(f"edged: {exc}", file=sys.stderr)
        return 2
    if args.usb and not _stick_accepted(args, s):
        return 0
    include = args.images or (bool(args.usb) and s.ledger.export_images)
    key = _device_key(s.data_dir)
    with LedgerStore(s.db) as store:
        try:
            res = export(
                store,
                dest,
                tz=s.tz,
                site=s.site,
                gate=s.gate,
                plant=s.plant,
                gate_name=s.gate_name,
                images_dir=s.images,
                documents_dir=documents_dir(s, args.documents_dir),
                include_images=include,
                report_days=s.ledger.export_report_days,
                frequent_per_day=s.ledger.frequent_per_day,
                actor="usb" if args.usb else "operator",
                device_key=key,
                start=start,
                end=end,
                logger_export=_logger_export(s.cfg),
            )
        except ExportError as exc:
            print(f"edged: {exc}", file=sys.stderr)
            return 1
    if args.usb:
        os.sync()
    first, last = res.passages
    print(
        f"exported passages {first}..{last} ({max(0, last - first + 1)} rows), {res.images}"
        f" photos to {res.folder}" + ("" if res.signed else " (NOT signed: no device key)")
    )
    for miss in res.missing_images[:10]:
        print(f"  photo not exported: {miss}")
    return 0


def _device_key(data_dir: Path) -> Any:
    from edged.devicekey import DeviceKeyError, key_path, load

    try:
        return load(key_path(data_dir))
    except (DeviceKeyError, OSError) as exc:
        print(f"edged: export not signed: {exc}", file=sys.stderr)
        return None


def _stick_accepted(args: argparse.Namespace, s: Any) -> bool:
    """Only a prepared stick gets the automatic export; any other is logged and left alone."""
    from edged.ledger.stick import judge, volume_label
    from edged.ledger.store import LedgerStore

    mount = Path(args.usb)
    label = args.label if args.label is not None else volume_label(mount)
    verdict = judge(mount, s.ledger.usb_accept, s.site, s.ledger.usb_label, label)
    if verdict.accepted:
        log.info("usb_stick_accepted", mount=str(mount), why=verdict.why)
        return True
    log.warning(
        "usb_stick_ignored",
        mount=str(mount),
        why=verdict.why,
        hint="to export onto it, prepare it once: edged export prepare-stick <its folder>"
        + (f", or label it {s.ledger.usb_label}" if "label" in s.ledger.usb_accept else ""),
    )
    with LedgerStore(s.db) as store:
        store.append_event("usb_stick_ignored", "info", f"USB stick ignored: {verdict.why}")
    print(f"stick at {mount} ignored: {verdict.why}")
    return False


def _logger_export(cfg: Any) -> Any:
    """The data logger's export for the stick, where the box has a logger and its data."""
    if cfg is None or not (cfg.modbus.devices or cfg.instruments):
        return None
    from edged.datalogger.export import export_to_folder, point_info
    from edged.datalogger.store import DataStore

    path = Path(cfg.datalogger.path)
    path = path if path.is_absolute() else Path(cfg.daemon.data_dir) / path
    if not path.is_file():
        return None
    info = point_info(cfg.modbus)

    def run(folder: Path, begins: Any, end: Any) -> Any:
        store = DataStore(path)
        try:
            return export_to_folder(store, folder, begins, end, info, cfg.site.name or cfg.site.id)
        finally:
            store.close()

    return run


# -- verify, prepare-stick, mount-stick ---------------------------------------------------


def _verify(args: argparse.Namespace) -> int:
    from edged.ledger.export_verify import report_lines, verify_export

    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"edged: {folder}: not a folder", file=sys.stderr)
        return 2
    targets = [folder]
    stick = not (folder / "MANIFEST.json").exists() and (folder / "edged-export").is_dir()
    if stick:
        targets = sorted(p for p in (folder / "edged-export").iterdir() if p.is_dir())
        if not targets:
            print(f"edged: {folder}/edged-export holds no export", file=sys.stderr)
            return 1
    ok = True
    for t in targets:
        res = verify_export(t, args.key)
        if stick:
            print(f"{t.name}:")
        for line in report_lines(res, args.key is not None):
            print(line)
        ok = ok and res.ok
    return 0 if ok else 1


def _prepare(args: argparse.Namespace) -> int:
    from edged.ledger.stick import StickError, prepare

    site = "*" if args.any_site else args.site
    if site is None:
        try:
            from edged.config.load import load_config

            site = load_config(getattr(args, "config", None)).site.id
        except Exception:
            print(
                "edged: prepare-stick: give --site ID (or --any-site); no config to take it from",
                file=sys.stderr,
            )
            return 2
    try:
        path = prepare(Path(args.folder), site, args.note or "")
    except (StickError, OSError) as exc:
        print(f"edged: {exc}", file=sys.stderr)
        return 1
    print(f"stick prepared for {'every site' if site == '*' else 'site ' + site}: {path}")
    return 0


def _mount(args: argparse.Namespace) -> int:
    """Exit 0 mounted; 1 not a stick to use (the unit is then skipped, not failed)."""
    from edged.ledger.stick import StickError, mount

    try:
        cmd = mount(args.device, args.mountpoint, args.user)
    except StickError as exc:
        log.warning("usb_stick_not_mounted", device=args.device, why=str(exc))
        print(f"edged: {exc}", file=sys.stderr)
        return 1
    log.info("usb_stick_mounted", device=args.device, command=" ".join(cmd))
    return 0


def register(sub: Any, db_opt: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export ledger rows, reports, national tables and a signed manifest;"
        " verify, prepare-stick",
    )
    db_opt(p)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--dest", metavar="DIR", help="target folder")
    where.add_argument(
        "--usb",
        metavar="MOUNTPOINT",
        help="freshly mounted USB stick (the udev/systemd unit); only a prepared stick is used",
    )
    p.add_argument(
        "--from", dest="since", metavar="TIME", help="re-export a range from this time (site time)"
    )
    p.add_argument(
        "--to",
        dest="until",
        metavar="TIME",
        help="re-export a range up to (excluding) this time; the automatic position stays",
    )
    p.add_argument("--images", action="store_true", help="also copy the rows' photos")
    p.add_argument(
        "--images-dir", dest="images_dir", metavar="DIR", help="default: ledger.images_dir"
    )
    p.add_argument(
        "--documents-dir",
        dest="documents_dir",
        metavar="DIR",
        help="document photos (随车清单/行驶证) by SHA-256; default: registry.documents_dir",
    )
    p.add_argument("--site", help="site id for the export folder name (with --db)")
    p.add_argument("--label", help="the stick's volume label (default: asked from udev)")
    p.set_defaults(func=_export)
    esub = p.add_subparsers(dest="export_command", metavar="ACTION")

    v = esub.add_parser(
        "verify", help="check an export folder: signature, files, chain, passages.csv, photos"
    )
    v.add_argument("folder", metavar="DIR", help="an export folder, or a stick's root")
    v.add_argument(
        "--key", metavar="HEX", help="the box's public key (edged status); pins who signed"
    )
    v.set_defaults(sub_func=_verify)

    q = esub.add_parser("prepare-stick", help="mark a stick to receive the automatic export")
    q.add_argument("folder", metavar="DIR", help="the mounted stick")
    g = q.add_mutually_exclusive_group()
    g.add_argument("--site", help="for this site only (default: the config's site.id)")
    g.add_argument("--any-site", action="store_true", help="for the boxes of every site")
    q.add_argument("--note", help="a note kept in the marker (whose stick)")
    q.set_defaults(sub_func=_prepare)

    m = esub.add_parser(
        "mount-stick", help="mount a stick for the export (root; used by the export unit)"
    )
    m.add_argument("device")
    m.add_argument("mountpoint")
    m.add_argument("--user", default="edged", help="the user the export runs as")
    m.set_defaults(sub_func=_mount)
