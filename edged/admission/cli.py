"""``edged registry|blacklist|approval|alert ...``: operator commands on the gate lists.

They work on the registry the daemon uses: ``registry.db_path`` under
``daemon.data_dir`` of the config (``--config``, ``$EDGED_CONFIG``, or
``/etc/edged/edged.toml``), and every change goes into the ledger's audit
chain beside it, as a change over MQTT would. ``--db FILE`` (or
``$EDGED_REGISTRY_DB``) names a registry file instead, e.g. a copy on a
laptop; changes to such a file have no audit row. ``--actor NAME`` says who
is doing it, for the audit trail.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from edged.admission.csv_import import DEFAULT_MAX_ROWS, KINDS, MODES, import_csv
from edged.admission.model import ALERT_LEVELS, BlacklistEntry
from edged.admission.registry import ApprovalRefused, Registry
from edged.cli import table


@dataclass(frozen=True)
class Target:
    """The registry file a command works on, and the ledger its changes are audited in."""

    registry: Path
    ledger: Path | None  # None: a file named on the command line, no audit
    import_max_rows: int = DEFAULT_MAX_ROWS


def target(args: argparse.Namespace) -> Target:
    """``--db`` / ``$EDGED_REGISTRY_DB`` win; otherwise the paths of the config file."""
    db = getattr(args, "db", None) or os.environ.get("EDGED_REGISTRY_DB")
    if db:
        return Target(Path(db), None)
    from edged.config.load import load_config

    cfg = load_config(getattr(args, "config", None))
    data_dir = Path(cfg.daemon.data_dir)  # config paths are relative to it unless absolute
    return Target(
        data_dir / cfg.registry.db_path,
        data_dir / cfg.ledger.db_path,
        cfg.registry.import_max_rows,
    )


@contextlib.contextmanager
def _open(args: argparse.Namespace, where: Target | None = None) -> Iterator[Registry]:
    """The registry, with its changes audited in the ledger when it is the daemon's."""
    where = where or target(args)
    if where.ledger is None:
        with Registry(where.registry) as reg:
            yield reg
        return
    if not where.registry.parent.is_dir():
        raise SystemExit(
            f"edged: no data directory {where.registry.parent} (daemon.data_dir of the config):"
            " pass --config FILE, or --db FILE for a registry file elsewhere"
        )
    ledger: Any = None

    def audit(actor: str, action: str, details: dict[str, Any]) -> None:
        nonlocal ledger
        if ledger is None:
            from edged.ledger.store import LedgerStore

            ledger = LedgerStore(where.ledger)
        ledger.append_audit(actor, action, details)

    try:
        with Registry(where.registry, audit=audit) as reg:
            yield reg
    finally:
        if ledger is not None:
            ledger.close()


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
    p.add_argument(
        "--db",
        metavar="FILE",
        help="a registry file to work on instead of the config's (registry.db_path); no audit",
    )
    p.add_argument("--actor", help="who does this (for the audit log); default: login name")


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


def _cmd(sub: Any, name: str, func: Callable[[argparse.Namespace], int], help: str) -> Any:
    p = sub.add_parser(name, help=help)
    _common(p)
    p.set_defaults(func=func)
    return p


# -- handlers -------------------------------------------------------------------


def registry_import(args: argparse.Namespace) -> int:
    where = target(args)
    with _open(args, where) as reg:
        report = import_csv(
            reg,
            args.file,
            args.kind,
            args.mode,
            actor=_actor(args),
            max_rows=args.max_rows or where.import_max_rows,
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


VEHICLE_COLUMNS = ("plate", "plate_colour", "fuel", "emission_stage", "fleet", "rfid_tags")
NRMM_COLUMNS = ("registry_no", "machine_type", "emission_stage", "owner")
BLACKLIST_COLUMNS = ("plate", "reason", "source", "valid_from", "valid_until")
APPROVAL_COLUMNS = ("id", "plate", "reason", "applicant", "approver", "direction", "use")


#: Registry attributes shown under the name passages and commands give the same field.
_CONTRACT_NAMES = {"haulier": "fleet"}


def _fields(record: Any) -> dict[str, Any]:
    return {_CONTRACT_NAMES.get(k, k): _plain(v) for k, v in vars(record).items()}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def registry_list(args: argparse.Namespace) -> int:
    if args.kind == "blacklist":
        return blacklist_list(args)
    with _open(args) as reg:
        if args.kind == "nrmm":
            _rows(args, NRMM_COLUMNS, [_fields(n) for n in reg.list_nrmm()])
        else:
            _rows(args, VEHICLE_COLUMNS, [_fields(v) for v in reg.list_vehicles(limit=args.limit)])
    return 0


def registry_show(args: argparse.Namespace) -> int:
    with _open(args) as reg:
        v = reg.get_vehicle(args.plate)
        if v is None:
            _err(f"{args.plate}: not in the registry")
            return 1
        b = reg.get_blacklist(args.plate)
        if args.format == "json":
            row = _fields(v)
            row["blacklist"] = _fields(b) if b is not None else None
            _out(json.dumps(row, ensure_ascii=False, default=str))
            return 0
        for k, val in _fields(v).items():
            _out(f"{k}: {table.cell(val)}")
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
        _rows(args, BLACKLIST_COLUMNS, [_fields(b) for b in reg.list_blacklist()])
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
        default=None,
        metavar="N",
        help="refuse a file of more rows (default: registry.import_max_rows,"
        f" {DEFAULT_MAX_ROWS:,}); memory does not grow with the file either way",
    )
    p = _cmd(rs, "list", registry_list, "list vehicles, blacklist or machinery")
    p.add_argument("--kind", choices=KINDS, default="vehicles")
    p.add_argument("--limit", type=int)
    _format(p)
    p = _cmd(rs, "show", registry_show, "show one vehicle")
    p.add_argument("plate")
    _format(p)
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
    _format(_cmd(bs, "list", blacklist_list, "list the blacklist"))

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
    _format(p)

    al = sub.add_parser("alert", help="heavy-pollution alert level (重污染天气预警)")
    als = al.add_subparsers(dest="alert_cmd", required=True)
    p = _cmd(als, "set", alert_set, "set the level in force")
    p.add_argument("level", choices=ALERT_LEVELS)
    p.add_argument("--reason")
    _cmd(als, "show", alert_show, "show the level in force")
