"""``edged config check|show|example``: what a technician runs after editing the file."""

from __future__ import annotations

import argparse
import sys

from edged import logs
from edged.config import example_file as example
from edged.config.load import ConfigError, load_config, resolve_path


def _check(args: argparse.Namespace) -> int:
    path = args.file or args.config
    try:
        load_config(path)
    except ConfigError as exc:
        n = len(exc.problems)
        logs.print_stderr(f"{exc}\nFAIL: {n} problem{'s' if n != 1 else ''} in {exc.filename}")
        return 1
    print(f"OK: {resolve_path(path)} is valid")
    return 0


def _show(args: argparse.Namespace) -> int:
    cfg = load_config(args.file or args.config)
    print(
        f"# effective config of {resolve_path(args.file or args.config)} (defaults filled in, secrets masked)"
    )
    print(example.render(cfg, comments=args.comments, mask_secrets=True))
    return 0


def _example(_args: argparse.Namespace) -> int:
    sys.stdout.write(example.example())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="check, show or print an example config")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = csub.add_parser("check", help="validate a config file; exit 1 on any problem")
    c.add_argument(
        "file",
        nargs="?",
        help="file to check (default: --config / $EDGED_CONFIG / /etc/edged/edged.toml)",
    )
    c.set_defaults(func=_check)
    s = csub.add_parser(
        "show", help="print the effective config with defaults filled in, secrets masked"
    )
    s.add_argument("file", nargs="?")
    s.add_argument("--comments", action="store_true", help="include the documentation comments")
    s.set_defaults(func=_show)
    e = csub.add_parser("example", help="print the documented example config")
    e.set_defaults(func=_example)
