"""Where each key sits in a TOML file, so config errors can name the line.

``tomllib`` parses values but forgets positions. This scanner walks the text
once and maps dotted key paths (``mqtt.host``, ``hj212.platforms[1].port``)
to line numbers. It only needs to be right for files that ``tomllib``
already accepted, which keeps it small.
"""

from __future__ import annotations

import re

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _split_key(text: str) -> list[str]:
    parts: list[str] = []
    i = 0
    text = text.strip()
    while i < len(text):
        ch = text[i]
        if ch in " \t.":
            i += 1
            continue
        if ch in "\"'":
            end = text.find(ch, i + 1)
            if end < 0:
                break
            parts.append(text[i + 1 : end])
            i = end + 1
            continue
        m = _BARE.match(text, i)
        if not m:
            break
        parts.append(m.group(0))
        i = m.end()
    return parts


def _strip_comment(line: str) -> str:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def key_lines(text: str) -> dict[str, int]:
    """Map of dotted key path -> 1-based line number."""
    lines: dict[str, int] = {}
    prefix = ""
    array_counts: dict[str, int] = {}
    depth = 0  # open brackets of a multi-line array value
    in_multiline = ""
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if in_multiline in raw:
                in_multiline = ""
            continue
        line = _strip_comment(raw).strip()
        if not line:
            continue
        if depth > 0:
            depth += line.count("[") - line.count("]")
            continue
        if line.startswith("[["):
            name = ".".join(_split_key(line.strip("[] ")))
            idx = array_counts.get(name, -1) + 1
            array_counts[name] = idx
            prefix = f"{name}[{idx}]"
            lines.setdefault(name, lineno)
            lines[prefix] = lineno
            continue
        if line.startswith("["):
            prefix = ".".join(_split_key(line.strip("[] ")))
            lines.setdefault(prefix, lineno)
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        path = ".".join(_split_key(key))
        full = f"{prefix}.{path}" if prefix else path
        lines[full] = lineno
        value = value.strip()
        for q in ('"""', "'''"):
            if value.startswith(q) and value.count(q) == 1:
                in_multiline = q
        if value.startswith("["):
            depth = value.count("[") - value.count("]")
    return lines
