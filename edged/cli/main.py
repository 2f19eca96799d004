"""``edged``: the daemon and the technician's tools in one command.

Each area registers its own subcommands (``register(sub)``); this module only
holds the root parser, the ``config`` commands and the error handling that
turns a broken config into one clear message and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from edged import __version__

# Modules that add subcommands, in the order ``edged --help`` lists them.
COMMAND_MODULES = (
    "edged.cli.daemon",
    "edged.cli.config",
    "edged.cli.status",
    "edged.cli.mqtt",
    "edged.lpr.cli",
    "edged.admission.cli",
    "edged.ledger.cli",
    "edged.devicekey",
    "edged.hj212.cli",
    "edged.datalogger.cli",
    "edged.probe.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edged",
        description="Environmental gate appliance: plate recognition, admission, ledger, MQTT, HJ 212.",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="config file (default: $EDGED_CONFIG or /etc/edged/edged.toml)",
    )
    parser.add_argument("--version", action="version", version=f"edged {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _config_anywhere(parser)
    return parser


def _config_anywhere(parser: argparse.ArgumentParser) -> None:
    """Let ``--config FILE`` stand after the subcommand too (``edged registry list --config F``).

    Technicians type the option where the command's help shows it; the
    subcommands' copy has no default of its own, so a ``--config`` before the
    subcommand is never overwritten.
    """
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in dict.fromkeys(action.choices.values()):
            if "--config" not in child._option_string_actions:
                child.add_argument(
                    "--config",
                    metavar="FILE",
                    default=argparse.SUPPRESS,
                    help="config file (default: $EDGED_CONFIG or /etc/edged/edged.toml)",
                )
            _config_anywhere(child)


def main(argv: Sequence[str] | None = None) -> int:
    from edged.config.load import ConfigError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from edged.logs import configure

    # Every command logs to stderr (stdout is for its output), with priorities when
    # systemd runs it (the USB export unit, ExecStartPre); a command that loads the
    # config refines this with [logging] and the site's time zone.
    configure()
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        from edged.logs import print_stderr

        print_stderr(f"edged: config error:\n{exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
