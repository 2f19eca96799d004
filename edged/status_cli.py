"""``edged status`` and ``edged simulate passage``: talk to the running daemon.

Both go through the daemon's local control socket, so they work at the gate
without network or broker.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edged.config import load_config
from edged.control import request


def _socket(args: argparse.Namespace) -> Path:
    if getattr(args, "socket", None):
        return Path(args.socket)
    return Path(load_config(args.config).daemon.data_dir) / "state" / "control.sock"


def _call(args: argparse.Namespace, payload: dict) -> dict | None:
    path = _socket(args)
    try:
        return request(path, payload)
    except OSError as exc:
        print(
            f"edged: no daemon answers on {path}: {exc} (is the service running? systemctl status edged)",
            file=sys.stderr,
        )
        return None


def _status(args: argparse.Namespace) -> int:
    reply = _call(args, {"cmd": "status"})
    if reply is None:
        return 1
    if args.json:
        print(json.dumps(reply, ensure_ascii=False, indent=2, default=str))
    else:
        print(
            f"uptime {reply.get('uptime_s')} s, {reply.get('passages')} passages, gate queue {reply.get('gate_queue')}"
        )
        for name, st in (reply.get("components") or {}).items():
            err = f"  ({st['error']})" if st.get("error") else ""
            print(f"  {name:<11} {st['state']}{err}")
        last = reply.get("last_passage")
        if last:
            print(f"last passage: seq {last['seq']} {last['plate'] or '-'} {last['decision']}")
        for chain, head in (reply.get("ledger_head") or {}).items():
            print(f"ledger {chain}: seq {head['seq']} {str(head['hash'])[:16]}…")
    return 0 if reply.get("ok") else 1


def _simulate(args: argparse.Namespace) -> int:
    payload = {
        "cmd": "simulate_passage",
        "plate": args.plate,
        "rfid": args.rfid or [],
        "direction": args.direction,
    }
    reply = _call(args, payload)
    if reply is None:
        return 1
    if not reply.get("ok"):
        print(f"FAIL: {reply.get('error')}", file=sys.stderr)
        return 1
    print(
        f"seq {reply['seq']}: {reply['plate'] or '-'} {reply['decision']} ({reply['reason']}: {reply['text']})"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("status", help="health of the running daemon")
    s.add_argument("--json", action="store_true")
    s.add_argument("--socket", help="control socket (default: <data_dir>/state/control.sock)")
    s.set_defaults(func=_status)
    sim = sub.add_parser(
        "simulate", help="inject a passage into the running daemon (acceptance tests)"
    )
    ssub = sim.add_subparsers(dest="what", required=True, metavar="WHAT")
    p = ssub.add_parser("passage", help="a vehicle with this plate (and tags) arrives")
    p.add_argument("--plate", help="plate as read, e.g. 冀B12345 (omit: plate unread)")
    p.add_argument("--rfid", action="append", help="tag EPC read with it (repeatable)")
    p.add_argument("--direction", choices=("in", "out"))
    p.add_argument("--socket", help="control socket (default: <data_dir>/state/control.sock)")
    p.set_defaults(func=_simulate)
