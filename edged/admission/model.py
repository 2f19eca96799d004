"""Plain records shared by the registry, the CSV import and the policy.

They are frozen dataclasses so a decision can hold them without copying and a
snapshot can be shared between threads without a lock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

FUELS = ("diesel", "petrol", "gas", "electric", "hybrid", "hydrogen")
ALERT_LEVELS = ("none", "blue", "yellow", "orange", "red")
PLATE_COLOURS = ("blue", "yellow", "green", "yellow_green", "white", "black", "other")

# Emission stages in order; 国6 without a sub-stage ranks as 6a because a
# registry that does not say "6b" must not get the benefit of the doubt.
STAGES = ("国0", "国1", "国2", "国3", "国4", "国5", "国6a", "国6b")
_STAGE_RANK = {s: i for i, s in enumerate(STAGES)}

_NUMERALS = {
    "0": 0,
    "零": 0,
    "1": 1,
    "一": 1,
    "i": 1,
    "2": 2,
    "二": 2,
    "ii": 2,
    "3": 3,
    "三": 3,
    "iii": 3,
    "4": 4,
    "四": 4,
    "iv": 4,
    "5": 5,
    "五": 5,
    "v": 5,
    "6": 6,
    "六": 6,
    "vi": 6,
}
_STAGE_RE = re.compile(
    r"^(?:国|國|china|cn|stage|g)?\s*(?P<num>[0-6]|[零一二三四五六]|vi|iv|v|i{1,3})\s*(?P<sub>[ab])?$",
    re.IGNORECASE,
)

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


def _stage_parts(text: str) -> tuple[int, str]:
    """The stage number and sub-stage (``""``, ``a`` or ``b``) however it is written."""
    raw = text.strip().replace("Ⅴ", "V").replace("Ⅵ", "VI").replace("Ⅳ", "IV")
    m = _STAGE_RE.match(raw.replace("排放", "").replace("标准", "").strip())
    if not m:
        raise ValueError(f"unknown emission stage {text!r} (expected 国0..国6, 国6a/国6b)")
    num = _NUMERALS[m.group("num").lower()]
    sub = (m.group("sub") or "").lower()
    if sub and num != 6:
        raise ValueError(f"sub-stage {sub!r} only exists for 国6, found {text!r}")
    return num, sub


def parse_stage(text: str) -> str:
    """Canonical stage (``国5``, ``国6b``) from the many ways registries write it."""
    num, sub = _stage_parts(text)
    if num == 6:
        return "国6b" if sub == "b" else "国6a"
    return f"国{num}"


_STAGE_WRITTEN = {
    0: ("0", "零"),
    1: ("1", "一", "I"),
    2: ("2", "二", "II"),
    3: ("3", "三", "III"),
    4: ("4", "四", "IV", "Ⅳ"),
    5: ("5", "五", "V", "Ⅴ"),
    6: ("6", "六", "VI", "Ⅵ"),
}


def stage_query(text: str) -> tuple[str, ...]:
    """Every stored spelling of the stages a search for ``text`` means.

    国五, 国V, 5 and 国5 all find 国5 rows (the canonical form the registry
    gives a passage) and rows written 国五 or 国V by older versions or
    imports. Unlike :func:`parse_stage`, which ranks a bare 国6 as 6a for the
    policy's sake, a search for 国6 finds both sub-stages.
    """
    num, sub = _stage_parts(text)
    if num != 6:
        endings: tuple[str, ...] = ("",)
    elif sub == "b":
        endings = ("b", "B")
    else:  # 国6a, and 国6 written without a sub-stage, which ranks as 6a
        endings = ("a", "A", "") + (("b", "B") if not sub else ())
    return tuple(f"国{w}{e}" for w in _STAGE_WRITTEN[num] for e in endings)


def stage_rank(stage: str) -> int:
    """Order of a canonical stage; higher is cleaner."""
    return _STAGE_RANK[stage]


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


@dataclass(frozen=True)
class Vehicle:
    """One registered vehicle (车辆登记 / 白名单)."""

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
    haulier: str = ""
    rfid_tags: tuple[str, ...] = ()
    documents: tuple[str, ...] = ()  # refs to 随车清单 / 行驶证 photos
    valid_until: datetime | None = None
    source: str = ""
    updated_at: datetime | None = None


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
    """Non-road mobile machinery (非道路移动机械): loaders, forklifts."""

    registry_no: str
    machine_type: str = ""
    emission_stage: str | None = None
    owner: str = ""
    updated_at: datetime | None = None


APPROVAL_DIRECTIONS = ("in", "out", "any")


@dataclass(frozen=True)
class Approval:
    """A special pass (特批放行): one use unless ``uses`` says more, for one direction or any.

    ``ref`` is the backend's own id for it (the ``approval_id`` of the MQTT
    command), so both sides name the same pass; ``used_at`` and
    ``used_by_passage`` tell the last use.
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

    def usable(self, now: datetime, direction: str | None = None) -> bool:
        """Uses left, inside its window, and for this direction (None: any direction)."""
        if direction is not None and self.direction not in ("any", direction):
            return False
        return self.used < self.uses and self.valid_from <= now < self.valid_until


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
