"""``[site]``: who this box is, as the ledger, reports and MQTT name it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drivers.config import raise_all
from edged.config.schema import doc

_TZ_NAME = re.compile(r"[A-Za-z0-9_+\-]{1,32}(/[A-Za-z0-9_+\-]{1,32}){0,2}")


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
    timezone: str = field(
        default="Asia/Shanghai",
        metadata=doc(
            "Time zone of every time the box writes: logs, ledger, MQTT, reports, HJ 212"
            " (each time also carries its UTC offset)"
        ),
    )

    def __post_init__(self) -> None:
        problems: list[str] = []
        for name in ("id", "gate_id"):
            value = getattr(self, name)
            if not 0 < len(value) <= 64 or not all(
                c.isascii() and (c.isalnum() or c in "-_") for c in value
            ):
                problems.append(
                    f"{name}: expected 1-64 ASCII letters, digits, '-' or '_' (used in MQTT topics), found {value!r}"
                )
        try:  # checked here: the gate loads it at start and would stop with a traceback
            # zoneinfo recurses on silly names: only a name's shape gets as far as it
            ok = bool(_TZ_NAME.fullmatch(self.timezone)) and ZoneInfo(self.timezone) is not None
        except (ZoneInfoNotFoundError, ValueError, OSError):
            ok = False
        if not ok:
            problems.append(
                f"timezone: expected a time zone name such as Asia/Shanghai, found {self.timezone!r}"
            )
        raise_all(problems)
