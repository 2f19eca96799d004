"""The board's hardware identity for HJ 212-2025 (CN 1001 / 1002).

A 2025 platform assigns the logger its MN from a hardware fingerprint: the
logger id (``i23005-Info``), the CPU id (``i23006-Info``) and two MAC
addresses (``i23007-Info``, ``i23008-Info``). They are read from the board
where Linux exposes them -- the SoC serial in ``/proc/cpuinfo`` (Raspberry
Pi and most ARM boards), else ``/etc/machine-id``; the MACs of the physical
network interfaces in ``/sys/class/net`` -- and each can be overridden in
``[hj212]`` for boards that expose nothing stable. Paths are parameters so
tests read prepared files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from edged.hj212.config import Hj212Config

_VIRTUAL = re.compile(r"^(lo|docker|veth|br-|virbr|tun|tap|wg|dummy|bond|vmnet|zt)")


@dataclass(frozen=True)
class HardwareIdentity:
    logger_id: str
    cpu_id: str
    macs: tuple[str, ...]

    def cp_factors(self) -> dict[str, dict[str, str]]:
        """The CP of CN 1001: i23005..i23008 ``-Info`` values."""
        out = {"i23005": {"Info": self.logger_id}, "i23006": {"Info": self.cpu_id}}
        for code, mac in zip(("i23007", "i23008"), self.macs, strict=False):
            out[code] = {"Info": mac}
        return out


def cpu_serial(
    cpuinfo: Path = Path("/proc/cpuinfo"), machine_id: Path = Path("/etc/machine-id")
) -> str:
    """The SoC serial (``Serial : 10000000abcdef01``), else the systemd machine id."""
    try:
        for line in cpuinfo.read_text(encoding="ascii", errors="replace").splitlines():
            key, _, value = line.partition(":")
            serial = value.strip()
            if key.strip().lower() == "serial" and serial.strip("0"):
                return serial.upper()
    except OSError:
        pass
    try:
        text = machine_id.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""
    return text.upper() if re.fullmatch(r"[0-9A-Fa-f]{32}", text) else ""


def board_macs(net: Path = Path("/sys/class/net"), limit: int = 2) -> tuple[str, ...]:
    """MACs of physical interfaces (those with a ``device`` link) first, by name."""
    found: list[tuple[int, str, str]] = []
    try:
        entries = sorted(net.iterdir())
    except OSError:
        return ()
    for entry in entries:
        if _VIRTUAL.match(entry.name):
            continue
        try:
            mac = (entry / "address").read_text(encoding="ascii").strip()
        except OSError:
            continue
        if not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", mac) or not mac.strip("0:"):
            continue
        physical = 0 if (entry / "device").exists() else 1
        found.append((physical, entry.name, mac.upper()))
    return tuple(mac for _, _, mac in sorted(found)[:limit])


def read_identity(
    cfg: Hj212Config,
    cpuinfo: Path = Path("/proc/cpuinfo"),
    machine_id: Path = Path("/etc/machine-id"),
    net: Path = Path("/sys/class/net"),
) -> HardwareIdentity:
    """The identity to upload: config overrides first, then what the board shows."""
    cpu = cfg.cpu_id or cpu_serial(cpuinfo, machine_id)
    macs = tuple(m.upper() for m in cfg.macs) or board_macs(net)
    return HardwareIdentity(logger_id=cfg.logger_id or cpu, cpu_id=cpu, macs=macs)
