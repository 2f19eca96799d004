"""What every ``edged probe`` shares: the config it reads and how it ends.

A technician at a new gate runs one probe after another and reads the last
line of each: exactly one line that starts with ``PASS`` or ``FAIL``, the
reason, and for a failure what to check. Progress lines above it never start
with either word, so a script (or a tired eye) can grep for the verdict.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, TextIO

from edged.config.load import ENV_VAR, load_config, parse, resolve_path


class ProbeOutput:
    """Progress lines, then one verdict; returns the exit code (0 pass, 1 fail)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def line(self, text: str) -> None:
        if text.startswith(("PASS", "FAIL")):
            text = "  " + text  # only the verdict may start with these words
        self.out.write(text + "\n")
        self.out.flush()

    def passed(self, reason: str) -> int:
        self.out.write(f"PASS: {reason}\n")
        self.out.flush()
        return 0

    def failed(self, reason: str, todo: str = "") -> int:
        self.out.write(f"FAIL: {reason}" + (f": {todo}" if todo else "") + "\n")
        self.out.flush()
        return 1


def probe_config(args: argparse.Namespace, out: ProbeOutput | None = None) -> Any:
    """The config file a probe takes its settings from.

    ``--config`` and ``EDGED_CONFIG`` must exist (a typo must not silently
    probe the defaults); only the system default may be missing, as on a
    laptop before installation, and then the schema defaults plus the
    probe's flags are used.
    """
    explicit = getattr(args, "config", None)
    path = resolve_path(explicit)
    if explicit is None and not os.environ.get(ENV_VAR) and not path.exists():
        if out is not None:
            out.line(f"config: {path} not found; using defaults and command-line flags")
        # No camera in the defaults: a laptop before installation has no model folder.
        return parse('[camera]\ntype = "none"\n', "<defaults>")
    cfg = load_config(path)
    if out is not None:
        out.line(f"config: {path}")
    return cfg


def lane_device(cfg: Any, kind: str, lane: str | None) -> tuple[str, Any]:
    """The ``kind`` device (camera, gpio, rfid, scale, display) of a lane, and the lane's name.

    With ``--lane`` that lane's (own or shared) device; without, the first
    lane that has one, or the first lane. None where no lane has one.
    """
    lanes = list(cfg.lanes)
    if lane is not None:
        try:
            chosen = [cfg.lane(lane)]
        except KeyError as exc:
            raise SystemExit(f"edged: {exc.args[0]}") from None
    else:
        chosen = lanes
    by_name = {ln.name: ln for ln in lanes}
    for ln in chosen:
        dev = getattr(ln, kind)
        if dev is None and kind in ln.shares:
            dev = getattr(by_name[ln.shares[kind]], kind)
        if dev is not None and getattr(dev, "type", "") != "none":
            return ln.name, dev
    return chosen[0].name, None


def pick(items: list[Any], names: list[str] | None) -> tuple[list[Any], list[str]]:
    """The items named (a technician may probe a disabled one), else every enabled one;
    and the names that are not configured at all."""
    if not names:
        return [i for i in items if i.enabled], []
    known = {i.name for i in items}
    return [i for i in items if i.name in names], [n for n in names if n not in known]


def listed(items: list[Any]) -> str:
    return ", ".join(sorted(i.name for i in items)) or "none"
