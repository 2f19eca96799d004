"""Plain records shared by the registry, the CSV import and the policy.

They are frozen dataclasses so a decision can hold them without copying and a
snapshot can be shared between threads without a lock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from edged.admission.stages import STAGES as STAGES  # re-exported: callers know them from here
from edged.admission.stages import national_stage
from edged.admission.stages import parse_stage as parse_stage
from edged.admission.stages import stage_query as stage_query
from edged.admission.stages import stage_rank as stage_rank

FUELS = ("diesel", "petrol", "gas", "electric", "hybrid", "hydrogen")
ALERT_LEVELS = ("none", "blue", "yellow", "orange", "red")
PLATE_COLOURS = ("blue", "yellow", "green", "yellow_green", "white", "black", "other")

_FUEL_ALIASES = {
    "diesel": "diesel",
    "柴油": "diesel",
    "柴油车": "diesel",
    "petrol": "petrol",
    "gasoline": "petrol",
    "汽油": "petrol",
    "gas": "gas",
    "lng": "gas",
    "cng": "gas",
    "natural gas": "gas",
    "天然气": "gas",
    "燃气": "gas",
    "液化天然气": "gas",
    "压缩天然气": "gas",
    "electric": "electric",
    "ev": "electric",
    "bev": "electric",
    "电": "electric",
    "电动": "electric",
    "纯电": "electric",
    "纯电动": "electric",
    "hybrid": "hybrid",
    "phev": "hybrid",
    "混合动力": "hybrid",
    "混动": "hybrid",
    "油电混合": "hybrid",
    "插电混动": "hybrid",
    "hydrogen": "hydrogen",
    "fcev": "hydrogen",
    "氢": "hydrogen",
    "氢能": "hydrogen",
    "氢燃料": "hydrogen",
    "燃料电池": "hydrogen",
}

_COLOUR_ALIASES = {
    "blue": "blue",
    "蓝": "blue",
    "蓝色": "blue",
    "蓝牌": "blue",
    "yellow": "yellow",
    "黄": "yellow",
    "黄色": "yellow",
    "黄牌": "yellow",
    "green": "green",
    "绿": "green",
    "绿色": "green",
    "绿牌": "green",
    "yellow_green": "yellow_green",
    "yellow-green": "yellow_green",
    "黄绿": "yellow_green",
    "黄绿色": "yellow_green",
    "渐变绿": "green",
    "white": "white",
    "白": "white",
    "白色": "white",
    "black": "black",
    "黑": "black",
    "黑色": "black",
    "other": "other",
    "其他": "other",
}

_PLATE_RE = re.compile(r"^[\u4e00-\u9fff][A-Z][A-Z0-9\u4e00-\u9fff]{4,7}$")


def parse_fuel(text: str) -> str:
    key = text.strip().lower()
    if key not in _FUEL_ALIASES:
        raise ValueError(
            f"unknown fuel {text!r} (expected one of {', '.join(FUELS)}"
            " or 柴油/汽油/天然气/纯电动/混合动力/氢燃料)"
        )
    return _FUEL_ALIASES[key]


def parse_colour(text: str) -> str:
    key = text.strip().lower()
    if key not in _COLOUR_ALIASES:
        raise ValueError(
            f"unknown plate colour {text!r} (expected one of {', '.join(PLATE_COLOURS)}"
            " or 蓝/黄/绿/黄绿/白/黑)"
        )
    return _COLOUR_ALIASES[key]


def normalize_plate(text: str) -> str:
    """Upper-case, no spaces/dots/dashes: the key every list is indexed by."""
    return re.sub(r"[\s·.\-•]", "", text).upper()


def check_plate(text: str) -> str:
    plate = normalize_plate(text)
    if not _PLATE_RE.match(plate):
        raise ValueError(
            f"not a mainland plate {text!r} (expected province character + letter + 5-6 characters)"
        )
    return plate


CATEGORIES = ("transport", "in_plant")
"""运输车辆 (vehicles that come and go) and 厂内运输车辆 (the plant's own, in-plant)."""
CATEGORY_NAMES = {"transport": "运输车辆", "in_plant": "厂内运输车辆"}
VEHICLE_DOCUMENTS = ("env_list", "licence")
MACHINE_DOCUMENTS = ("nameplate",)
DOCUMENT_NAMES = {"env_list": "随车清单", "licence": "行驶证", "nameplate": "发动机铭牌"}
"""Document photos by kind: the environmental list and licence of a vehicle, the engine
nameplate of a machine. Stored content-addressed; records hold their SHA-256."""

# Field widths of the national ledger table (HJ 1321-2023); longer text is refused at input.
ENGINE_NO_MAX = 32
CARGO_MAX = 32
FLEET_MAX = 100
ENV_CODE_MAX = 64


@dataclass(frozen=True)
class Vehicle:
    """One registered vehicle (车辆登记 / 白名单): a transport or an in-plant vehicle."""

    plate: str
    plate_colour: str = "yellow"
    vin: str = ""
    registered_on: str = ""  # YYYY-MM-DD, as on the licence (行驶证注册日期)
    brand_model: str = ""
    vehicle_type: str = ""  # free text from the licence, e.g. 重型半挂牵引车
    vehicle_class: str = "heavy_truck"  # what policy rules match on
    fuel: str = "diesel"
    emission_stage: str | None = None
    hazardous: bool = False  # 危险货物运输车辆
    fleet: str = ""  # 车队名称 (the haulier it drives for)
    engine_no: str = ""  # 发动机号码
    cargo: str = ""  # 运输货物名称 it usually carries, unless a declaration says otherwise
    category: str = "transport"  # transport = 运输车辆, in_plant = 厂内运输车辆
    rfid_tags: tuple[str, ...] = ()
    documents: Mapping[str, str] = field(default_factory=dict, hash=False)  # kind -> sha256
    valid_until: datetime | None = None
    source: str = ""
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "documents", dict(self.documents))

    def document(self, kind: str) -> str | None:
        """SHA-256 of the photo of ``kind`` (env_list, licence), None if none is stored."""
        return self.documents.get(kind)

    @property
    def national_stage(self) -> str | None:
        """The stage as the national table writes it: ``0``..``6``, ``d``; None if unknown."""
        return national_stage(self.emission_stage, self.fuel)


