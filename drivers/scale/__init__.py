"""Weighbridge indicators (地磅仪表): continuous serial output to stable weights.

Truck scales at Chinese plants almost all end in an XK3190-family indicator
(or a clone) that streams the displayed weight several times a second. Each
output style is one module registering its ``type`` (``xk3190`` framed,
``ascii`` lines); :class:`~drivers.scale.reader.ScaleReader` turns the
stream into the latest weight and the stable weight, with
:class:`~drivers.scale.stable.StableDetector` deciding "stable" because the
indicator says nothing reliable about it in these modes.

Family contract: ``build(config, name=..., on_weight=None, on_stable=None,
on_raw=None, line_kwargs=None)`` returns an unstarted
:class:`~drivers.scale.reader.ScaleReader`; call ``start()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from drivers.config import DeviceConfig, doc

UNIT_TO_KG = {"kg": 1.0, "t": 1000.0, "g": 0.001, "lb": 0.45359237}


@dataclass(frozen=True)
class ScaleConfig(DeviceConfig):
    """Keys every indicator type has; each type adds its own."""

    family: ClassVar[str] = "scale"
    removed_keys: ClassVar[dict[str, str]] = {
        "enabled": "a weighbridge is fitted when its [scale] section exists: delete it for none",
        "tare_gross": "entry and exit weights of a vehicle are always paired into its load",
    }

    type: str = field(
        default="xk3190",
        metadata=doc("Indicator output; the keys below depend on it", was="format"),
    )
    port: str = field(
        default="/dev/ttyUSB1",
        metadata=doc(
            "Serial port of the indicator (a /dev/serial/by-id/ name survives re-plugging)"
        ),
    )
    baudrate: int = field(default=9600, metadata=doc("Indicator baud rate (XK3190 bt=9600)", min=1))
    unit: Literal["kg", "t", "g", "lb"] = field(
        default="kg", metadata=doc("Unit the indicator displays when the output names none")
    )
    stable_tolerance_kg: float = field(
        default=20.0, metadata=doc("Weight counts as stable within +/- this band (稳定)", min=0)
    )
    stable_s: float = field(
        default=3.0,
        metadata=doc("How long the weight must stay in the band", above=0, was="stable_seconds"),
    )
    min_load_kg: float = field(
        default=500.0,
        metadata=doc("Below this the bridge counts as empty: no vehicle weight is reported", min=0),
    )
    stale_s: float = field(
        default=3.0,
        metadata=doc(
            "No reading for this long: weight unknown (indicator off?)",
            above=0,
            was="stale_seconds",
        ),
    )


@dataclass(frozen=True)
class WeightReading:
    kg: float
    time: float


@dataclass(frozen=True)
class StableWeight:
    kg: float
    since: float
    until: float
    samples: int


@dataclass
class ScaleParserStats:
    frames: int = 0
    garbage_bytes: int = 0
    bad_checksums: int = 0
    bad_frames: int = 0
    rejected_lines: int = 0
    overlong_lines: int = 0
