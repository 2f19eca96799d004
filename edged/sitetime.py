"""The site's clock: one time zone for every time the box writes.

Logs, ledger rows, audit entries and MQTT envelopes must agree on the offset
they carry, whatever zone the board's operating system happens to be set to
(images often ship in UTC). The config's ``site.timezone`` is adopted once,
when the config is loaded; until then the board's zone is used.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

_zone: tzinfo | None = None


def set_zone(zone: str | tzinfo | None) -> None:
    """Adopt ``zone`` (a name such as ``Asia/Shanghai``) for every time written from now on."""
    global _zone
    _zone = ZoneInfo(zone) if isinstance(zone, str) else zone


def zone() -> tzinfo | None:
    """The adopted zone, or None while the board's own zone is used."""
    return _zone


def now() -> datetime:
    """The current time, aware, in the site's zone."""
    return datetime.now(_zone) if _zone is not None else datetime.now().astimezone()


def now_iso(timespec: str = "milliseconds") -> str:
    """The current time as ISO 8601 with its UTC offset."""
    return now().isoformat(timespec=timespec)


def local(when: datetime) -> datetime:
    """``when`` shown in the site's zone (a naive time is taken as the board's)."""
    if when.tzinfo is None:
        when = when.astimezone()
    return when.astimezone(_zone) if _zone is not None else when.astimezone()
