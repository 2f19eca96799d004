"""``edged ledger verify|query|report|head``, ``edged export``, ``edged backup``, ``edged restore``.

Every command takes ``--db FILE`` so it works on a copy (an inspector's
laptop, a backup) without a config file; without it, the paths come from
the ``[ledger]`` section of the config.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edged.ledger import export_cli
from edged.ledger.query import FORMATS, parse_time
from edged.ledger.settings import db_opt, documents_dir, need_db, settings

# -- ledger verify ----------------------------------------------------------


def _verify(args: argparse.Namespace) -> int:
    from edged.ledger.verify import verify_db

    s = settings(args)
    if (rc := need_db(s)) is not None:
        return rc
    expect: dict[str, tuple[int, str]] = {}
    for item in args.expect_head or []:
        try:
            chain, seq, digest = item.split(":")
            expect[chain] = (int(seq), digest)
        except ValueError:
            print(f"edged: --expect-head: expected CHAIN:SEQ:HASH, found {item!r}", file=sys.stderr)
            return 2
    images = s.images if s.images is not None and s.images.is_dir() else None
    clips = s.clips if s.clips is not None and s.clips.is_dir() else None
    from edged.ledger.attest import read_known, sidecar_path

    try:
        known = read_known([sidecar_path(s.db), *(Path(a) for a in args.attestation or ())])
    except (ValueError, KeyError, TypeError) as exc:
        print(f"edged: --attestation: not attestations as published: {exc}", file=sys.stderr)
        return 2
    public = args.public_key or _beside_key(s.data_dir)
    res = verify_db(
        s.db,
        images,
        expect or None,
        image_retention_days=s.ledger.image_retention_days,
        attestations=known,
        public_key=public,
        clips_dir=clips,
        clip_retention_days=s.clip_retention_days,
    )
    for chain, c in res.chains.items():
        print(
            f"{chain}: {c.rows} rows verified"
            + (f", head {c.head[0]}:{c.head[1]}" if c.problem is None else "")
        )
    if images is None:
        print("snapshots: not checked (pass --images DIR)")
    elif res.ok:
        early = (
            f" ({res.images_purged_early} early, for disk space)" if res.images_purged_early else ""
        )
        print(
            f"snapshots: {res.images_checked} verified, {res.images_purged} removed by"
            f" retention{early}"
        )
    if clips is None:
        print("clips: not checked (no clip folder; pass --clips DIR)")
    elif res.ok:
        print(
            f"clips: {res.clips_checked} verified, {res.clips_removed} removed by retention"
            " or for disk space"
        )
    if res.ok:
        print(
            f"attestations: {res.attestations} checked"
            + (f" against device key {public[:16]}…" if public else " (no device key to check")
            + ("" if public else " signatures against: pass --public-key)")
        )
        print("OK: ledger unaltered")
        return 0
    print(f"FAIL: {res.problem}")
    return 1


def _beside_key(data_dir: Path) -> str | None:
    """The public key of the device key kept in the data directory, if readable."""
    from edged.devicekey import DeviceKeyError, key_path, load

    try:
        return load(key_path(data_dir)).public_hex
    except (DeviceKeyError, OSError):
        return None


def _attest(args: argparse.Namespace) -> int:
    from edged.devicekey import DeviceKeyError, key_path, load
    from edged.ledger.attest import attest, message
    from edged.ledger.store import LedgerStore

    s = settings(args)
    if (rc := need_db(s)) is not None:
        return rc
    try:
        key = load(key_path(s.data_dir))
    except DeviceKeyError as exc:
        print(f"edged: {exc}", file=sys.stderr)
        return 1
    with LedgerStore(s.db) as store:
        att = attest(store, key, s.site, s.gate)
    print(json.dumps(message(att, key.public_hex), ensure_ascii=False))
    return 0


# -- ledger query -----------------------------------------------------------


def _query(args: argparse.Namespace) -> int:
    from edged.ledger.store import LedgerStore

    s = settings(args)
    if (rc := need_db(s)) is not None:
        return rc
    from edged.admission.model import normalize_plate, parse_fuel, stage_query

    try:
        start = parse_time(args.since, s.tz) if args.since else None
        end = parse_time(args.until, s.tz) if args.until else None
        # the ledger holds canonical values (国5, diesel): a guard types 国五 or 柴油
        stages = stage_query(args.stage) if args.stage else None
        fuel = parse_fuel(args.fuel) if args.fuel else None
    except ValueError as exc:
        print(f"edged: {exc}", file=sys.stderr)
        return 2
    with LedgerStore(s.db) as store:
        rows = (store.passages if args.raw else store.effective_passages)(
            start=start,
            end=end,
            plate=normalize_plate(args.plate) if args.plate else None,
            direction=args.direction,
            decision=args.decision,
            emission_stage=stages,
            fuel=fuel,
            gate=args.gate,
            lane=args.lane,
            flag=args.flag,
            limit=args.limit,
        )
        FORMATS[args.format](rows, sys.stdout)
    return 0


# -- ledger correct ------------------------------------------------------------


def _correct(args: argparse.Namespace) -> int:
    from edged.ledger.corrections import CorrectionError, corrected
    from edged.ledger.store import LedgerError, LedgerStore

    s = settings(args)
    if (rc := need_db(s)) is not None:
        return rc
    changes = {
        k: v
        for k, v in (
            ("plate", args.plate),
            ("plate_colour", args.plate_colour),
            ("direction", args.direction),
            ("cargo", args.cargo),
            ("weight_kg", args.weight_kg),
        )
        if v is not None
    }
    lookup = _vehicle_lookup(args)
    with LedgerStore(s.db) as store:
        try:
            current = store.current(args.seq)
            if current is None:
                raise CorrectionError(
                    f"no passage with seq {args.seq} to correct (a correction row is corrected"
                    " through its original)"
                )
            rec = corrected(current.record, changes, lookup)
            seq, digest = store.append_correction(args.seq, rec, args.operator, args.reason)
        except (CorrectionError, LedgerError) as exc:
            print(f"edged: {exc}", file=sys.stderr)
            return 2
    print(json.dumps({"correction_seq": seq, "correction_of": args.seq, "hash": digest}))
    return 0


def _vehicle_lookup(args: argparse.Namespace) -> Any:
    """The registry's national fields of a plate, where a config names the registry."""
    if getattr(args, "db", None):
        return None
    from edged.admission.registry import Registry
    from edged.config.load import load_config
    from edged.lane.row_fields import vehicle_fields

    cfg = load_config(getattr(args, "config", None))
    path = Path(cfg.registry.db_path)
    path = path if path.is_absolute() else Path(cfg.daemon.data_dir) / path
    if not path.is_file():
        return None
    registry = Registry(path)

    def lookup(plate: str) -> dict[str, Any]:
        return vehicle_fields(registry.snapshot().vehicle(plate))

    return lookup


