"""Structured logging for the journal.

One line per event, ``key=value`` (logfmt) by default because that is what a
technician reads in ``journalctl -u edged``; JSON for log shippers. Every
component logs under its own name (``component=rfid``) and can have its own
level, so a noisy serial line can be turned up without drowning the rest.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

import structlog

from edged.config.schema import doc

LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True)
class LoggingConfig:
    """Journal output; per-component levels let one noisy device be turned up alone."""

    level: Literal["debug", "info", "warning", "error"] = field(
        default="info", metadata=doc("Default level for every component")
    )
    format: Literal["logfmt", "json"] = field(
        default="logfmt",
        metadata=doc("logfmt (key=value, reads well in journalctl) or json (for log shippers)"),
    )
    timestamps: bool = field(
        default=True,
        metadata=doc(
            "Prefix each line with a time stamp (the journal adds its own; set false under systemd)"
        ),
    )
    components: dict[str, str] = field(
        default_factory=dict,
        metadata=doc('Per-component level, e.g. { rfid = "debug", mqtt = "warning" }'),
    )

    def __post_init__(self) -> None:
        for name, lvl in self.components.items():
            if lvl not in ("debug", "info", "warning", "error"):
                raise ValueError(
                    f"components: level for {name!r} must be debug, info, warning or error, found {lvl!r}"
                )


_state: dict[str, Any] = {"default": logging.INFO, "per_component": {}}


def _level_filter(_logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    comp = event.get("component")
    threshold = _state["per_component"].get(comp, _state["default"])
    if logging.getLevelName(method.upper()) < threshold:
        raise structlog.DropEvent
    return event


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\\\n\t'):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def _logfmt(_logger: Any, _method: str, event: dict[str, Any]) -> str:
    """Render ``level= component= event= key=value ...`` in a stable order."""
    head = []
    for key in ("timestamp", "level", "component", "event"):
        if key in event:
            head.append(f"{key}={_logfmt_value(event.pop(key))}")
    tail = [f"{k}={_logfmt_value(v)}" for k, v in event.items()]
    return " ".join(head + tail)


def configure(
    level: str = "info",
    components: Mapping[str, str] | None = None,
    fmt: str = "logfmt",
    timestamps: bool = True,
    stream: TextIO | None = None,
) -> None:
    """Set up structlog once for the whole process.

    Under systemd the journal stamps each line itself, so ``timestamps`` can be
    turned off there; the demo and the CLI keep them.
    """
    _state["default"] = logging.getLevelName(level.upper())
    _state["per_component"] = {
        name: logging.getLevelName(lvl.upper()) for name, lvl in (components or {}).items()
    }
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _level_filter,
    ]
    if timestamps:
        processors.append(structlog.processors.TimeStamper(fmt="iso", utc=False))
    processors.append(structlog.processors.format_exc_info)
    if fmt == "json":
        processors.append(structlog.processors.JSONRenderer(ensure_ascii=False))
    else:
        processors.append(_logfmt)
    structlog.configure(
        processors=processors,
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(component: str) -> Any:
    """Logger bound to one component; the name shows in every line it writes."""
    return structlog.get_logger(component=component)
