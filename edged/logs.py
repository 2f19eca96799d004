"""Structured logging for the journal.

One line per event, ``key=value`` (logfmt) by default because that is what a
technician reads in ``journalctl -u edged``; JSON for log shippers. Every
component logs under its own name (``component=rfid``) and can have its own
level, so a noisy serial line can be turned up without drowning the rest.

Under systemd, stderr is a stream into the journal (``JOURNAL_STREAM`` names
it). There every line starts with its syslog priority, ``<4>`` for a warning,
which journald strips and stores as the entry's priority: without it every
line is stored at "info" and ``journalctl -p warning`` shows nothing. The
journal also stamps each entry, so by default lines carry no time stamp
there; elsewhere (demo, CLI, a plain log file) they do, with an explicit
offset in the site's time zone, the same zone the ledger and reports use.
Library messages from Python's ``logging`` (pymodbus) and ``warnings``
(gpiozero) go through the same path, so they carry a priority too.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from types import TracebackType
from typing import Any, Literal, TextIO
from zoneinfo import ZoneInfo

import structlog

from drivers.config import raise_all
from drivers.log import get_logger
from edged import sitetime
from edged.config.schema import doc

__all__ = ["LoggingConfig", "configure", "get_logger"]

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
    timestamps: bool | Literal["auto"] = field(
        default="auto",
        metadata=doc(
            'Time stamp on each line, with the offset of site.timezone: "auto" = not under systemd'
            " (the journal stamps each entry itself), yes elsewhere; or true / false"
        ),
    )
    components: dict[str, str] = field(
        default_factory=dict,
        metadata=doc('Per-component level, e.g. { rfid = "debug", mqtt = "warning" }'),
    )

    def __post_init__(self) -> None:
        problems: list[str] = []
        for name, lvl in self.components.items():
            if lvl not in ("debug", "info", "warning", "error"):
                problems.append(
                    f"components: level for {name!r} must be debug, info, warning or error, found {lvl!r}"
                )
        raise_all(problems)


# syslog(3) priorities, which journald reads from a leading "<N>" on a line.
PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}

_KEY_ORDER = ("timestamp", "level", "component", "event")

_state: dict[str, Any] = {"default": logging.INFO, "per_component": {}, "journal": False}


def stderr_is_journal(stream: TextIO | None = None) -> bool:
    """True if ``stream`` (default stderr) is the journal stream systemd connected.

    systemd sets ``JOURNAL_STREAM=<device>:<inode>`` for a service whose output
    goes to the journal; the stream is the journal only if the file descriptor
    is still that one (a child with redirected stderr inherits the variable).
    """
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat((stream or sys.stderr).fileno())
    except (AttributeError, OSError, ValueError):  # no real file behind it (StringIO, closed)
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


def _level_filter(_logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    comp = event.get("component")
    threshold = _state["per_component"].get(comp, _state["default"])
    if logging.getLevelName(method.upper()) < threshold:
        raise structlog.DropEvent
    return event


def _drop_none(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """A key whose value is None says nothing: leave it out (no ``flags=None``)."""
    return {k: v for k, v in event.items() if v is not None}


def _stamper(tz: tzinfo | None) -> Any:
    """ISO 8601 time with an explicit offset: the site's zone, else the board's.

    Without ``tz`` the zone is looked up on each line: a command's logging is set
    up before its config is read, and from then on (``sitetime.set_zone``) its
    lines carry the site's offset like the daemon's.
    """

    def stamp(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
        zone = tz if tz is not None else sitetime.zone()
        now = datetime.now(zone) if zone is not None else datetime.now().astimezone()
        event["timestamp"] = now.isoformat(timespec="milliseconds")
        return event

    return stamp


def _with_priority(render: Any) -> Any:
    """Prefix the rendered line with the syslog priority journald reads."""

    def prefixed(logger: Any, method: str, event: dict[str, Any]) -> str:
        level = event.get("level", method)
        return f"<{PRIORITY.get(level, 6)}>{render(logger, method, event)}"

    return prefixed


class _ToStructlog(logging.Handler):
    """Python ``logging`` records (libraries) as structlog events of the same level."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            method = record.levelname.lower()
            if method not in LEVELS:
                method = "critical" if record.levelno >= logging.CRITICAL else "info"
            log = structlog.get_logger(component=record.name.split(".")[0])
            getattr(log, method)(record.getMessage().strip(), logger=record.name)
        except Exception:  # logging must never take the daemon down
            self.handleError(record)


