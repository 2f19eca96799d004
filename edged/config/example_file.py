"""Write a config as commented TOML: the example config and ``edged config show``.

The example file is generated from the schema, so a key cannot exist in the
code without being documented, and a test keeps the committed file in step.
Every commented-out line is valid TOML once its ``#`` is removed: a key not
set by default is shown with a value of its type to edit, and a device not
fitted by default is shown whole, ready to uncomment.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, get_args, get_origin

from drivers.config import DeviceConfig, family
from edged.config import schema

HEADER = """\
# edged example config — every key, its default and what it means.
# Copy to /etc/edged/edged.toml and change what your gate needs; keys left
# out keep the default shown here. Unknown keys are errors, so a typo is
# reported instead of silently ignored. Check with: edged config check
# Generated from the schema by `edged config example`; do not edit by hand.
"""

LANES_INTRO = """\
# ==== Lanes (车道)
# One lane: write its sections at the top level, as below ([lane], [camera],
# [trigger], [gpio], [rfid], [scale]). Several lanes (usually an entry and an
# exit): one [[lanes]] entry per lane with the keys of [lane], its sections
# written [lanes.camera], [lanes.gpio], ... (see the two-lane example at the
# end of this file). The two forms cannot be mixed."""

TWO_LANES = """\
# ==== Two lanes side by side, sharing one RFID reader (an example; each
# [[lanes]] entry takes every key of [lane] and the sections shown above)
# [[lanes]]
# name = "entry"
# direction = "in"
# rfid_antennas = [1]
# [lanes.camera]
# type = "opencv"
# device = "rtsp://192.168.1.64/Streaming/Channels/101"
# [lanes.gpio.ground_loop]
# pin = 22
# [lanes.rfid]
# type = "r2000"
# port = "/dev/ttyUSB0"
# antennas = [1, 2]
#
# [[lanes]]
# name = "exit"
# direction = "out"
# rfid_antennas = [2]
# shares = { rfid = "entry" }
# [lanes.camera]
# type = "opencv"
# device = "rtsp://192.168.1.65/Streaming/Channels/101"
# [lanes.gpio.barrier_open]
# pin = 24
# [lanes.gpio.alarm]
# pin = 25
# [lanes.gpio.ground_loop]
# pin = 5
# [lanes.gpio.ir_beam]
# pin = 6"""


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


def _placeholder(tp: Any) -> str:
    """A value of the key's type to edit, so an uncommented line is valid TOML."""
    args = [a for a in get_args(tp) if a is not type(None)] or [tp]
    inner = args[0]
    if get_origin(inner) is not None and "Literal" in str(get_origin(inner)):
        return _value(get_args(inner)[0])
    return {int: "0", float: "0.0", bool: "false", str: '""'}.get(
        inner, "[]" if get_origin(inner) is list else "{}" if get_origin(inner) is dict else '""'
    )


def _note(f: dataclasses.Field[Any], tp: Any) -> str:
    """The documentation line of a key: its text, its allowed values and bounds."""
    note = f.metadata.get("doc", "")
    origin = get_origin(tp)
    if origin is not None and "Literal" in str(origin):
        note += " (" + " | ".join(str(a) for a in get_args(tp)) + ")"
    meta = f.metadata
    bounds = []
    if "min" in meta and "max" in meta:
        bounds.append(f"{meta['min']}..{meta['max']}")
    else:
        if "min" in meta:
            bounds.append(f">= {meta['min']}")
        if "max" in meta:
            bounds.append(f"<= {meta['max']}")
    if "above" in meta:
        bounds.append(f"> {meta['above']}")
    if bounds:
        note += f" [{', '.join(bounds)}]"
    return note


def _lines(cls: type, value: Any, comments: bool, commented: bool, skip: set[str]) -> list[str]:
    """``key = value`` lines of one table's plain keys (not its sub-tables)."""
    out: list[str] = []
    types_ = schema.hints(cls)
    c = "# " if commented else ""
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = types_[f.name]
        if value is not None:
            v = getattr(value, f.name)
        elif f.default is not dataclasses.MISSING:
            v = f.default
        elif f.default_factory is not dataclasses.MISSING:
            v = f.default_factory()
        else:
            v = dataclasses.MISSING
        if _is_table(v) or _is_table_type(tp):
            continue
        note = _note(f, tp)
        if v is dataclasses.MISSING:
            note += " (required)"
        elif v is None:
            note += " (not set by default)"
        if comments and note:
            out.append(f"{'#   ' if commented else '# '}{note}")
        if v is dataclasses.MISSING or v is None:
            out.append(f"# {_key(f.name)} = {_placeholder(tp)}")
        else:
            out.append(f"{c}{_key(f.name)} = {_value(v)}")
    return out


def _is_table(v: Any) -> bool:
    return dataclasses.is_dataclass(v) and not isinstance(v, type)


