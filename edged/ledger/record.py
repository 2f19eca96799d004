"""One passage as the ledger stores it: every field an inspector compares against video.

The record is a frozen value so that what was hashed is what was decided:
nothing downstream can change a field after the row is chained. Field names
are the keys of the canonical JSON (see ``docs/LEDGER.md``), so renaming one
is a format change that old rows' hashes would no longer match.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Direction = Literal["in", "out", "unknown"]
Decision = Literal["allow", "deny", "hold"]
IdSource = Literal["plate", "rfid", "manual", "plate+rfid", "simulated", "none"]

#: ``unknown``: a two-way lane that could not tell (never guessed as ``in``).
DIRECTIONS = ("in", "out", "unknown")
DECISIONS = ("allow", "deny", "hold")
ID_SOURCES = ("plate", "rfid", "manual", "plate+rfid", "simulated", "none")
#: 排放阶段 as the national table codes it: 国0-国6, d = electric, x = machinery with no stage.
STAGE_CODES = ("0", "1", "2", "3", "4", "5", "6", "d", "x")
CATEGORIES = ("transport", "in_plant", "machinery")
#: Fuels that count as new-energy (新能源) in the inspectors' ratio.
NEW_ENERGY_FUELS = frozenset({"electric", "hybrid", "hydrogen"})

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class RecordError(ValueError):
    """A record that cannot go into the ledger; the message names the field."""


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise RecordError(message)


def safe_relative_path(path: str) -> bool:
    """Snapshot paths are relative to the images folder and never climb out of it."""
    if not path or path.startswith(("/", "\\")) or "\x00" in path or ":" in path:
        return False
    parts = path.replace("\\", "/").split("/")
    return all(p not in ("", ".", "..") for p in parts)


@dataclass(frozen=True)
class Snapshot:
    """A snapshot image (抓拍图片): path relative to the images folder, and its SHA-256."""

    path: str
    sha256: str

    def __post_init__(self) -> None:
        _check(
            safe_relative_path(self.path),
            "snapshots.path: expected a relative path "
            f"inside the images folder, found {self.path!r}",
        )
        _check(
            bool(_SHA256.match(self.sha256)),
            f"snapshots.sha256: expected 64 lowercase hex digits, found {self.sha256!r}",
        )

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256}


@dataclass(frozen=True)
class Approval:
    """Special approval (特批放行): one-time pass with who asked, who approved and why."""

    id: int | str  # str; rows written before it was a str hold the registry's number, an int
    applicant: str
    approver: str
    reason: str
    valid_until: str | None = None
    approved_at: str | None = None  # when the approver approved it (审批时间)
    direction: str | None = None  # in | out | any
    ref: str | None = None  # the backend's own id of the pass

    def to_dict(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "applicant": self.applicant,
            "approver": self.approver,
            "reason": self.reason,
            "valid_until": self.valid_until,
        }
        # written only when known, so rows recorded before these existed hash as they did
        for key in ("approved_at", "direction", "ref"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class Video:
    """Where the video of a passage is (录像): the recorder's channel and the passage's window,
    and the box's own clip of it where one is kept (path relative to the clips folder).

    An inspector pulls ``start``..``end`` of ``channel`` on ``recorder`` (an NVR or the camera's
    own storage); the clip's SHA-256 is chained in the audit log (``clip_recorded``) once the
    clip is closed, seconds after the row: a row is written before the barrier opens and
    cannot wait for the seconds of video after it.
    """

    recorder: str
    channel: str
    start: str
    end: str
    clip: str | None = None

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            try:
                ts = datetime.fromisoformat(getattr(self, name))
            except (TypeError, ValueError):
                raise RecordError(f"video.{name}: expected ISO 8601 time") from None
            _check(ts.utcoffset() is not None, f"video.{name}: expected a UTC offset")
        if self.clip is not None:
            _check(
                safe_relative_path(self.clip),
                f"video.clip: expected a relative path inside the clips folder, found {self.clip!r}",
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "recorder": self.recorder,
            "channel": self.channel,
            "start": self.start,
            "end": self.end,
            "clip": self.clip,
        }


@dataclass(frozen=True)
class PassageRecord:
    """One passage, allowed or refused. ``time`` is ISO 8601 with a UTC offset.

    ``plate`` is None when no plate was read (inspectors ask for those
    passages separately). ``correction_of`` is the seq of the row this one
    corrects; corrections keep the original passage time.
    """

    time: str
    site: str
    gate: str
    direction: Direction
    decision: Decision
    reason_code: str
    plate: str | None = None
    plate_colour: str | None = None
    vehicle_type: str | None = None
    vin: str | None = None
    fuel: str | None = None
    emission_stage: str | None = None
    reason_zh: str = ""
    reason_en: str = ""
    snapshots: tuple[Snapshot, ...] = ()
    rfid_tag: str | None = None
    weight_kg: int | None = None
    cargo: str | None = None
    approval: Approval | None = None
    id_source: IdSource = "plate"
    id_confidence: float | None = None
    flags: tuple[str, ...] = ()
    correction_of: int | None = None
    operator: str | None = None
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    lane: str | None = None
    raw_plate: str | None = None  # the recogniser's own read, where it differs or was unsure
    identified_by: str | None = None  # exact | registry | rfid | rfid_tag
    # -- the national ledger table (HJ 1321-2023; docs/LEDGER.md) ------------------
    category: str | None = None  # transport (运输车辆) | in_plant (厂内运输车辆) | machinery
    registered_on: str | None = None  # 注册日期, YYYY-MM-DD
    engine_no: str | None = None  # 发动机号码
    stage_code: str | None = None  # 排放阶段 as the table codes it: 0-6, d (electric), x
    fleet: str | None = None  # 车队名称
    documents: dict[str, str] = field(default_factory=dict)  # 随车清单/行驶证: kind -> sha256
    machinery: dict[str, Any] | None = None  # 登记编码, 机械环保代码, 生产日期, owner, type
    alert_level: str | None = None  # 预警级别 in force at the passage
    net_t: float | None = None  # 运输量: tonnes carried, on the exit row of a paired trip
    entry_seq: int | None = None  # the entry row an exit row pairs with
    entry_time: str | None = None  # 进厂时间 of that entry
    dwell_s: int | None = None  # time in the plant
    missing: dict[str, str] = field(default_factory=dict)  # field -> why it is null
    video: Video | None = None  # where the video of this passage is (docs/VIDEO.md)

    def __post_init__(self) -> None:
        try:
            ts = datetime.fromisoformat(self.time)
        except (TypeError, ValueError):
            raise RecordError(
                f"time: expected ISO 8601 with UTC offset, found {self.time!r}"
            ) from None
        _check(
            ts.utcoffset() is not None,
            f"time: expected a UTC offset (e.g. +08:00), found {self.time!r}",
        )
        _check(
            self.direction in DIRECTIONS,
            f"direction: expected in, out or unknown, found {self.direction!r}",
        )
        _check(
            self.decision in DECISIONS,
            f"decision: expected allow, deny or hold, found {self.decision!r}",
        )
        _check(
            self.id_source in ID_SOURCES,
            f"id_source: expected one of {ID_SOURCES}, found {self.id_source!r}",
        )
        _check(
            bool(self.site) and bool(self.gate),
            f"site/gate: expected non-empty ids, found {self.site!r}/{self.gate!r}",
        )
        _check(bool(self.reason_code), "reason_code: expected a code, found an empty string")
        if self.weight_kg is not None:
            _check(
                isinstance(self.weight_kg, int)
                and not isinstance(self.weight_kg, bool)
                and self.weight_kg >= 0,
                f"weight_kg: expected a whole number of kg >= 0, found {self.weight_kg!r}",
            )
        if self.id_confidence is not None:
            _check(
                isinstance(self.id_confidence, int | float) and 0.0 <= self.id_confidence <= 1.0,
                f"id_confidence: expected 0..1, found {self.id_confidence!r}",
            )
        if self.correction_of is not None:
            _check(
                isinstance(self.correction_of, int) and self.correction_of > 0,
                f"correction_of: expected a positive seq, found {self.correction_of!r}",
            )
        _check(self.video is None or isinstance(self.video, Video), "video: expected a Video value")
        _check(
            all(isinstance(s, Snapshot) for s in self.snapshots),
            "snapshots: expected Snapshot values",
        )
        _check(
            self.stage_code is None or self.stage_code in STAGE_CODES,
            f"stage_code: expected one of {', '.join(STAGE_CODES)}, found {self.stage_code!r}",
        )
        _check(
            self.category is None or self.category in CATEGORIES,
            f"category: expected one of {', '.join(CATEGORIES)}, found {self.category!r}",
        )
        _check(
            all(_SHA256.match(str(v)) for v in self.documents.values()),
            f"documents: expected SHA-256 per kind, found {self.documents!r}",
        )
        if self.net_t is not None:
            _check(
                isinstance(self.net_t, int | float) and 0 <= self.net_t < 1000,
                f"net_t: expected tonnes 0..999.9, found {self.net_t!r}",
            )
        _check(
            all(isinstance(f, str) and f for f in self.flags),
            f"flags: expected non-empty strings, found {self.flags!r}",
        )

    @property
    def new_energy(self) -> bool:
        return (self.fuel or "") in NEW_ENERGY_FUELS

    @property
    def plate_read(self) -> bool:
        return self.plate is not None and "plate" in self.id_source

    def to_fields(self) -> dict[str, Any]:
        """The JSON object that is hashed and stored; every key present, nulls explicit."""
        return {
            "time": self.time,
            "site": self.site,
            "gate": self.gate,
            "lane": self.lane,
            "direction": self.direction,
            "plate": self.plate,
            "plate_colour": self.plate_colour,
            "vehicle_type": self.vehicle_type,
            "vin": self.vin,
            "fuel": self.fuel,
            "emission_stage": self.emission_stage,
            "decision": self.decision,
            "reason_code": self.reason_code,
            "reason_zh": self.reason_zh,
            "reason_en": self.reason_en,
            "snapshots": [s.to_dict() for s in self.snapshots],
            "rfid_tag": self.rfid_tag,
            "weight_kg": self.weight_kg,
            "cargo": self.cargo,
            "approval": self.approval.to_dict() if self.approval else None,
            "id_source": self.id_source,
            "id_confidence": self.id_confidence,
            "flags": sorted(self.flags),
            "correction_of": self.correction_of,
            "operator": self.operator,
            "event_id": self.event_id,
            "raw_plate": self.raw_plate,
            "identified_by": self.identified_by,
            "category": self.category,
            "registered_on": self.registered_on,
            "engine_no": self.engine_no,
            "stage_code": self.stage_code,
            "fleet": self.fleet,
            "documents": dict(sorted(self.documents.items())),
            "machinery": self.machinery,
            "alert_level": self.alert_level,
            "net_t": self.net_t,
            "entry_seq": self.entry_seq,
            "entry_time": self.entry_time,
            "dwell_s": self.dwell_s,
            "missing": dict(sorted(self.missing.items())),
            "video": self.video.to_dict() if self.video else None,
        }

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> PassageRecord:
        """Rebuild a record from stored JSON; unknown keys are an error, not ignored."""
        known = set(cls.__dataclass_fields__)
        extra = set(data) - known
        if extra:
            raise RecordError(f"fields: unknown keys {sorted(extra)}")
        kw = dict(data)
        kw["snapshots"] = tuple(Snapshot(**s) for s in kw.get("snapshots") or ())
        kw["flags"] = tuple(kw.get("flags") or ())
        if kw.get("approval") is not None:
            kw["approval"] = Approval(**kw["approval"])
        kw["documents"] = dict(kw.get("documents") or {})
        kw["missing"] = dict(kw.get("missing") or {})
        if kw.get("video") is not None:
            kw["video"] = Video(**kw["video"])
        return cls(**kw)