def _bridge_stdlib(per_component: Mapping[str, int]) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _ToStructlog):
            root.removeHandler(handler)
    root.addHandler(_ToStructlog())
    # Libraries only say what matters unless a component level asks for more
    # (``components = { pymodbus = "debug" }``).
    root.setLevel(logging.WARNING)
    for name, level in per_component.items():
        logging.getLogger(name).setLevel(level)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """``warnings.warn`` from a library (gpiozero's fallbacks) as one warning line."""
    structlog.get_logger(component="python").warning(
        "python_warning",
        category=category.__name__,
        message=str(message),
        where=f"{os.path.basename(filename)}:{lineno}",
    )


def _uncaught(
    kind: type[BaseException], exc: BaseException, tb: TracebackType | None, where: str = "main"
) -> None:
    structlog.get_logger(component="edged").critical(
        "uncaught_exception",
        thread=where,
        exc_info=(kind, exc, tb),
        hint="a bug: report this line with the journal around it",
    )


def _thread_uncaught(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    _uncaught(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback, name)


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written (it may be replaced after
    configure: pytest's capture, a CLI that redirects it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(
    level: str = "info",
    components: Mapping[str, str] | None = None,
    fmt: str = "logfmt",
    timestamps: bool | Literal["auto"] = "auto",
    stream: TextIO | None = None,
    timezone: str | tzinfo | None = None,
    journal: bool | None = None,
) -> None:
    """Set up structlog once for the whole process.

    ``journal`` (default: detected from ``JOURNAL_STREAM``) prefixes each line
    with its syslog priority and sends Python warnings and uncaught exceptions
    through the log as one line each, instead of text stored line by line at
    "info".
    ``timestamps="auto"`` stamps lines unless they go to the journal, which
    stamps entries itself. ``timezone`` is the site's (``site.timezone``).
    """
    if journal is None:
        journal = stderr_is_journal(stream)
    out: Any = stream or _CurrentStderr()
    if timestamps == "auto":
        timestamps = not journal
    tz = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
    _state["default"] = logging.getLevelName(level.upper())
    _state["per_component"] = {
        name: logging.getLevelName(lvl.upper()) for name, lvl in (components or {}).items()
    }
    _state["journal"] = journal
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _level_filter,
        _drop_none,
    ]
    if timestamps:
        processors.append(_stamper(tz))
    processors.append(structlog.processors.format_exc_info)
    if fmt == "json":
        render: Any = structlog.processors.JSONRenderer(ensure_ascii=False, default=str)
    else:
        render = structlog.processors.LogfmtRenderer(
            key_order=list(_KEY_ORDER), drop_missing=True, bool_as_flag=False
        )
    processors.append(_with_priority(render) if journal else render)
    structlog.configure(
        processors=processors,
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    _bridge_stdlib(_state["per_component"])
    if journal:
        warnings.showwarning = _show_warning
        sys.excepthook = _uncaught
        threading.excepthook = _thread_uncaught


def print_stderr(text: str, level: str = "error") -> None:
    """Print a human message (a config error, a refusal to start) on stderr.

    Under the journal each line gets the priority of ``level``, so the reason a
    start failed shows in ``journalctl -p err``; on a terminal it reads as is.
    """
    prefix = f"<{PRIORITY[level]}>" if stderr_is_journal() else ""
    sys.stderr.write("".join(f"{prefix}{line}\n" for line in text.splitlines() or [""]))
    sys.stderr.flush()
