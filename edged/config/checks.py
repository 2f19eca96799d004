"""Checks that span sections: things no single section can see wrong on its own.

One GPIO pin wired to two functions, two devices opening one serial port,
a lane sharing a reader that no lane has, a camera lane without model
files: each is a config error naming the key, found before anything starts,
and all of them are reported together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edged.lane.config import SHAREABLE


def cross_checks(cfg: Any) -> list[tuple[str, str]]:
    """Every problem across sections, as ``(key path, message)``."""
    return [
        *_lane_names(cfg.lanes),
        *_shares(cfg.lanes),
        *_pins(cfg),
        *_serial_ports(cfg),
        *_camera_addresses(cfg.lanes),
        *_models(cfg),
    ]


def _camera_addresses(lanes: list[Any]) -> list[tuple[str, str]]:
    """Pushes are told apart by where they come from: one camera address, one lane."""
    seen: dict[str, int] = {}
    out = []
    for i, lane in enumerate(lanes):
        address = getattr(lane.camera, "address", None)
        if not getattr(lane.camera, "triggers_passages", False) or not address:
            continue
        if address in seen:
            out.append(
                (
                    f"lanes[{i}].camera.address",
                    f"camera address {address} is also lanes[{seen[address]}]'s: each pushing"
                    " camera serves one lane",
                )
            )
        seen.setdefault(address, i)
    return out


def _lane_names(lanes: list[Any]) -> list[tuple[str, str]]:
    seen: dict[str, int] = {}
    out = []
    for i, lane in enumerate(lanes):
        if lane.name in seen:
            out.append(
                (f"lanes[{i}].name", f"lane name {lane.name!r} is also lanes[{seen[lane.name]}]")
            )
        seen.setdefault(lane.name, i)
    if not lanes:
        out.append(("lanes", "at least one lane is needed"))
    return out


def _shares(lanes: list[Any]) -> list[tuple[str, str]]:
    by_name = {lane.name: lane for lane in lanes}
    out = []
    for i, lane in enumerate(lanes):
        for kind, owner in lane.shares.items():
            if kind not in SHAREABLE:
                continue  # the lane's own check says so
            other = by_name.get(owner)
            if other is None or other is lane:
                out.append(
                    (
                        f"lanes[{i}].shares.{kind}",
                        f"no other lane called {owner!r}; lanes: {', '.join(by_name)}",
                    )
                )
            elif getattr(other, kind) is None:
                out.append(
                    (f"lanes[{i}].shares.{kind}", f"lane {owner!r} has no [{kind}] to share")
                )
        reader = _device(lane, "rfid", by_name)
        if lane.rfid_antennas and reader is not None and hasattr(reader, "antennas"):
            extra = sorted(set(lane.rfid_antennas) - set(reader.antennas))
            if extra:
                out.append(
                    (
                        f"lanes[{i}].rfid_antennas",
                        f"antennas {extra} are not inventoried by the reader (its antennas:"
                        f" {reader.antennas})",
                    )
                )
    return out


def _device(lane: Any, kind: str, by_name: dict[str, Any]) -> Any:
    own = getattr(lane, kind)
    if own is not None:
        return own
    owner = by_name.get(lane.shares.get(kind, ""))
    return getattr(owner, kind, None) if owner is not None else None


def _pins(cfg: Any) -> list[tuple[str, str]]:
    """A BCM pin drives or reads one thing only; each key sharing one is named."""
    users: dict[int, list[str]] = {}
    for i, lane in enumerate(cfg.lanes):
        for key, pin in lane.gpio.pins().items():
            users.setdefault(pin, []).append(f"lanes[{i}].gpio.{key}")
        for name in ("d0_pin", "d1_pin"):
            pin = getattr(lane.rfid, name, None)
            if pin is not None:
                users.setdefault(pin, []).append(f"lanes[{i}].rfid.{name}")
    out = []
    for pin, keys in users.items():
        for key in keys if len(keys) > 1 else ():
            others = ", ".join(k for k in keys if k != key)
            out.append((key, f"GPIO {pin} is also used by {others}: one pin, one function"))
    return out


def _serial_ports(cfg: Any) -> list[tuple[str, str]]:
    """One device per serial port, except Modbus meters on one RS-485 bus."""
    owners: dict[str, tuple[str, str]] = {}  # port -> (key, kind)
    out = []

    def claim(port: str, key: str, kind: str) -> None:
        if not port:
            return
        if port in owners:
            first, first_kind = owners[port]
            if kind == first_kind == "modbus":
                return  # several meters on one bus is how RS-485 works
            out.append(
                (
                    key,
                    f"serial port {port} is already opened by {first}; one port, one device"
                    " (share a reader or weighbridge between lanes with shares = {...})",
                )
            )
        else:
            owners[port] = (key, kind)

    for i, lane in enumerate(cfg.lanes):
        for kind in ("rfid", "scale", "display"):
            dev = getattr(lane, kind)
            port = getattr(dev, "port", None)
            if port is not None:
                claim(port, f"lanes[{i}].{kind}.port", kind)
    for i, inst in enumerate(cfg.instruments):
        claim(inst.port, f"instruments[{i}].port", "instrument")
    for i, dev in enumerate(cfg.modbus.devices):
        if dev.enabled and dev.transport == "rtu":
            claim(dev.serial_port, f"modbus.devices[{i}].serial_port", "modbus")
    return out


def _models(cfg: Any) -> list[tuple[str, str]]:
    """A lane with a camera needs the model folder (the files are checked at start)."""
    if not any(lane.needs_recognizer for lane in cfg.lanes):
        return []
    folder = Path(cfg.lpr.model_dir)
    if folder.is_dir():
        return []
    return [
        (
            "lpr.model_dir",
            f"model folder {folder} does not exist: install the models (models/fetch.py"
            " --dest DIR, done by the installer) or set lpr.model_dir; a lane without a camera"
            ' needs none (camera type = "none")',
        )
    ]
