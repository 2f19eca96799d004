"""RFID readers: R2000 binary, ASCII-hex lines, Wiegand — all yield :class:`TagRead`.

Family contract: ``build(config, on_read=..., name=..., on_raw=None,
line_kwargs=None, pin_factory=None)`` returns an unstarted reader; call
``start()``. Use :func:`open_reader`, which also applies ``min_rssi_dbm``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drivers import config
from drivers.rfid.base import RfidConfig, RfidReader, TagCallback, TagRead
from drivers.rfid.window import TagBuffer, TagSighting, collect

__all__ = [
    "RfidConfig",
    "RfidReader",
    "TagBuffer",
    "TagRead",
    "TagSighting",
    "collect",
    "open_reader",
]


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

    return config.build(
        cfg,
        on_read=callback,
        name=name,
        on_raw=on_raw,
        pin_factory=pin_factory,
        line_kwargs=line_kwargs,
    )
