"""Write a config as commented TOML: the example config and ``edged config show``.

The example file is generated from the schema, so a key cannot exist in the
code without being documented, and a test keeps the committed file in step.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, get_args, get_origin

from edged.config import schema


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return (
            "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }" if v else "{}"
        )
    if v is None:
        return '""'
    return json.dumps(str(v), ensure_ascii=False)


def _key(k: str) -> str:
    return (
        k
        if k.replace("_", "").replace("-", "").isalnum() and k.isascii()
        else json.dumps(k, ensure_ascii=False)
    )


def _allowed(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is not None and "Literal" in str(origin):
        return " (" + " | ".join(str(a) for a in get_args(tp)) + ")"
    return ""


def _is_table(tp: Any, value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _is_table_array(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(dataclasses.is_dataclass(v) and not isinstance(v, type) for v in value)
    )


def _commented_table(path: str, cls: type, comments: bool) -> str:
    """An empty array of tables, shown as a commented-out entry with every key."""
    lines = ["# none configured by default; one entry looks like this:", f"# [[{path}]]"]
    types_ = schema.hints(cls)
    for f in dataclasses.fields(cls):
        note = f.metadata.get("doc", "")
        if comments and note:
            lines.append(f"#   {note}{_allowed(types_[f.name])}")
        if f.default is not dataclasses.MISSING:
            value = _value(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            value = _value(f.default_factory())
        else:
            value = f"<{schema._type_name(types_[f.name])}, required>"
        lines.append(f"# {_key(f.name)} = {value}")
    return "\n".join(lines)


def render(obj: Any, comments: bool = True, mask_secrets: bool = False, _prefix: str = "") -> str:
    """TOML for a config dataclass tree; ``None`` values are written commented out."""
    out: list[str] = []
    tables: list[tuple[str, Any, str]] = []
    arrays: list[tuple[str, Any, str]] = []
    types_ = schema.hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        note = f.metadata.get("doc", "")
        if _is_table(types_[f.name], value):
            tables.append((f.name, value, note))
            continue
        if _is_table_array(value):
            arrays.append((f.name, value, note))
            continue
        if comments and note:
            out.append(f"# {note}{_allowed(types_[f.name])}")
        secret = f.metadata.get("secret") or schema.is_secret(f.name)
        if mask_secrets and secret and value:
            out.append(f'{_key(f.name)} = "********"')
        elif value is None:
            out.append(f"# {_key(f.name)} = (not set)")
        elif isinstance(value, list | tuple) and not value and get_origin(types_[f.name]) is list:
            (inner,) = get_args(types_[f.name]) or (None,)
            if dataclasses.is_dataclass(inner):
                out.append(_commented_table(f"{_prefix}{f.name}", inner, comments))
            else:
                out.append(f"{_key(f.name)} = []")
        else:
            out.append(f"{_key(f.name)} = {_value(value)}")
    for name, value, note in tables:
        full = f"{_prefix}{name}"
        out.append("")
        if comments and note:
            out.append(f"# ---- {note}")
        out.append(f"[{full}]")
        body = render(value, comments, mask_secrets, full + ".")
        if body:
            out.append(body)
    for name, values, note in arrays:
        full = f"{_prefix}{name}"
        for v in values:
            out.append("")
            if comments and note:
                out.append(f"# {note}")
            out.append(f"[[{full}]]")
            body = render(v, comments, mask_secrets, full + ".")
            if body:
                out.append(body)
    return "\n".join(out).strip("\n")
