"""The root config schema: one section per area of the daemon, and the lanes.

Each area keeps its section class next to its code; this module only puts
them together, in the order the example config documents them, turns the
one-lane short form into ``[[lanes]]``, and runs the checks that span
sections (:mod:`edged.config.checks`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from drivers.config import Invalid
from edged.admission.config import RegistryConfig
from edged.admission.policy import PolicyConfig
from edged.app.config import DaemonConfig
from edged.config.checks import cross_checks
from edged.config.schema import Problem, doc
from edged.config.site import SiteConfig
from edged.datalogger.instruments import InstrumentConfig
from edged.datalogger.registers import ModbusConfig
from edged.datalogger.store import DataStoreConfig
from edged.hj212.config import Hj212Config
from edged.lane.config import LaneConfig
from edged.ledger.retention import LedgerConfig
from edged.logs import LoggingConfig
from edged.lpr.config import LprConfig
from edged.mqtt.config import MqttConfig
from edged.push.config import ReceiverConfig
from edged.video.config import ClipsConfig

#: Top-level sections of the one-lane short form, and where each goes in a lane.
SHORT_FORM = {"lane": "", "camera": "camera", "trigger": "trigger", "gpio": "gpio",
              "rfid": "rfid", "scale": "scale", "display": "display",
              "video": "video"}  # fmt: skip


@dataclass(frozen=True)
class EdgedConfig:
    """The whole file."""

    site: SiteConfig = field(default_factory=SiteConfig, metadata=doc("Plant and gate identity"))
    daemon: DaemonConfig = field(
        default_factory=DaemonConfig, metadata=doc("Process, data directory, systemd")
    )
    logging: LoggingConfig = field(default_factory=LoggingConfig, metadata=doc("Journal output"))
    lanes: list[LaneConfig] = field(
        default_factory=lambda: [LaneConfig()],
        metadata=doc("Lanes of this gate (车道): usually an entry and an exit"),
    )
    receiver: ReceiverConfig = field(
        default_factory=ReceiverConfig,
        metadata=doc("HTTP receiver for plate cameras that push their reads (Zhenshi, Hikvision)"),
    )
    clips: ClipsConfig = field(
        default_factory=ClipsConfig,
        metadata=doc("Clips of passages kept on the box (lanes with video.clip = true)"),
    )
    lpr: LprConfig = field(default_factory=LprConfig, metadata=doc("Plate recognition (车牌识别)"))
    policy: PolicyConfig = field(
        default_factory=PolicyConfig, metadata=doc("Admission policy (准入规则)")
    )
    registry: RegistryConfig = field(
        default_factory=RegistryConfig,
        metadata=doc("Local vehicle registry (车辆台账), blacklist and approvals"),
    )
    ledger: LedgerConfig = field(
        default_factory=LedgerConfig,
        metadata=doc("Electronic ledger (电子台账), images and export"),
    )
    mqtt: MqttConfig = field(default_factory=MqttConfig, metadata=doc("MQTT uplink"))
    hj212: Hj212Config = field(
        default_factory=Hj212Config, metadata=doc("HJ 212 platforms, 2017 and 2025 (一点多传)")
    )
    modbus: ModbusConfig = field(
        default_factory=ModbusConfig, metadata=doc("Modbus meters and switches (工况监控)")
    )
    instruments: list[InstrumentConfig] = field(
        default_factory=list,
        metadata=doc("Analysers sending HJ 212 over RS232/RS485 (在线监测仪表)"),
    )
    datalogger: DataStoreConfig = field(
        default_factory=DataStoreConfig, metadata=doc("Data logger storage (数采仪)")
    )

    def __post_init__(self) -> None:
        problems = cross_checks(self)
        if problems:
            raise Invalid(problems)

    def lane(self, name: str) -> LaneConfig:
        """The lane called ``name``; KeyError names the lanes there are."""
        for lane in self.lanes:
            if lane.name == name:
                return lane
        raise KeyError(f"no lane {name!r}; lanes: {', '.join(ln.name for ln in self.lanes)}")


def short_form(
    data: Mapping[str, Any], lines: Mapping[str, int]
) -> tuple[dict[str, Any], dict[str, int], dict[str, str], list[Problem]]:
    """Turn the one-lane short form into ``[[lanes]]``.

    Returns the rewritten data, line numbers under the rewritten paths, the
    aliases that turn a rewritten path back into what the technician wrote
    (``lanes[0].camera.fps`` → ``camera.fps``), and problems: a file that
    mixes ``[[lanes]]`` with top-level lane sections is refused with what to
    move where.
    """
    out = dict(data)
    problems: list[Problem] = []
    site = data.get("site")
    if isinstance(site, Mapping) and "direction" in site:
        problems.append(
            Problem(
                "site.direction",
                "moved to the lane: write direction under [lane] (or in each [[lanes]] entry)",
                lines.get("site.direction"),
            )
        )
        out["site"] = {k: v for k, v in site.items() if k != "direction"}
    present = [k for k in SHORT_FORM if k in data]
    if "lanes" in data:
        for key in present:
            where = f"[lanes.{key}]" if SHORT_FORM[key] else "the [[lanes]] entry"
            problems.append(
                Problem(
                    key,
                    f"with [[lanes]] this belongs to a lane: move [{key}] into {where}",
                    lines.get(key),
                )
            )
        return out, dict(lines), {}, problems
    lane: dict[str, Any] = {}
    bad = [k for k in present if not isinstance(data[k], Mapping)]
    for key in present:
        if key in bad:
            continue
        if SHORT_FORM[key]:
            lane[SHORT_FORM[key]] = data[key]
        else:
            lane.update(data[key])
        del out[key]
    if not present:
        return out, dict(lines), {}, problems
    out["lanes"] = [lane]
    aliases = {"lanes[0]": "lane", **{f"lanes[0].{k}": k for k in SHORT_FORM if k != "lane"}}
    moved: dict[str, int] = {}
    for path, line in lines.items():
        head, _, rest = path.partition(".")
        if head in SHORT_FORM and head in present:
            new = "lanes[0]" + (f".{SHORT_FORM[head]}" if SHORT_FORM[head] else "")
            moved[new + (f".{rest}" if rest else "")] = line
        else:
            moved[path] = line
    return out, moved, aliases, problems


def written_as(path: str, aliases: Mapping[str, str]) -> str:
    """A rewritten key path as the technician wrote it."""
    for new, old in sorted(aliases.items(), key=lambda kv: -len(kv[0])):
        if path == new or path.startswith(new + "."):
            return old + path[len(new) :]
    return path


def message_as_written(message: str, aliases: Mapping[str, str]) -> str:
    """Key paths named inside a message, as the technician wrote them."""
    if not aliases:
        return message
    return _PATH_IN_TEXT.sub(lambda m: written_as(m.group(0), aliases), message)


_PATH_IN_TEXT = re.compile(r"lanes\[0\](?:\.[A-Za-z0-9_]+)*")
