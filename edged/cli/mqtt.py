"""``edged mqtt schemas``: write the MQTT contract's JSON Schema files for integrators.

The files (``docs/schemas/`` in the source) are generated from the code that
builds and checks each message (:mod:`edged.app.contract`); ``--check`` says
whether a folder still matches this version, which the tests run on the
committed copy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def render(schema: dict[str, Any]) -> str:
    """One schema file's text: UTF-8 JSON, two-space indents, a final newline."""
    return json.dumps(schema, ensure_ascii=False, indent=2) + "\n"


def differences(folder: Path) -> list[str]:
    """What in ``folder`` differs from this version's schemas (empty: current)."""
    from edged.app.contract import schemas

    wanted = {name: render(schema) for name, schema in schemas().items()}
    out = []
    for name, text in wanted.items():
        path = folder / name
        if not path.is_file():
            out.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            out.append(f"{path}: differs from this version")
    for path in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
        if path.relative_to(folder).as_posix() not in wanted:
            out.append(f"{path}: not a schema of this version")
    return out


def _schemas(args: argparse.Namespace) -> int:
    from edged.app.contract import schemas

    folder = Path(args.out)
    if args.check:
        problems = differences(folder)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print(f"FAIL: regenerate with: edged mqtt schemas --out {folder}", file=sys.stderr)
            return 1
        print(f"OK: {folder} holds this version's schemas")
        return 0
    files = schemas()
    for name, schema in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(schema), encoding="utf-8")
    stale = [line for line in differences(folder) if line.endswith("not a schema of this version")]
    for line in stale:
        print(f"edged: {line}; remove it", file=sys.stderr)
    print(f"wrote {len(files)} schema files to {folder}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mqtt", help="the MQTT contract: JSON Schema of every topic and command")
    msub = p.add_subparsers(dest="mqtt_command", metavar="ACTION", required=True)
    s = msub.add_parser(
        "schemas", help="write the JSON Schema files (one per topic and command, and topics.json)"
    )
    s.add_argument("--out", required=True, metavar="DIR", help="folder to write them to")
    s.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 unless DIR is current"
    )
    s.set_defaults(func=_schemas)
