"""Turn parsed TOML into typed, frozen config dataclasses — or say exactly what is wrong.

Each area of the daemon declares its config section as a frozen dataclass
whose fields carry ``metadata={"doc": ...}``. This module is the one place
that maps TOML values onto those classes, so every section gets the same
rules: unknown keys are errors (a typo must not silently fall back to a
default), every error names the key path, what was expected and what was
found, and all errors are reported together so a technician fixes the file
in one go instead of one restart per mistake.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin


def doc(text: str, **extra: Any) -> dict[str, Any]:
    """Field metadata: the line that documents a key in the example config."""
    return {"doc": text, **extra}


SECRET_WORDS = ("password", "secret", "hmac_key", "token", "key_file_pass")


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong in a config file, with where it is."""

    path: str
    message: str
    line: int | None = None

    def render(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line else filename
        return f"{where}: {self.path or '(top level)'}: {self.message}"


class SchemaError(Exception):
    """Raised with every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return (
            " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None)) + " (optional)"
        )
    if origin is list:
        (inner,) = get_args(tp) or (Any,)
        if dataclasses.is_dataclass(inner):
            return "array of tables"
        return f"list of {_type_name(inner)}"
    if origin is dict:
        return "table"
    if dataclasses.is_dataclass(tp):
        return "table"
    return {str: "string", int: "integer", float: "number", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _found(value: Any) -> str:
    kind = {
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        list: "array",
        dict: "table",
    }.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind} {text}"


def hints(cls: type) -> dict[str, Any]:
    """Resolved field types of a config dataclass (cached per class)."""
    cache = cls.__dict__.get("__edged_hints__")
    if cache is None:
        cache = typing.get_type_hints(cls)
        with contextlib.suppress(AttributeError, TypeError):
            cls.__edged_hints__ = cache  # type: ignore[attr-defined]
    return cache


class _Builder:
    def __init__(self, lines: Mapping[str, int]) -> None:
        self.lines = lines
        self.problems: list[Problem] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message, self._line(path)))

    def _line(self, path: str) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path.rpartition(".")[0] if "." in path else ""
        return None

    def convert(self, tp: Any, value: Any, path: str) -> Any:
        origin = get_origin(tp)
        if tp is Any:
            return value
        if origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) == 1:
                return self.convert(args[0], value, path)
            for arg in args:
                sub = _Builder(self.lines)
                out = sub.convert(arg, value, path)
                if not sub.problems:
                    return out
            self.fail(path, f"expected {_type_name(tp)}, found {_found(value)}")
            return None
        if origin is Literal:
            allowed = get_args(tp)
            if value not in allowed:
                self.fail(path, f"expected {_type_name(tp)}, found {_found(value)}")
            return value
        if origin is list:
            (inner,) = get_args(tp) or (Any,)
            if not isinstance(value, list):
                self.fail(path, f"expected {_type_name(tp)}, found {_found(value)}")
                return []
            return [self.convert(inner, v, f"{path}[{i}]") for i, v in enumerate(value)]
        if origin is dict:
            _, inner = get_args(tp) or (str, Any)
            if not isinstance(value, dict):
                self.fail(path, f"expected {_type_name(tp)}, found {_found(value)}")
                return {}
            return {k: self.convert(inner, v, f"{path}.{k}") for k, v in value.items()}
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                self.fail(path, f"expected {_type_name(tp)}, found {_found(value)}")
                return None
            return self.build(tp, value, path)
        if tp is bool:
            if not isinstance(value, bool):
                self.fail(path, f"expected true or false, found {_found(value)}")
            return value
        if tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(path, f"expected integer, found {_found(value)}")
            return value
        if tp is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.fail(path, f"expected number, found {_found(value)}")
                return value
            try:
                return float(value)
            except OverflowError:
                self.fail(path, f"expected number, found an integer too large: {_found(value)}")
                return value
        if tp is str:
            if not isinstance(value, str):
                self.fail(path, f"expected string, found {_found(value)}")
            return value
        return value

    def build(self, cls: type, data: Mapping[str, Any], path: str) -> Any:
        start = len(self.problems)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        types_ = hints(cls)
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            sub = f"{path}.{key}" if path else key
            if key not in fields:
                close = difflib.get_close_matches(key, list(fields), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                known = ", ".join(sorted(fields))
                self.fail(sub, f"unknown key{hint}; keys allowed here: {known}")
                continue
            before = len(self.problems)
            converted = self.convert(types_[key], value, sub)
            if len(self.problems) == before:
                kwargs[key] = converted
        for name, f in fields.items():
            missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if name not in data and missing:
                sub = f"{path}.{name}" if path else name
                self.fail(sub, f"required key missing: expected {_type_name(types_[name])}")
        if len(self.problems) > start:
            # Value checks on a half-built section would only add follow-on
            # errors that confuse more than they help.
            return None
        try:
            return cls(**kwargs)
        except ValueError as exc:
            text = str(exc)
            field_name, sep, message = text.partition(": ")
            if sep and field_name in fields:
                sub = f"{path}.{field_name}" if path else field_name
                self.fail(sub, message)
            else:
                self.fail(path, text)
        except TypeError as exc:
            self.fail(path, str(exc))
        return None


def build(cls: type, data: Mapping[str, Any], lines: Mapping[str, int] | None = None) -> Any:
    """Build ``cls`` from ``data``; raise :class:`SchemaError` listing every problem."""
    builder = _Builder(lines or {})
    result = builder.build(cls, data, "")
    if builder.problems:
        raise SchemaError(builder.problems)
    return result


def is_secret(name: str) -> bool:
    return any(word in name.lower() for word in SECRET_WORDS)


def to_dict(obj: Any, mask_secrets: bool = False) -> Any:
    """Plain dict/list form of a config object, secrets masked for display."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            secret = f.metadata.get("secret") or is_secret(f.name)
            if mask_secrets and secret and value:
                out[f.name] = "********"
            else:
                out[f.name] = to_dict(value, mask_secrets)
        return out
    if isinstance(obj, list | tuple):
        return [to_dict(v, mask_secrets) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v, mask_secrets) for k, v in obj.items()}
    return obj
