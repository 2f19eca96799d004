"""``edged registry|machinery|blacklist|approval|alert|cargo ...``: the operator's commands.

The databases come from the config (``--config``, before or after the
command, else ``$EDGED_CONFIG`` or ``/etc/edged/edged.toml``): the registry
and the ledger under ``daemon.data_dir``, so the running gate decides with a
change at once. ``--db FILE`` (or ``$EDGED_REGISTRY_DB``) names a registry
file instead, such as a copy on a laptop; its changes are audited in
``ledger.db`` beside it, unless ``--ledger FILE``. It needs no config at all.

Every change needs ``--operator NAME`` and is written, with what it was
before and after, to the hash-chained audit log of the ledger, as the daemon
would write it: the ledger's own locking lets this process extend the chain
while the daemon runs. A change whose audit could not be written exits 3.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from edged import sitetime
from edged.admission.csv_import import DEFAULT_MAX_ROWS, MODES, ImportReport, import_csv
from edged.admission.documents import DEFAULT_MAX_BYTES, DocumentRefused
from edged.admission.model import ALERT_LEVELS, DOCUMENT_NAMES, BlacklistEntry
from edged.admission.policy import PolicyConfig
from edged.admission.registry import ApprovalRefused, Registry
from edged.cli import table

KIND_CHOICES = ("vehicles", "plant_vehicles", "blacklist", "nrmm", "machinery")


class Refused(Exception):
    """A command that cannot be done as asked: ``code`` is its exit status."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Where:
    """The files a command works on, and the settings it takes from the config."""

    registry: Path
    ledger: Path
    documents: Path
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    max_rows: int = DEFAULT_MAX_ROWS
    document_max_bytes: int = DEFAULT_MAX_BYTES


def where(args: argparse.Namespace) -> Where:
    """--db / $EDGED_REGISTRY_DB (and --ledger) win; otherwise the config's data directory."""
    db_arg = getattr(args, "db", None) or os.environ.get("EDGED_REGISTRY_DB")
    if db_arg:
        db = Path(db_arg)
        ledger = Path(args.ledger) if getattr(args, "ledger", None) else db.parent / "ledger.db"
        return Where(db, ledger, db.parent / "documents")
    from edged.config.load import load_config

    cfg = load_config(getattr(args, "config", None))
    data_dir = Path(cfg.daemon.data_dir)  # config paths are relative to it unless absolute
    if not data_dir.is_dir():
        raise Refused(
            f"no data directory {data_dir} (daemon.data_dir of the config): pass --config"
            " FILE, or --db FILE for a registry file elsewhere"
        )
    rc = cfg.registry
    ledger = Path(args.ledger) if getattr(args, "ledger", None) else data_dir / cfg.ledger.db_path
    return Where(
        data_dir / rc.db_path,
        ledger,
        data_dir / rc.documents_dir,
        cfg.policy,
        rc.import_max_rows,
        rc.document_max_mb * 1024 * 1024,
    )


@contextlib.contextmanager
def opened(
    args: argparse.Namespace, change: bool = False, w: Where | None = None
) -> Iterator[Registry]:
    """The registry; for a change, with the ledger's audit log attached first, so a
    ledger that cannot be written refuses the change before anything is touched."""
    w = w or where(args)
    ledger: Any = None
    if change:
        from edged.ledger.store import LedgerStore

        try:
            ledger = LedgerStore(w.ledger)
        except Exception as exc:
            raise Refused(
                f"cannot open the ledger {w.ledger} for the audit log ({exc}); nothing was"
                " changed. Run as the user the daemon runs as, or name it with --ledger FILE",
                3,
            ) from None
    reg = Registry(
        w.registry,
        audit=None if ledger is None else ledger.append_audit,
        documents_dir=w.documents,
        document_max_bytes=w.document_max_bytes,
    )
    try:
        yield reg
    finally:
        reg.close()
        if ledger is not None:
            ledger.close()
    if reg.auditor.failures:
        raise Refused(
            "the change was saved but its audit entry was not written: "
            + "; ".join(reg.auditor.failures),
            3,
        )


def _when(text: str) -> datetime:
    dt = datetime.fromisoformat(text.strip().replace("/", "-"))
    if dt.tzinfo:
        return dt
    zone = sitetime.zone()  # a time typed without an offset is the site's
    return dt.replace(tzinfo=zone) if zone is not None else dt.astimezone()


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")


def _kind(text: str) -> Any:
    return "nrmm" if text == "machinery" else text