def _is_table_type(tp: Any) -> bool:
    args = [a for a in get_args(tp) if a is not type(None)] or [tp]
    inner = args[0]
    if get_origin(inner) is list:
        (inner,) = get_args(inner) or (None,)
    return dataclasses.is_dataclass(inner)


def _device(path: str, base: type, value: Any, note: str, comments: bool) -> list[str]:
    """A device section: its type's keys, then the other types' own keys, commented."""
    fitted = value is not None
    types = family(base.family)
    default = next(f.default for f in dataclasses.fields(base) if f.name == "type")
    cls = type(value) if fitted else types[default].config
    c = "" if fitted else "# "
    out = [f"# ---- {note}"] if comments else []
    out.append(f"{c}[{path}]")
    if fitted:
        out += _lines(cls, value, comments, False, set())
    else:
        out += _lines(cls, None, comments, True, set())
    if comments:
        out.append(f"#   (types: {', '.join(types)}; each type's own keys below)")
    for name, t in types.items():
        if t.config is cls:
            continue
        extra = {f.name for f in dataclasses.fields(t.config)} - {
            f.name for f in dataclasses.fields(base)
        }
        if not extra and not comments:
            continue
        if comments:
            out.append(f"#   with type = {json.dumps(name)} ({t.summary}):")
        skip = {f.name for f in dataclasses.fields(t.config)} - extra
        out += _lines(t.config, None, comments, True, skip)
    return out


def _commented_table(path: str, cls: type, comments: bool) -> str:
    """An empty array of tables, shown as a commented-out entry with every key."""
    lines = ["# none configured by default; one entry looks like this:", f"# [[{path}]]"]
    lines += _lines(cls, None, comments, True, set())
    return "\n".join(lines)


def render(
    obj: Any,
    comments: bool = True,
    mask_secrets: bool = False,
    _prefix: str = "",
    skip: tuple[str, ...] = (),
) -> str:
    """TOML for a config dataclass tree (the effective config, ``edged config show``)."""
    out: list[str] = []
    tables: list[tuple[str, Any, str, dataclasses.Field[Any]]] = []
    arrays: list[tuple[str, Any, str]] = []
    types_ = schema.hints(type(obj))
    for f in dataclasses.fields(obj):
        if f.name in skip:
            continue
        value = getattr(obj, f.name)
        note = f.metadata.get("doc", "")
        tp = types_[f.name]
        if _is_table(value) or (value is None and _device_base(tp) is not None):
            tables.append((f.name, value, note, f))
            continue
        if isinstance(value, list | tuple) and value and all(_is_table(v) for v in value):
            arrays.append((f.name, value, note))
            continue
        if comments and note:
            out.append(f"# {_note(f, tp)}" + (" (not set by default)" if value is None else ""))
        secret = f.metadata.get("secret") or schema.is_secret(f.name)
        if mask_secrets and secret and value:
            out.append(f'{_key(f.name)} = "********"')
        elif value is None:
            out.append(f"# {_key(f.name)} = {_placeholder(tp)}")
        elif isinstance(value, list | tuple) and not value and get_origin(tp) is list:
            (inner,) = get_args(tp) or (None,)
            if dataclasses.is_dataclass(inner):
                out.append(_commented_table(f"{_prefix}{f.name}", inner, comments))
            else:
                out.append(f"{_key(f.name)} = []")
        else:
            out.append(f"{_key(f.name)} = {_value(value)}")
    for name, value, note, f in tables:
        full = f"{_prefix}{name}"
        base = _device_base(types_[f.name])
        out.append("")
        if base is not None:
            out += _device(full, base, value, note, comments)
            continue
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


def _device_base(tp: Any) -> type | None:
    args = [a for a in get_args(tp) if a is not type(None)] or [tp]
    inner = args[0]
    if isinstance(inner, type) and issubclass(inner, DeviceConfig) and inner.family:
        return inner
    return None


def example() -> str:
    """The documented example config: every section, the one-lane short form, two lanes."""
    from edged.config.root import EdgedConfig
    from edged.lane.config import LaneConfig

    cfg = EdgedConfig()
    lane = LaneConfig()
    parts = [HEADER.rstrip("\n")]
    text = render(cfg, skip=("lanes",))
    lane_text = _lane_short_form(lane)
    return "\n".join([*parts, "", text, "", LANES_INTRO, "", lane_text, "", TWO_LANES, ""])


def _lane_short_form(lane: Any) -> str:
    """One lane written as top-level sections: [lane] for its plain keys, then its devices."""
    plain = _lines(type(lane), lane, True, False, set())
    out = ["# ---- The lane (车道)", "[lane]", *plain]
    body = render(lane, True, False, "")
    start = body.split("\n")
    first = next(i for i, ln in enumerate(start) if ln.startswith(("[", "# ----", "# [")))
    out += ["", *start[first:]]
    return "\n".join(out)