@dataclass(frozen=True)
class BlacklistEntry:
    """A plate regulators (or the plant) refuse, e.g. an over-emitting truck (超标车辆)."""

    plate: str
    reason: str
    source: str = ""
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def active(self, now: datetime) -> bool:
        if self.valid_from is not None and now < self.valid_from:
            return False
        return not (self.valid_until is not None and now >= self.valid_until)


@dataclass(frozen=True)
class Nrmm:
    """Non-road mobile machinery (非道路移动机械): loaders, forklifts, excavators.

    A machine passing a gate is known by its plate if it has one, its registry
    code (登记编码) or an RFID tag. ``emission_stage`` is 国1..国4, ``x`` for a
    machine registered without a stage, or None where the registry does not say.
    """

    registry_no: str  # 登记编码
    machine_type: str = ""  # 机械种类, e.g. 装载机
    emission_stage: str | None = None
    owner: str = ""  # 所属单位 / 所有人
    env_code: str = ""  # 机械环保代码
    made_on: str = ""  # 生产日期, YYYY-MM-DD
    fuel: str = "diesel"
    plate: str = ""  # 号牌, for machinery that has one
    rfid_tags: tuple[str, ...] = ()
    documents: Mapping[str, str] = field(default_factory=dict, hash=False)  # nameplate -> sha256
    valid_until: datetime | None = None
    source: str = ""
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "documents", dict(self.documents))

    def document(self, kind: str) -> str | None:
        """SHA-256 of the photo of ``kind`` (nameplate), None if none is stored."""
        return self.documents.get(kind)

    @property
    def national_stage(self) -> str | None:
        """``1``..``4``, ``x`` (no stage), ``d`` (electric); None if the registry does not say."""
        return national_stage(self.emission_stage, self.fuel)


Machine = Nrmm


APPROVAL_DIRECTIONS = ("in", "out", "any")


@dataclass(frozen=True)
class Approval:
    """A special pass (特批放行): one use unless ``uses`` says more, for one direction or any.

    ``ref`` is the backend's own id for it (the ``approval_id`` of the MQTT
    command), so both sides name the same pass; ``used_at`` and
    ``used_by_passage`` tell the last use; ``approved_at`` is when the approver
    signed it (the approval time of the national record).
    """

    id: int
    plate: str
    reason: str
    applicant: str
    approver: str
    valid_from: datetime
    valid_until: datetime
    created_at: datetime | None = None
    used_at: datetime | None = None
    used_by_passage: str | None = None
    direction: str = "any"
    uses: int = 1
    used: int = 0
    ref: str | None = None
    approved_at: datetime | None = None

    def usable(self, now: datetime, direction: str | None = None) -> bool:
        """Uses left, inside its window, and for this direction (None: any direction)."""
        if direction is not None and self.direction not in ("any", direction):
            return False
        return self.used < self.uses and self.valid_from <= now < self.valid_until


@dataclass(frozen=True)
class AlertEntry:
    """One heavy-pollution alert level (重污染天气预警) set by someone, for a window.

    ``valid_until`` None: until another entry replaces it. Where windows
    overlap, the entry set last wins (see :func:`edged.admission.alerts.level_at`).
    """

    id: int
    level: str
    set_by: str
    set_at: datetime
    valid_from: datetime
    valid_until: datetime | None = None
    reason: str = ""

    def covers(self, t: datetime) -> bool:
        return self.valid_from <= t and (self.valid_until is None or t < self.valid_until)


@dataclass(frozen=True)
class CargoDeclaration:
    """The plant's logistics system saying what a plate carries on its next passage(s).

    ``uses`` None: every passage inside the window; else that many passages.
    ``tag``: declared for a waybill card (运单卡) instead of a plate: the passage
    whose RFID window sees that tag carries the cargo, whichever vehicle brings
    it (``plate`` is then empty).
    """

    id: int
    plate: str
    cargo: str
    valid_from: datetime
    valid_until: datetime
    declared_by: str
    declared_at: datetime
    uses: int | None = None
    used: int = 0
    tag: str | None = None

    def usable(self, now: datetime) -> bool:
        if self.uses is not None and self.used >= self.uses:
            return False
        return self.valid_from <= now < self.valid_until


@dataclass(frozen=True)
class GateRead:
    """What identification produced for one passage: the plate and/or RFID tags.

    ``plate`` is None when the camera could not read it with enough confidence.
    """

    plate: str | None
    plate_colour: str | None = None
    rfid_tags: tuple[str, ...] = field(default_factory=tuple)
    confidence: float = 1.0
    passage_id: str = ""
    #: waybill cards seen (tags with a cargo declaration): they name the cargo, not the
    #: vehicle, so they are not among ``rfid_tags``
    waybills: tuple[str, ...] = field(default_factory=tuple)