VEHICLE_COLUMNS = ("plate", "plate_colour", "fuel", "emission_stage", "fleet", "cargo", "rfid_tags")
NRMM_COLUMNS = ("registry_no", "machine_type", "emission_stage", "fuel", "plate", "owner")
BLACKLIST_COLUMNS = ("plate", "reason", "source", "valid_from", "valid_until")
APPROVAL_COLUMNS = (
    *("id", "plate", "reason", "applicant", "approver", "approved_at", "direction", "use"),
)
ALERT_COLUMNS = ("id", "level", "valid_from", "valid_until", "set_at", "set_by", "reason")
CARGO_COLUMNS = ("id", "plate", "tag", "cargo", "valid_from", "valid_until", "use", "declared_by")


def _format(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="table (aligned, for people) or json (JSON Lines, one object per row)",
    )


def _rows(args: argparse.Namespace, headers: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """A list as an aligned table, or as JSON Lines with every field."""
    if args.format == "json":
        for row in rows:
            _out(json.dumps(row, ensure_ascii=False, default=str))
        return
    for line in table.render(headers, ([r.get(h) for h in headers] for r in rows)):
        _out(line)


def _fields(record: Any) -> dict[str, Any]:
    return {k: _plain(v) for k, v in vars(record).items()}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


# -- lists -------------------------------------------------------------------------------


def _report_import(report: ImportReport, kind: str, mode: str) -> int:
    if not report.ok:
        _err(f"import refused, nothing changed ({report.error_count} problems):")
        for e in report.errors:
            _err(f"  {e}")
        if report.error_count > len(report.errors):
            _err(f"  ... and {report.error_count - len(report.errors)} more")
        return 1
    photos = f", {report.photos} new photos" if report.photos else ""
    _out(f"{kind}: {report.applied} rows {mode} ({report.encoding}){photos}")
    return 0


def registry_import(args: argparse.Namespace) -> int:
    kind = _kind(args.kind)
    w = where(args)
    with opened(args, True, w) as reg:
        max_rows = args.max_rows or w.max_rows
        report = import_csv(reg, args.file, kind, args.mode, actor=args.operator, max_rows=max_rows)
    return _report_import(report, args.kind, args.mode)


def registry_list(args: argparse.Namespace) -> int:
    kind = _kind(args.kind)
    with opened(args) as reg:
        if kind == "nrmm":
            rows = [_fields(n) for n in reg.list_machines(limit=args.limit)]
            _rows(args, NRMM_COLUMNS, rows)
        elif kind == "blacklist":
            _rows(args, BLACKLIST_COLUMNS, [_fields(b) for b in reg.list_blacklist()])
        else:
            category = "in_plant" if kind == "plant_vehicles" else "transport"
            vehicles = reg.list_vehicles(limit=args.limit, category=category)
            _rows(args, VEHICLE_COLUMNS, [_fields(v) for v in vehicles])
    return 0


def _shown(record: Any, reg: Registry) -> dict[str, Any]:
    """Every field of a vehicle or machine, its national stage code and its photos' files."""
    row = _fields(record)
    row["national_stage"] = record.national_stage
    row["documents"] = {
        kind: {"sha256": digest, "name": DOCUMENT_NAMES[kind], "path": reg.document_path(digest)}
        for kind, digest in sorted(record.documents.items())
    }
    return row


def registry_show(args: argparse.Namespace) -> int:
    with opened(args) as reg:
        v = None if args.machine else reg.get_vehicle(args.plate)
        m = reg.get_machine(args.plate) if v is None else None
        if v is None and m is None:
            _err(f"{args.plate}: not in the registry")
            return 1
        row = _shown(v or m, reg)
        b = reg.get_blacklist(args.plate)
        if args.format == "json":
            row["blacklist"] = _fields(b) if b is not None else None
            _out(json.dumps(row, ensure_ascii=False, default=str))
            return 0
        docs = row.pop("documents")
        for k, val in row.items():
            _out(f"{k}: {table.cell(val)}")
        for kind, d in docs.items():
            _out(f"{kind} ({d['name']}): {d['sha256']} {d['path'] or '(file missing)'}")
        if b is not None:
            _out(f"BLACKLISTED: {b.reason} ({b.source})")
    return 0


def registry_delete(args: argparse.Namespace) -> int:
    machine = args.machine
    with opened(args, change=True) as reg:
        done = (
            reg.delete_machine(args.key, actor=args.operator)
            if machine
            else reg.delete_vehicle(args.key, actor=args.operator)
        )
    if not done:
        _err(f"{args.key}: not in the {'machinery registry' if machine else 'registry'}")
        return 1
    _out(f"{args.key}: deleted")
    return 0


def registry_photo(args: argparse.Namespace) -> int:
    machine = args.machine
    files = {
        k: v
        for k, v in (
            ("env_list", getattr(args, "env_list", None)),
            ("licence", getattr(args, "licence", None)),
            ("nameplate", getattr(args, "nameplate", None)),
        )
        if v
    }
    if not files:
        raise Refused("give a photo: --env-list FILE and/or --licence FILE")
    with opened(args, change=True) as reg:
        try:
            record = reg.attach_photos(args.key, files, args.operator, machine=machine)
        except (DocumentRefused, LookupError) as exc:
            raise Refused(f"refused: {exc.args[0]}", 1) from None
        for kind in files:
            digest = record.documents[kind]
            _out(
                f"{args.key}: {kind} ({DOCUMENT_NAMES[kind]}) {digest} {reg.document_path(digest)}"
            )
    return 0


def blacklist_add(args: argparse.Namespace) -> int:
    try:
        entry = BlacklistEntry(
            args.plate.upper(),
            args.reason,
            args.source,
            _when(args.valid_from) if args.valid_from else None,
            _when(args.valid_until) if args.valid_until else None,
        )
    except ValueError as exc:
        raise Refused(f"refused: {exc}") from None
    with opened(args, change=True) as reg:
        try:
            reg.add_blacklist(entry, actor=args.operator)
        except ValueError as exc:
            raise Refused(f"refused: {exc}") from None
    _out(f"{args.plate}: blacklisted")
    return 0


def blacklist_remove(args: argparse.Namespace) -> int:
    with opened(args, change=True) as reg:
        done = reg.remove_blacklist(args.plate, actor=args.operator)
    if not done:
        _err(f"{args.plate}: not on the blacklist")
        return 1
    _out(f"{args.plate}: removed from the blacklist")
    return 0


def blacklist_list(args: argparse.Namespace) -> int:
    with opened(args) as reg:
        _rows(args, BLACKLIST_COLUMNS, [_fields(b) for b in reg.list_blacklist()])
    return 0


# -- approvals, alert levels, cargo ----------------------------------------------------------


def approval_add(args: argparse.Namespace) -> int:
    start = _when(args.valid_from) if args.valid_from else sitetime.now()
    end = _when(args.valid_until) if args.valid_until else start + timedelta(hours=args.hours)
    approved_at = _when(args.approved_at) if args.approved_at else None
    w = where(args)
    with opened(args, True, w) as reg:
        try:
            a = reg.add_approval(
                args.plate,
                args.reason,
                args.applicant,
                args.approver,
                start,
                end,
                actor=args.operator,
                direction=args.direction,
                uses=args.uses,
                ref=args.ref,
                approved_at=approved_at,
                allow_self_approve=w.policy.approval_self_approve,
            )
        except ApprovalRefused as exc:
            raise Refused(f"approval refused: {exc}") from None
    approved = a.approved_at.isoformat() if a.approved_at else "-"
    _out(
        f"approval {a.id}: {a.plate} valid {a.valid_from.isoformat()}"
        f" .. {a.valid_until.isoformat()}, {a.uses} use(s), direction {a.direction},"
        f" approved {approved}"
    )
    return 0


def approval_list(args: argparse.Namespace) -> int:
    with opened(args) as reg:
        rows = []
        for a in reg.list_approvals(include_used=args.all):
            row = _fields(a)
            row["use"] = (
                f"used {a.used}/{a.uses}, last {a.used_at.isoformat()} by {a.used_by_passage}"
                if a.used_at
                else f"unused (0/{a.uses})"
            )
            rows.append(row)
        _rows(args, APPROVAL_COLUMNS, rows)
    return 0


def alert_set(args: argparse.Namespace) -> int:
    try:
        start = _when(args.valid_from) if args.valid_from else None
        end = _when(args.valid_until) if args.valid_until else None
    except ValueError as exc:
        raise Refused(f"refused: {exc}") from None
    with opened(args, change=True) as reg:
        try:
            e = reg.set_alert_level(
                args.level, args.operator, args.reason, valid_from=start, valid_until=end
            )
        except ValueError as exc:
            raise Refused(f"refused: {exc}") from None
        now = reg.alert_state()
    until = e.valid_until.isoformat() if e.valid_until else "replaced"
    _out(
        f"alert level {e.level} from {e.valid_from.isoformat()} until {until}"
        f" (set by {e.set_by}); in force now: {now.level}"
    )
    return 0


def alert_list(args: argparse.Namespace) -> int:
    with opened(args) as reg:
        entries = reg.list_alerts(include_superseded=args.all)
        now = reg.alert_state()
    _rows(args, ALERT_COLUMNS, [_fields(e) for e in entries])
    if args.format == "table":
        _out(f"in force now: {now.level}")
    return 0


def alert_show(args: argparse.Namespace) -> int:
    with opened(args) as reg:
        s = reg.alert_state()
    when = s.set_at.isoformat() if s.set_at else "never set"
    until = f", until {s.valid_until.isoformat()}" if s.valid_until else ""
    _out(f"alert level: {s.level} (set by {s.set_by or '-'}, {when}{until}) {s.reason}".rstrip())
    return 0


def cargo_declare(args: argparse.Namespace) -> int:
    with opened(args, change=True) as reg:
        try:
            d = reg.declare_cargo(
                args.plate or "",
                args.cargo,
                _when(args.valid_until),
                args.operator,
                valid_from=_when(args.valid_from) if args.valid_from else None,
                uses=args.uses,
                tag=args.tag,
            )
        except ValueError as exc:
            raise Refused(f"refused: {exc}") from None
    uses = f"{d.uses} passage(s)" if d.uses else "every passage"
    who = f"waybill card {d.tag}" if d.tag else d.plate
    _out(f"cargo {d.id}: {who} carries {d.cargo} until {d.valid_until.isoformat()}, {uses}")
    return 0


def cargo_list(args: argparse.Namespace) -> int:
    with opened(args) as reg:
        rows = []
        for d in reg.list_cargo(args.plate, args.tag):
            row = _fields(d)
            row["use"] = f"{d.used}/{d.uses}" if d.uses else "every passage"
            rows.append(row)
    _rows(args, CARGO_COLUMNS, rows)
    return 0


# -- the parser --------------------------------------------------------------------------


def _cmd(
    sub: Any, name: str, func: Callable[[argparse.Namespace], int], help: str, change: bool
) -> Any:
    p = sub.add_parser(name, help=help)
    p.add_argument(
        "--db",
        metavar="FILE",
        help="a registry file to work on instead of the config's (registry.db_path)",
    )
    p.add_argument(
        "--ledger", help="ledger for the audit log (default: the config's, or beside --db)"
    )
    if change:
        p.add_argument(
            "--operator",
            "--actor",
            dest="operator",
            required=True,
            help="who makes this change (written to the audit log)",
        )

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except Refused as exc:
            _err(f"edged: {exc}")
            return exc.code

    p.set_defaults(func=run)
    return p


def _photo_args(p: argparse.ArgumentParser, machine: bool) -> None:
    if machine:
        p.add_argument("--nameplate", required=True, metavar="FILE", help="发动机铭牌 photo")
    else:
        p.add_argument("--env-list", metavar="FILE", help="随车清单 photo (JPEG, PNG, WebP, PDF)")
        p.add_argument("--licence", "--license", metavar="FILE", help="行驶证 photo")


def _import_args(p: argparse.ArgumentParser, kinds: tuple[str, ...] | None) -> None:
    p.add_argument("file")
    p.add_argument("--mode", choices=MODES, required=True)
    if kinds is not None:
        p.add_argument("--kind", choices=kinds, default="vehicles")
    else:
        p.set_defaults(kind="machinery")
    p.add_argument(
        "--max-rows",
        type=int,
        default=None,
        metavar="N",
        help=f"refuse a file of more rows (default registry.import_max_rows,"
        f" {DEFAULT_MAX_ROWS:,}); memory does not grow with the file either way",
    )


def register(sub: argparse._SubParsersAction) -> None:
    reg = sub.add_parser("registry", help="vehicle registry (车辆登记): import, list, show, photos")
    rs = reg.add_subparsers(dest="registry_cmd", required=True)
    reg.set_defaults(machine=False)
    p = _cmd(
        rs, "import", registry_import, "import a CSV file (UTF-8 or GBK), all or nothing", True
    )
    _import_args(p, KIND_CHOICES)
    p = _cmd(
        rs, "list", registry_list, "list vehicles, in-plant vehicles, blacklist or machinery", False
    )
    p.add_argument("--kind", choices=KIND_CHOICES, default="vehicles")
    p.add_argument("--limit", type=int)
    _format(p)
    p = _cmd(rs, "show", registry_show, "show one vehicle or machine", False)
    p.add_argument("plate")
    _format(p)
    p = _cmd(rs, "delete", registry_delete, "delete one vehicle", True)
    p.add_argument("key", metavar="plate")
    p = _cmd(rs, "photo", registry_photo, "store a vehicle's 随车清单 / 行驶证 photos", True)
    p.add_argument("key", metavar="plate")
    _photo_args(p, machine=False)

    ma = sub.add_parser("machinery", help="non-road mobile machinery (非道路移动机械)")
    ms = ma.add_subparsers(dest="machinery_cmd", required=True)
    ma.set_defaults(machine=True)
    p = _cmd(ms, "import", registry_import, "import a machinery CSV file, all or nothing", True)
    _import_args(p, None)
    p = _cmd(ms, "list", registry_list, "list the machinery", False)
    p.set_defaults(kind="machinery")
    p.add_argument("--limit", type=int)
    _format(p)
    p = _cmd(ms, "show", registry_show, "show one machine (registry code or plate)", False)
    p.add_argument("plate", metavar="code")
    _format(p)
    p = _cmd(ms, "delete", registry_delete, "delete one machine", True)
    p.add_argument("key", metavar="code")
    p = _cmd(ms, "photo", registry_photo, "store a machine's 发动机铭牌 photo", True)
    p.add_argument("key", metavar="code")
    _photo_args(p, machine=True)

    bl = sub.add_parser("blacklist", help="blacklist (黑名单)")
    bs = bl.add_subparsers(dest="blacklist_cmd", required=True)
    p = _cmd(bs, "add", blacklist_add, "add or update a plate", True)
    p.add_argument("plate")
    p.add_argument("--reason", required=True)
    p.add_argument("--source", default="")
    p.add_argument("--valid-from")
    p.add_argument("--valid-until")
    p = _cmd(bs, "remove", blacklist_remove, "remove a plate", True)
    p.add_argument("plate")
    _format(_cmd(bs, "list", blacklist_list, "list the blacklist", False))

    ap = sub.add_parser("approval", help="special approvals (特批放行)")
    aps = ap.add_subparsers(dest="approval_cmd", required=True)
    p = _cmd(aps, "add", approval_add, "enter a pass (one use unless --uses)", True)
    p.add_argument("plate")
    p.add_argument("--reason", required=True)
    p.add_argument("--applicant", required=True)
    p.add_argument("--approver", required=True, help="must not be the applicant (see the config)")
    p.add_argument("--approved-at", help="when it was approved, ISO time; default now")
    p.add_argument("--valid-from", help="ISO time; default now")
    p.add_argument("--valid-until", help="ISO time; default valid-from + --hours")
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--direction", choices=("in", "out", "any"), default="any")
    p.add_argument("--uses", type=int, default=1, help="passages it opens for (1-100)")
    p.add_argument("--ref", help="the approval's number in the plant's own system")
    p = _cmd(aps, "list", approval_list, "list unused approvals (--all: with used ones)", False)
    p.add_argument("--all", action="store_true")
    _format(p)

    al = sub.add_parser("alert", help="heavy-pollution alert level (重污染天气预警)")
    als = al.add_subparsers(dest="alert_cmd", required=True)
    p = _cmd(als, "set", alert_set, "set a level now, or schedule it with --from/--until", True)
    p.add_argument("level", choices=ALERT_LEVELS)
    p.add_argument("--from", dest="valid_from", metavar="TIME", help="ISO time; default now")
    p.add_argument(
        "--until", dest="valid_until", metavar="TIME", help="ISO time; default until replaced"
    )
    p.add_argument("--reason", required=True, help="the announcement, e.g. 市重污染天气橙色预警")
    p = _cmd(
        als, "list", alert_list, "the entries that can still be in force (--all: every)", False
    )
    p.add_argument("--all", action="store_true")
    _format(p)
    _cmd(als, "show", alert_show, "show the level in force", False)

    cg = sub.add_parser("cargo", help="cargo declarations (运输货物名称) for next passages")
    cgs = cg.add_subparsers(dest="cargo_cmd", required=True)
    p = _cmd(
        cgs,
        "declare",
        cargo_declare,
        "declare what a plate (or a waybill card) carries until a time",
        True,
    )
    p.add_argument("plate", nargs="?", help="the vehicle's plate (or give --tag)")
    p.add_argument(
        "--tag",
        metavar="EPC",
        help="a waybill card (运单卡) instead of a plate: the passage that sees it carries the cargo",
    )
    p.add_argument("--cargo", required=True, help="运输货物名称, at most 32 characters")
    p.add_argument("--until", dest="valid_until", required=True, metavar="TIME")
    p.add_argument("--from", dest="valid_from", metavar="TIME", help="default now")
    p.add_argument("--uses", type=int, help="passages it covers; default every one in the window")
    p = _cmd(cgs, "list", cargo_list, "list declarations", False)
    p.add_argument("plate", nargs="?")
    p.add_argument("--tag", metavar="EPC", help="only this waybill card's")
    _format(p)
