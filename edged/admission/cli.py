"""``edged registry|blacklist|approval|alert ...``: operator commands on the gate lists.

Each takes ``--db FILE`` (the registry SQLite file; default from the config once
wired) and ``--actor NAME`` (who is doing it, for the audit trail).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from edged.admission.csv_import import DEFAULT_MAX_ROWS, KINDS, MODES, import_csv
from edged.admission.model import ALERT_LEVELS, BlacklistEntry
from edged.admission.registry import ApprovalRefused, Audit, Registry

# The lead sets this to the ledger's audit function when wiring the daemon.
audit_hook: Audit | None = None


def _default_db() -> str | None:
    return os.environ.get("EDGED_REGISTRY_DB")


def _open(args: argparse.Namespace) -> Registry:
    db = args.db or _default_db()
    if not db:
        raise SystemExit("edged: --db FILE is required (the registry database)")
    return Registry(db, audit=audit_hook)


def _actor(args: argparse.Namespace) -> str:
    return args.actor or os.environ.get("SUDO_USER") or os.environ.get("USER") or "cli"


def _when(text: str) -> datetime:
    dt = datetime.fromisoformat(text.replace("/", "-"))
    return dt if dt.tzinfo else dt.astimezone()


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="registry database file (registry.sqlite)")
    p.add_argument("--actor", help="who does this (for the audit log); default: login name")


def _cmd(sub: Any, name: str, func: Callable[[argparse.Namespace], int], help: str) -> Any:
    p = sub.add_parser(name, help=help)
    _common(p)
    p.set_defaults(func=func)
    return p


# -- handlers -------------------------------------------------------------------


def registry_import(args: argparse.Namespace) -> int:
    with _open(args) as reg:
        report = import_csv(
            reg, args.file, args.kind, args.mode, actor=_actor(args), max_rows=args.max_rows
        )
    if not report.ok:
        _err(f"import refused, nothing changed ({report.error_count} problems):")
        for e in report.errors:
            _err(f"  {e}")
        if report.error_count > len(report.errors):
            _err(f"  ... and {report.error_count - len(report.errors)} more")
        return 1
    _out(f"{args.kind}: {report.applied} rows {args.mode} ({report.encoding})")
    return 0


def registry_list(args: argparse.Namespace) -> int:
    with _open(args) as reg:
        if args.kind == "nrmm":
            for n in reg.list_nrmm():
                _out(f"{n.registry_no}\t{n.machine_type}\t{n.emission_stage or '-'}\t{n.owner}")
            return 0
        if args.kind == "blacklist":
            return blacklist_list(args)
        for v in reg.list_vehicles(limit=args.limit):
            _out(f"{v.plate}\t{v.plate_colour}\t{v.fuel}\t{v.emission_stage or '-'}\t{v.fleet}")
    return 0


def registry_show(args: argparse.Namespace) -> int:
    with _open(args) as reg:
        v = reg.get_vehicle(args.plate)
        if v is None:
            _err(f"{args.plate}: not in the registry")
            return 1
        for k, val in vars(v).items():
            _out(f"{k}: {val}")
        b = reg.get_blacklist(args.plate)
        if b is not None:
            _out(f"BLACKLISTED: {b.reason} ({b.source})")
    return 0


def registry_delete(args: argparse.Namespace) -> int:
    with _open(args) as reg:
        if not reg.delete_vehicle(args.plate, actor=_actor(args)):
            _err(f"{args.plate}: not in the registry")
            return 1
    _out(f"{args.plate}: deleted")
    return 0


def blacklist_add(args: argparse.Namespace) -> int:
    with _open(args) as reg:
        try:
            entry = BlacklistEntry(
                args.plate.upper(),
                args.reason,
                args.source,
                _when(args.valid_from) if args.valid_from else None,
                _when(args.valid_until) if args.valid_until else None,
            )
            reg.add_blacklist(entry, actor=_actor(args))
        except ValueError as exc:
            _err(f"refused: {exc}")
            return 2
    _out(f"{args.plate}: blacklisted")
    return 0


def blacklist_remove(args: argparse.Namespace) -> int:
    with _open(args) as reg:
        if not reg.remove_blacklist(args.plate, actor=_actor(args)):
            _err(f"{args.plate}: not on the blacklist")
            return 1
    _out(f"{args.plate}: removed from the blacklist")
    return 0


def blacklist_list(args: argparse.Namespace) -> int:
    with _open(args) as reg:
        for b in reg.list_blacklist():
            until = b.valid_until.isoformat() if b.valid_until else "-"
            _out(f"{b.plate}\t{b.reason}\t{b.source}\tuntil {until}")
    return 0


def approval_add(args: argparse.Namespace) -> int:
    start = _when(args.valid_from) if args.valid_from else datetime.now().astimezone()
    end = _when(args.valid_until) if args.valid_until else start + timedelta(hours=args.hours)
    with _open(args) as reg:
        try:
            a = reg.add_approval(
                args.plate,
                args.reason,
                args.applicant,
                args.approver,
                start,
                end,
                actor=_actor(args),
                direction=args.direction,
                uses=args.uses,
                ref=args.ref,
            )
        except ApprovalRefused as exc:
            _err(f"approval refused: {exc}")
            return 2
    _out(
        f"approval {a.id}: {a.plate} valid {a.valid_from.isoformat()}"
        f" .. {a.valid_until.isoformat()}, {a.uses} use(s), direction {a.direction}"
    )
    return 0


def approval_list(args: argparse.Namespace) -> int:
    with _open(args) as reg:
        for a in reg.list_approvals(include_used=args.all):
            used = (
                f"used {a.used}/{a.uses}, last {a.used_at.isoformat()} by {a.used_by_passage}"
                if a.used_at
                else f"unused (0/{a.uses})"
            )
            _out(f"{a.id}\t{a.plate}\t{a.reason}\t{a.applicant}/{a.approver}\t{used}")
    return 0


def alert_set(args: argparse.Namespace) -> int:
    with _open(args) as reg:
        state = reg.set_alert_level(args.level, _actor(args), args.reason or "")
    _out(f"alert level: {state.level} (set by {state.set_by})")
    return 0


def alert_show(args: argparse.Namespace) -> int:
    with _open(args) as reg:
        s = reg.alert_state()
    when = s.set_at.isoformat() if s.set_at else "never set"
    _out(f"alert level: {s.level} (set by {s.set_by or '-'}, {when}) {s.reason}".rstrip())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    reg = sub.add_parser("registry", help="vehicle registry (车辆登记): import, list, show, delete")
    rs = reg.add_subparsers(dest="registry_cmd", required=True)
    p = _cmd(rs, "import", registry_import, "import a CSV file (UTF-8 or GBK), all or nothing")
    p.add_argument("file")
    p.add_argument("--mode", choices=MODES, required=True)
    p.add_argument("--kind", choices=KINDS, default="vehicles")
    p.add_argument(
        "--max-rows",
        type=int,
        default=DEFAULT_MAX_ROWS,
        metavar="N",
        help=f"refuse a file of more rows (default {DEFAULT_MAX_ROWS:,}); memory does not"
        " grow with the file either way",
    )
    p = _cmd(rs, "list", registry_list, "list vehicles, blacklist or machinery")
    p.add_argument("--kind", choices=KINDS, default="vehicles")
    p.add_argument("--limit", type=int)
    p = _cmd(rs, "show", registry_show, "show one vehicle")
    p.add_argument("plate")
    p = _cmd(rs, "delete", registry_delete, "delete one vehicle")
    p.add_argument("plate")

    bl = sub.add_parser("blacklist", help="blacklist (黑名单)")
    bs = bl.add_subparsers(dest="blacklist_cmd", required=True)
    p = _cmd(bs, "add", blacklist_add, "add or update a plate")
    p.add_argument("plate")
    p.add_argument("--reason", required=True)
    p.add_argument("--source", default="")
    p.add_argument("--valid-from")
    p.add_argument("--valid-until")
    p = _cmd(bs, "remove", blacklist_remove, "remove a plate")
    p.add_argument("plate")
    _cmd(bs, "list", blacklist_list, "list the blacklist")

    ap = sub.add_parser("approval", help="special approvals (特批放行)")
    aps = ap.add_subparsers(dest="approval_cmd", required=True)
    p = _cmd(aps, "add", approval_add, "enter a pass (one use unless --uses)")
    p.add_argument("plate")
    p.add_argument("--reason", required=True)
    p.add_argument("--applicant", required=True)
    p.add_argument("--approver", required=True)
    p.add_argument("--valid-from", help="ISO time; default now")
    p.add_argument("--valid-until", help="ISO time; default valid-from + --hours")
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--direction", choices=("in", "out", "any"), default="any")
    p.add_argument("--uses", type=int, default=1, help="passages it opens for (1-100)")
    p.add_argument("--ref", help="the approval's number in the plant's own system")
    p = _cmd(aps, "list", approval_list, "list unused approvals (--all: with used ones)")
    p.add_argument("--all", action="store_true")

    al = sub.add_parser("alert", help="heavy-pollution alert level (重污染天气预警)")
    als = al.add_subparsers(dest="alert_cmd", required=True)
    p = _cmd(als, "set", alert_set, "set the level in force")
    p.add_argument("level", choices=ALERT_LEVELS)
    p.add_argument("--reason")
    _cmd(als, "show", alert_show, "show the level in force")
