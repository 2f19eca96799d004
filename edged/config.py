"""The daemon's one config file: schema, loading, and the messages a technician sees.

The file is TOML, default ``/etc/edged/edged.toml``, overridable with
``--config`` or ``EDGED_CONFIG``. Each area owns its section as a frozen
dataclass (see :mod:`edged.schema` for the rules); this module assembles
them into :class:`EdgedConfig` and turns every problem into one line naming
the file, the line, the key path, what was expected and what was found.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edged import schema
from edged.tomlpos import key_lines

DEFAULT_PATH = "/etc/edged/edged.toml"
ENV_VAR = "EDGED_CONFIG"
_TZ_NAME = re.compile(r"[A-Za-z0-9_+\-]{1,32}(/[A-Za-z0-9_+\-]{1,32}){0,2}")


def doc(text: str, **extra: Any) -> dict[str, Any]:
    """Field metadata: the line that documents a key in the example config."""
    return {"doc": text, **extra}


@dataclass(frozen=True)
class SiteConfig:
    """Who this box is: the plant and the gate, as the ledger and MQTT name them."""

    id: str = field(
        default="site1",
        metadata=doc(
            "Site (plant) id, used in MQTT topics and ledger rows; letters, digits, - and _"
        ),
    )
    name: str = field(default="", metadata=doc("Plant name as printed on reports (企业名称)"))
    gate_id: str = field(
        default="gate1",
        metadata=doc("Gate id, unique within the site (门禁编号); also the MQTT client id"),
    )
    gate_name: str = field(
        default="", metadata=doc("Gate name as printed on reports, e.g. 东门 / east gate")
    )
    direction: Literal["in", "out", "both"] = field(
        default="in",
        metadata=doc("Traffic direction this lane records: in (进厂), out (出厂) or both"),
    )
    timezone: str = field(
        default="Asia/Shanghai",
        metadata=doc("Time zone for reports and HJ 212 times (the ledger also stores UTC offsets)"),
    )

    def __post_init__(self) -> None:
        for name in ("id", "gate_id"):
            value = getattr(self, name)
            if not 0 < len(value) <= 64 or not all(
                c.isascii() and (c.isalnum() or c in "-_") for c in value
            ):
                raise ValueError(
                    f"{name}: expected 1-64 ASCII letters, digits, '-' or '_' (used in MQTT topics), found {value!r}"
                )
        try:  # checked here: the gate loads it at start and would stop with a traceback
            if not _TZ_NAME.fullmatch(self.timezone):  # zoneinfo recurses on silly names
                raise ValueError(self.timezone)
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"timezone: expected a time zone name such as Asia/Shanghai, found {self.timezone!r}"
            ) from None


@dataclass(frozen=True)
class DaemonConfig:
    """Process-wide settings: where data lives and how the service talks to systemd."""

    data_dir: str = field(
        default="/var/lib/edged",
        metadata=doc(
            "Directory for the ledger, outbox, images and state (must be writable by the edged user)"
        ),
    )
    heartbeat_seconds: float = field(
        default=5.0,
        metadata=doc(
            "How often the heartbeat file is written; the next start uses it to tell how long the box was down"
        ),
    )
    health_seconds: float = field(
        default=30.0, metadata=doc("How often health status is published (retained) on MQTT")
    )
    stop_timeout_seconds: float = field(
        default=10.0,
        metadata=doc("Time allowed to stop all components on SIGTERM before giving up"),
    )
    restart_backoff_max_seconds: float = field(
        default=60.0, metadata=doc("Longest wait between restarts of a failed component")
    )

    def __post_init__(self) -> None:
        if self.heartbeat_seconds <= 0:
            raise ValueError(
                f"heartbeat_seconds: expected a positive number, found {self.heartbeat_seconds}"
            )
        if not 1 <= self.stop_timeout_seconds <= 60:
            raise ValueError(
                f"stop_timeout_seconds: expected 1..60, found {self.stop_timeout_seconds}"
            )


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
        for name, lvl in self.components.items():
            if lvl not in ("debug", "info", "warning", "error"):
                raise ValueError(
                    f"components: level for {name!r} must be debug, info, warning or error, found {lvl!r}"
                )


class ConfigError(Exception):
    """A config file that cannot be used; ``str()`` is what the technician reads."""

    def __init__(self, filename: str, problems: list[schema.Problem]) -> None:
        self.filename = filename
        self.problems = problems
        lines = [p.render(filename) for p in problems]
        super().__init__("\n".join(lines))


def resolve_path(path: str | os.PathLike[str] | None) -> Path:
    """``--config`` wins, then ``EDGED_CONFIG``, then the system default."""
    if path:
        return Path(path)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else Path(DEFAULT_PATH)


def parse(text: str, filename: str) -> Any:
    """Validate TOML text against the full schema."""
    from edged.sections import EdgedConfig

    try:
        data = tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer too long to convert
        msg = str(exc)
        line = None
        if "line " in msg:
            try:
                line = int(msg.split("line ")[1].split(",")[0].split(")")[0])
            except ValueError:
                line = None
        raise ConfigError(
            filename, [schema.Problem("", f"TOML syntax error: {msg}", line)]
        ) from None
    except RecursionError:
        raise ConfigError(
            filename, [schema.Problem("", "TOML syntax error: arrays or tables nested too deeply")]
        ) from None
    try:
        return schema.build(EdgedConfig, data, key_lines(text))
    except schema.SchemaError as exc:
        raise ConfigError(filename, exc.problems) from None


def load_config(path: str | os.PathLike[str] | None = None) -> Any:
    """Load and validate the config file; :class:`ConfigError` says what is wrong and where."""
    file = resolve_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            str(file),
            [
                schema.Problem(
                    "", "file not found: create it from config/edged.example.toml or pass --config"
                )
            ],
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(file), [schema.Problem("", f"cannot read file: {exc}")]) from None
    return parse(text, str(file))