# -- ledger report ----------------------------------------------------------


def _report(args: argparse.Namespace) -> int:
    from edged.ledger.reports import ReportSpec, write_report
    from edged.ledger.store import LedgerStore
    from edged.sheets.table import format_for

    s = settings(args)
    if (rc := need_db(s)) is not None:
        return rc
    out = Path(args.out)
    spec = ReportSpec(
        args.kind,
        args.date,
        s.tz,
        s.plant,
        s.gate_name,
        args.frequent or s.ledger.frequent_per_day,
    )
    try:
        fmt = format_for(out, args.format)
        with LedgerStore(s.db) as store:
            res = write_report(store, spec, out, fmt)
    except ValueError as exc:
        print(f"edged: {exc}", file=sys.stderr)
        return 2
    print(f"{args.kind} report {res.period.label} written to {out} ({fmt}, {res.rows} rows)")
    return 0


def _national(args: argparse.Namespace) -> int:
    from edged.ledger.national import Photos, write_national
    from edged.ledger.reports import standing_rows
    from edged.ledger.store import LedgerStore

    s = settings(args)
    if (rc := need_db(s)) is not None:
        return rc
    try:
        start = parse_time(args.since, s.tz)
        end = parse_time(args.until, s.tz)
    except ValueError as exc:
        print(f"edged: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        print(f"edged: --out {out} is not empty: give a new folder", file=sys.stderr)
        return 2
    formats = ("csv", "xlsx") if args.format == "both" else (args.format,)
    docs = documents_dir(s, args.documents_dir)
    photos = None if args.no_photos else Photos(out, s.images, docs)
    with LedgerStore(s.db) as store:
        res = write_national(
            standing_rows(store, start=start, end=end),
            out,
            s.tz,
            formats,
            photos,
            title=f"{s.plant} {s.gate_name}".strip(),
        )
    counts = ", ".join(f"{k} {v}" for k, v in res.rows.items())
    print(f"national tables written to {out}: {counts} rows, {res.photos} photos")
    for miss in res.missing_photos[:20]:
        print(f"  photo missing: {miss}")
    return 0


def _head(args: argparse.Namespace) -> int:
    from edged.ledger.store import LedgerStore

    s = settings(args)
    if (rc := need_db(s)) is not None:
        return rc
    with LedgerStore(s.db) as store:
        heads = store.heads()
    print(json.dumps({k: {"seq": q, "hash": h} for k, (q, h) in heads.items()}))
    return 0


# -- export / backup / restore ----------------------------------------------


def _backup(args: argparse.Namespace) -> int:
    from edged.ledger.backup import backup

    s = settings(args)
    if (rc := need_db(s)) is not None:
        return rc
    res = backup(s.db, args.file)
    if not res.ok:
        print(f"backup written but the ledger does not verify: {res.problem}")
        return 1
    print(
        f"backup written to {args.file}; "
        + ", ".join(f"{k} head {c.head[0]}" for k, c in res.chains.items())
    )
    return 0


def _restore(args: argparse.Namespace) -> int:
    from edged.ledger.backup import RestoreError, restore

    s = settings(args)
    if not Path(args.file).is_file():
        print(f"edged: backup file {args.file} not found", file=sys.stderr)
        return 2
    try:
        kept = restore(s.db, args.file, force=args.force)
    except RestoreError as exc:
        print(f"edged: {exc}", file=sys.stderr)
        return 1
    print(
        f"restored {s.db} from {args.file}" + (f"; previous ledger kept as {kept}" if kept else "")
    )
    return 0


def register(sub: Any) -> None:
    """Add ``ledger``, ``export``, ``backup`` and ``restore`` to the root parser."""
    led = sub.add_parser("ledger", help="electronic ledger (电子台账): verify, query, reports")
    lsub = led.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)

    p = lsub.add_parser(
        "verify",
        help="check both hash chains and every snapshot file; exit 1 names the first bad row",
    )
    db_opt(p)
    p.add_argument(
        "--images",
        dest="images_dir",
        metavar="DIR",
        help="snapshot images folder (default: ledger.images_dir)",
    )
    p.add_argument(
        "--clips",
        dest="clips_dir",
        metavar="DIR",
        help="video clips folder (default: clips.dir), checked against the audit chain",
    )
    p.add_argument(
        "--expect-head",
        action="append",
        metavar="CHAIN:SEQ:HASH",
        help="a head published earlier (catches rows cut off the end)",
    )
    p.add_argument(
        "--attestation",
        action="append",
        metavar="FILE",
        help="attestations archived from MQTT (JSON Lines) to check against; the box's own"
        " latest (<ledger>.attestation) is always checked",
    )
    p.add_argument(
        "--public-key",
        metavar="HEX",
        help="the box's public key (edged key show); default: the key in the data directory",
    )
    p.set_defaults(func=_verify)

    p = lsub.add_parser(
        "attest", help="sign the chain heads now with the device key; prints the MQTT message"
    )
    db_opt(p)
    p.set_defaults(func=_attest)

    p = lsub.add_parser("query", help="find passages")
    db_opt(p)
    p.add_argument(
        "--from",
        dest="since",
        metavar="TIME",
        help="from this time (YYYY-MM-DD[ HH:MM], site time)",
    )
    p.add_argument("--to", dest="until", metavar="TIME", help="up to (excluding) this time")
    p.add_argument("--plate")
    p.add_argument("--direction", choices=("in", "out"))
    p.add_argument("--decision", choices=("allow", "deny", "hold"))
    p.add_argument("--stage", help="emission stage: 国五, 国V, 国5 or 5 (国6 finds 国6a and 国6b)")
    p.add_argument(
        "--fuel", help="diesel, petrol, gas, electric, hybrid, hydrogen, or 柴油, 天然气, …"
    )
    p.add_argument("--gate")
    p.add_argument("--lane")
    p.add_argument(
        "--flag", help="rows carrying this flag, e.g. offline_read, tag_plate_mismatch, hazardous"
    )
    p.add_argument("--limit", type=int)
    p.add_argument(
        "--raw",
        action="store_true",
        help="rows as recorded, corrections as separate rows (default: as corrected)",
    )
    p.add_argument(
        "--format", choices=tuple(FORMATS), default="table", help="table, csv, or json (JSON Lines)"
    )
    p.set_defaults(func=_query)

    p = lsub.add_parser(
        "correct",
        help="correct a row (misread plate, direction, cargo, weight): a new chained row"
        " and an audit entry; the original is never changed",
    )
    p.add_argument("seq", type=int, help="the row to correct")
    db_opt(p)
    p.add_argument("--plate")
    p.add_argument("--plate-colour", dest="plate_colour")
    p.add_argument("--direction", choices=("in", "out"))
    p.add_argument("--cargo")
    p.add_argument("--weight-kg", dest="weight_kg", type=int)
    p.add_argument("--reason", required=True, help="why (kept in the audit log)")
    p.add_argument("--operator", required=True, help="who corrects it")
    p.set_defaults(func=_correct)

    p = lsub.add_parser(
        "report", help="daily, weekly or monthly report (日报/周报/月报), XLSX or CSV"
    )
    p.add_argument("kind", choices=("daily", "weekly", "monthly"))
    db_opt(p)
    p.add_argument(
        "--date",
        required=True,
        help="YYYY-MM-DD (daily), YYYY-Www or a day of the week (weekly), YYYY-MM (monthly)",
    )
    p.add_argument(
        "--format", choices=("csv", "xlsx"), help="default: from the --out file's extension"
    )
    p.add_argument("--out", required=True, metavar="FILE", help="report.xlsx or report.csv")
    p.add_argument("--plant", help="plant name for the title (default: site.name)")
    p.add_argument("--gate-name", dest="gate_name", help="gate name (default: site.gate_name)")
    p.add_argument(
        "--frequent", type=int, metavar="N", help="flag vehicles passing more than N times a day"
    )
    p.set_defaults(func=_report)

    p = lsub.add_parser(
        "national",
        help="the national-format ledger (运输车辆/厂内运输车辆/非道路移动机械) with photos",
    )
    db_opt(p)
    p.add_argument("--from", dest="since", required=True, metavar="TIME", help="site time")
    p.add_argument("--to", dest="until", required=True, metavar="TIME", help="up to (excluding)")
    p.add_argument("--out", required=True, metavar="DIR", help="a new folder")
    p.add_argument("--format", choices=("csv", "xlsx", "both"), default="both")
    p.add_argument("--no-photos", action="store_true", help="tables only")
    p.add_argument("--images-dir", dest="images_dir", metavar="DIR")
    p.add_argument("--documents-dir", dest="documents_dir", metavar="DIR")
    p.add_argument("--plant", help="plant name for the titles (default: site.name)")
    p.add_argument("--gate-name", dest="gate_name", help="gate name (default: site.gate_name)")
    p.set_defaults(func=_national)

    p = lsub.add_parser("head", help="print the head (seq + hash) of each chain as JSON")
    db_opt(p)
    p.set_defaults(func=_head)

    export_cli.register(sub, db_opt)

    p = sub.add_parser("backup", help="online, consistent copy of the ledger")
    p.add_argument("file", metavar="FILE")
    db_opt(p)
    p.set_defaults(func=_backup)

    p = sub.add_parser(
        "restore",
        help="replace the ledger with a backup, after verifying it (stop the daemon first)",
    )
    p.add_argument("file", metavar="FILE")
    db_opt(p)
    p.add_argument(
        "--force",
        action="store_true",
        help="restore even if the backup is older than the live ledger or the box's last"
        " attestation (recorded in the audit log)",
    )
    p.set_defaults(func=_restore)
