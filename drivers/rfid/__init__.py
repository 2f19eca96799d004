"""RFID readers: R2000 binary, ASCII-hex lines, Wiegand — all yield TagRead."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drivers.rfid.base import RfidReader, TagCallback, TagRead
from drivers.rfid.config import RfidConfig
from drivers.rfid.r2000 import DEFAULT_COMMANDS, R2000Variant
from drivers.rfid.window import TagBuffer, TagSighting, collect

__all__ = [
    "RfidConfig",
    "RfidReader",
    "TagBuffer",
    "TagRead",
    "TagSighting",
    "collect",
    "open_reader",
    "variant_from_config",
]


def variant_from_config(cfg: RfidConfig) -> R2000Variant:
    commands = dict(DEFAULT_COMMANDS)
    commands.update(cfg.r2000_commands)
    return R2000Variant(
        header=cfg.r2000_header,
        checksum=cfg.r2000_checksum,
        commands=commands,
        rssi_offset_dbm=cfg.r2000_rssi_offset_dbm,
    )


def open_reader(
    cfg: RfidConfig,
    on_read: TagCallback,
    *,
    name: str = "rfid",
    on_raw: Callable[[bytes], None] | None = None,
    pin_factory: Any = None,
    line_kwargs: dict[str, Any] | None = None,
) -> RfidReader:
    """Build the reader ``cfg`` describes (not started: call ``.start()``).

    ``min_rssi_dbm`` filtering happens here so every protocol honours it.
    """
    callback = on_read
    if cfg.min_rssi_dbm is not None:
        floor = cfg.min_rssi_dbm

        def callback(read: TagRead) -> None:
            if read.rssi is None or read.rssi >= floor:
                on_read(read)

    if cfg.protocol == "r2000":
        from drivers.rfid.r2000 import R2000Reader

        return R2000Reader(
            cfg.port,
            cfg.baudrate,
            callback,
            name=name,
            address=cfg.address,
            antennas=list(cfg.antennas),
            repeat=cfg.repeat,
            resend_s=cfg.resend_s,
            variant=variant_from_config(cfg),
            on_raw=on_raw,
            line_kwargs=line_kwargs,
        )
    if cfg.protocol == "asciihex":
        from drivers.rfid.asciihex import AsciiHexReader

        return AsciiHexReader(
            cfg.port,
            cfg.baudrate,
            callback,
            name=name,
            prefix=cfg.asciihex_prefix,
            min_hex=cfg.asciihex_min_hex,
            max_hex=cfg.asciihex_max_hex,
            on_raw=on_raw,
            line_kwargs=line_kwargs,
        )
    if cfg.protocol == "wiegand":
        from drivers.rfid.wiegand import WiegandReader

        return WiegandReader(
            cfg.wiegand_d0_pin,
            cfg.wiegand_d1_pin,
            callback,
            name=name,
            bits=list(cfg.wiegand_bits),
            timeout_s=cfg.wiegand_timeout_s,
            id_format=cfg.wiegand_id_format,
            pin_factory=pin_factory,
        )
    raise ValueError(f"protocol: expected r2000, asciihex or wiegand, found {cfg.protocol!r}")
