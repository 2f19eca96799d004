"""What a driver declares about itself: documented config keys and its ``type``.

Each family of devices (camera, RFID reader, weighbridge indicator, display)
has a base config class naming the family; each device model is one module
that subclasses it and registers its ``type`` key with :func:`driver`. The
config schema picks the class by ``type``, the daemon and the probes build
the driver through :func:`family`, so adding a reader model is one new
module and its test: no if-chains to extend, no ``Literal`` to widen.

Families are found by importing every module of their package
(``drivers.<family>``), so a module only has to exist to be known.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")


def doc(text: str, **extra: Any) -> dict[str, Any]:
    """Field metadata: the line that documents a key in the example config.

    ``extra`` carries checks the schema applies to every value: ``min`` and
    ``max`` (inclusive), ``above`` (exclusive lower bound), ``unit`` (shown
    in the example), ``was`` (the key's old name, for a clear rename error).
    """
    return {"doc": text, **extra}


class Invalid(ValueError):
    """Raised from a config class's ``__post_init__`` with every problem it found.

    Each problem is ``(key, message)``; the key is relative to the section
    (``"antennas"``, or a deeper path such as ``"lanes[1].gpio.alarm.pin"``),
    so the schema can name the line of each one. A section reports all its
    problems at once instead of stopping at the first.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{k}: {m}" for k, m in problems))
        self.problems = problems


class DeviceConfig:
    """Base of every family's config: ``family`` names it, ``type`` picks the model.

    Subclasses are frozen dataclasses with a ``type: str`` field whose default
    is the model's key.
    """

    family: ClassVar[str] = ""


@dataclass(frozen=True)
class DriverType:
    """One registered model: its key, its config class and how to build it."""

    family: str
    name: str
    config: type
    build: Callable[..., Any]
    summary: str


_TYPES: dict[str, dict[str, DriverType]] = {}
_SCANNED: set[str] = set()


def driver(family: str, name: str, config: type, summary: str) -> Callable[[T], T]:
    """Register ``name`` in ``family``; decorates the class or factory that builds it.

    The factory is called as ``build(config, **context)``; what ``context``
    holds is the family's contract (see each family's package docstring).
    """

    def register(build: T) -> T:
        known = _TYPES.setdefault(family, {})
        if name in known and known[name].build is not build:
            raise RuntimeError(f"{family} type {name!r} registered twice")
        known[name] = DriverType(family, name, config, build, summary)  # type: ignore[arg-type]
        return build

    return register


def family(name: str) -> dict[str, DriverType]:
    """Every registered model of a family, importing its package's modules once."""
    if name not in _SCANNED:
        _SCANNED.add(name)
        package = importlib.import_module(f"drivers.{name}")
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{info.name}")
    return dict(sorted(_TYPES.get(name, {}).items()))


def build(cfg: DeviceConfig, **context: Any) -> Any:
    """The driver ``cfg`` describes (not started), built by its registered factory."""
    types = family(cfg.family)
    kind = getattr(cfg, "type", "")
    if kind not in types:
        raise ValueError(
            f"type: expected one of {', '.join(types)} for a {cfg.family}, found {kind!r}"
        )
    return types[kind].build(cfg, **context)


def raise_all(messages: list[str]) -> None:
    """Raise every ``"key: message"`` a section's checks found, at once, as :class:`Invalid`.

    A section's ``__post_init__`` appends what it finds instead of raising at
    the first, so the technician sees every problem in one run.
    """
    if messages:
        raise Invalid(
            [(m.split(": ", 1)[0], m.split(": ", 1)[1]) if ": " in m else ("", m) for m in messages]
        )
