"""Finding, reading and validating the daemon's one config file.

The file is TOML, default ``/etc/edged/edged.toml``, overridable with
``--config`` or ``EDGED_CONFIG``. Each area owns its section as a frozen
dataclass (see :mod:`edged.config.schema` for the rules; the root is
:class:`edged.config.root.EdgedConfig`); this module turns every problem
into one line naming the file, the line, the key path, what was expected
and what was found.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from edged import sitetime
from edged.config import schema
from edged.config.positions import key_lines
from edged.config.root import EdgedConfig, message_as_written, short_form, written_as

DEFAULT_PATH = "/etc/edged/edged.toml"
ENV_VAR = "EDGED_CONFIG"


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
    data, lines, aliases, problems = short_form(data, key_lines(text))
    try:
        cfg = schema.build(EdgedConfig, data, lines)
    except schema.SchemaError as exc:
        problems += exc.problems
    if problems:
        shown = [
            schema.Problem(
                written_as(p.path, aliases), message_as_written(p.message, aliases), p.line
            )
            for p in problems
        ]
        raise ConfigError(filename, shown)
    return cfg


def load_config(path: str | os.PathLike[str] | None = None) -> Any:
    """Load and validate the config file; :class:`ConfigError` says what is wrong and where.

    The process adopts the file's ``site.timezone`` for every time it writes.
    """
    file = resolve_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            str(file),
            [
                schema.Problem(
                    "",
                    "file not found: copy the installed example"
                    f" ({Path(DEFAULT_PATH).with_name('edged.example.toml')}, or write it with"
                    f" edged config example > {DEFAULT_PATH}), edit it, or pass --config FILE",
                )
            ],
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(file), [schema.Problem("", f"cannot read file: {exc}")]) from None
    cfg = parse(text, str(file))
    sitetime.set_zone(cfg.site.timezone)
    return cfg
