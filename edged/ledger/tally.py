"""The figures of a report, counted from rows as they stand after corrections. Pure.

:class:`Tally` takes rows one at a time (``add``) and keeps only counters
and the few rows that sections list (approvals, corrections, hazardous
goods, machinery), so a month of a busy gate is counted in one pass with
flat memory. What the inspectors check decides the definitions:

- **Emission-stage shares** count *admitted entering* vehicles only: a refused
  truck never entered and an exit is the same truck again. New energy (stage
  code ``d``) is its own class, never 未知.
- **Refusals by reason** count ``deny`` only; holds (待人工, the guard decides)
  are counted apart.
- **Fleet compliance** (车队达标率): a fleet's vehicle complies when it entered
  at least once on its own merits and was never refused nor let in only on a
  special approval in the period; holds count neither way.
- **Normal vs alert days**: each row carries the alert level in force; a day
  is counted under every level it had rows at, so an alert starting at noon
  shows on both lines of that day.
- **Frequent in-and-out** (频繁进出): a plate with more than N passages a day.
- **Camera offline reads** (相机离线补录): rows a camera's kept reads made, and
  among them those the rules refuse: vehicles that may have come in while the
  box was unreachable, for the officer to check against video.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any

from edged.ledger import zh
from edged.ledger.record import PassageRecord
from edged.sheets.table import Column, columns

HAZARDOUS_FLAG = "hazardous"  # on rows of hazardous-goods vehicles (危险货物运输车辆)
HAZARDOUS_REASON = "hazardous_outside_window"
#: on rows of reads a camera kept while it could not reach the box (edged.lane.offline)
OFFLINE_FLAG, OFFLINE_REFUSED = "offline_read", "would_deny"
#: on rows of pushed reads no loop passage took (edged.lane.offline)
UNJOINED_FLAG = "unjoined_read"
NO_FLEET = "（未登记车队）"
NO_LEVEL = "未记录"


def local_time(rec: PassageRecord, tz: tzinfo) -> datetime:
    """The passage time in site time, without zone: what a spreadsheet cell holds."""
    return datetime.fromisoformat(rec.time).astimezone(tz).replace(tzinfo=None)


def vehicle_key(rec: PassageRecord) -> str | None:
    """What tells one vehicle from another: plate, else VIN, tag or machinery number."""
    if rec.plate or rec.vin or rec.rfid_tag:
        return rec.plate or rec.vin or rec.rfid_tag
    if rec.machinery and rec.machinery.get("registry_no"):
        return str(rec.machinery["registry_no"])
    return None


def is_hazardous(rec: PassageRecord) -> bool:
    return HAZARDOUS_FLAG in rec.flags or rec.reason_code == HAZARDOUS_REASON


def _share(n: int, total: int) -> float | None:
    return n / total if total else None


@dataclass(frozen=True)
class Section:
    """A sheet of the report (a ``[section]`` in CSV): its name and columns."""

    name: str
    columns: tuple[Column, ...]


SUMMARY = Section("汇总", columns("项目", ("数值", "int"), ("占比", "pct"), "说明"))
TRAFFIC = Section(
    "通行统计",
    columns("车道", "方向", ("放行", "int"), ("拒绝", "int"), ("待人工", "int"), ("合计", "int")),
)
STAGES = Section(
    "排放阶段占比",
    columns(
        "排放阶段",
        "国家编码",
        ("车辆数", "int"),
        ("车辆占比", "pct"),
        ("进厂次数", "int"),
        ("次数占比", "pct"),
    ),
)
REFUSALS = Section("拒绝原因", columns("原因", ("拒绝次数", "int"), ("占比", "pct"), "原因代码"))
HOLDS = Section("待人工原因", columns("原因", ("待人工次数", "int"), ("占比", "pct"), "原因代码"))
FLEETS = Section(
    "车队达标率",
    columns(
        "车队名称",
        ("车辆数", "int"),
        ("达标车辆数", "int"),
        ("车辆达标率", "pct"),
        ("进厂次数", "int"),
        ("放行", "int"),
        ("拒绝", "int"),
        ("待人工", "int"),
        ("特批放行", "int"),
    ),
)
HAZARDOUS = Section(
    "危险货物运输",
    columns(
        ("台账序号", "int"),
        ("时间", "datetime"),
        "车道",
        "方向",
        "车牌号码",
        "车队名称",
        "运输货物名称",
        "结果",
        "原因",
    ),
)
MACHINERY = Section(
    "非道路移动机械",
    columns(
        ("台账序号", "int"),
        ("时间", "datetime"),
        "方向",
        "登记编码",
        "机械环保代码",
        "机械种类",
        "排放阶段",
        "国家编码",
        "燃料类型",
        "生产日期",
        "所属单位",
        "结果",
    ),
)
APPROVALS = Section(
    "特批放行",
    columns(
        ("台账序号", "int"),
        ("时间", "datetime"),
        "车牌号码",
        "方向",
        "特批编号",
        "申请人",
        "审批人",
        "审批时间",
        "原因",
        "有效期至",
    ),
)
CORRECTIONS = Section(
    "更正记录",
    columns(
        ("台账序号", "int"),
        ("更正序号", "int"),
        ("通行时间", "datetime"),
        "车牌号码",
        "更正人",
        "更正时间",
        "更正原因",
        "更正内容",
    ),
)
ALERT_DAYS = Section(
    "预警日对比",
    columns(
        ("日期", "date"),
        "预警级别",
        ("放行进厂车辆数", "int"),
        ("进厂次数", "int"),
        ("放行进厂次数", "int"),
        ("拒绝次数", "int"),
    ),
)
ALERT_LEVELS = Section(
    "预警级别汇总",
    columns(
        "预警级别",
        ("天数", "int"),
        ("日均放行进厂车辆数", "num1"),
        ("日均进厂次数", "num1"),
        ("日均拒绝次数", "num1"),
    ),
)
FREQUENT = Section(
    "频繁进出车辆",
    columns("车牌号码", ("日期", "date"), ("通行次数", "int"), ("进厂", "int"), ("出厂", "int")),
)
NO_PLATE = Section(
    "无车牌识别通行",
    columns(
        ("台账序号", "int"),
        ("时间", "datetime"),
        "方向",
        "识别方式",
        "电子标签",
        "车牌号码",
        "结果",
        "原因",
    ),
)
SECTIONS = (
    SUMMARY,
    TRAFFIC,
    STAGES,
    REFUSALS,
    HOLDS,
    FLEETS,
    HAZARDOUS,
    MACHINERY,
    APPROVALS,
    CORRECTIONS,
    ALERT_DAYS,
    ALERT_LEVELS,
    FREQUENT,
    NO_PLATE,
)


@dataclass
class _Fleet:
    vehicles: set[str] = field(default_factory=set)
    bad: set[str] = field(default_factory=set)  # refused or let in only on an approval
    admitted: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)


@dataclass
class _Day:
    vehicles: set[str] = field(default_factory=set)
    entries: int = 0
    admitted: int = 0
    refused: int = 0


@dataclass
class Correction:
    """What the audit trail says about a correction: who, when, why, what changed."""

    operator: str = ""
    time: str = ""
    reason: str = ""
    changed: dict[str, Any] = field(default_factory=dict)


class Tally:
    """Counts rows (as they stand after corrections) into the report's sections."""

    def __init__(self, tz: tzinfo, frequent_per_day: int = 8) -> None:
        self.tz = tz
        self.frequent_per_day = frequent_per_day
        self.total = 0
        self.by_direction: Counter[str] = Counter()
        self.by_decision: Counter[str] = Counter()
        self.traffic: Counter[tuple[str, str, str]] = Counter()
        self.stage_vehicles: dict[str, set[str]] = defaultdict(set)
        self.stage_entries: Counter[str] = Counter()
        self.admitted_in = 0
        self.refusals: Counter[str] = Counter()
        self.holds: Counter[str] = Counter()
        self.reason_names: dict[str, str] = {}
        self.fleets: dict[str, _Fleet] = defaultdict(_Fleet)
        self.days: dict[tuple[date, str], _Day] = defaultdict(_Day)
        self.per_plate_day: Counter[tuple[str, date, str]] = Counter()
        self.hazardous: list[tuple[Any, ...]] = []
        self.machinery: list[tuple[Any, ...]] = []
        self.approvals: list[tuple[Any, ...]] = []
        self.corrections: list[tuple[Any, ...]] = []
        self.no_plate: list[tuple[Any, ...]] = []
        self.vehicles: set[str] = set()
        self.offline = 0  # rows of reads a camera kept while it could not reach the box
        self.offline_refused = 0  # ... of vehicles the rules refuse
        self.unjoined = 0  # rows of pushed reads no loop passage took

    # -- counting ---------------------------------------------------------------------
    def add(self, seq: int, rec: PassageRecord, fix: tuple[int, Correction] | None = None) -> None:
        """One row; ``seq`` is the original's, ``fix`` (correction seq, what the audit says)
        when the row stands corrected."""
        when = local_time(rec, self.tz)
        day = when.date()
        key = vehicle_key(rec)
        d, dec = rec.direction, rec.decision
        self.total += 1
        self.by_direction[d] += 1
        self.by_decision[dec] += 1
        self.traffic[(rec.lane or "", d, dec)] += 1
        if key:
            self.vehicles.add(key)
        if dec == "deny":
            self.refusals[rec.reason_code] += 1
        elif dec == "hold":
            self.holds[rec.reason_code] += 1
        if dec != "allow":
            self.reason_names.setdefault(rec.reason_code, rec.reason_zh)
        if d == "in":
            self._entry(rec, key, day)
        if rec.plate:
            self.per_plate_day[(rec.plate, day, d)] += 1
        if UNJOINED_FLAG in rec.flags:
            self.unjoined += 1
        if OFFLINE_FLAG in rec.flags:
            self.offline += 1
            self.offline_refused += OFFLINE_REFUSED in rec.flags
        lane, dzh, deczh = rec.lane or "", zh.name(zh.DIRECTION, d), zh.name(zh.DECISION, dec)
        if is_hazardous(rec):
            self.hazardous.append(
                (seq, when, lane, dzh, rec.plate, rec.fleet, rec.cargo, deczh, rec.reason_zh)
            )
        if rec.category == "machinery":
            m = rec.machinery or {}
            code = zh.stage_code(rec.stage_code, rec.emission_stage, rec.fuel)
            self.machinery.append(
                (
                    seq,
                    when,
                    dzh,
                    m.get("registry_no"),
                    m.get("env_code"),
                    m.get("machine_type") or rec.vehicle_type,
                    zh.stage(rec.emission_stage) or zh.stage_class(code),
                    code,
                    zh.name(zh.FUEL, rec.fuel),
                    m.get("made_on"),
                    m.get("owner"),
                    deczh,
                )
            )
        if rec.approval is not None:
            a = rec.approval
            self.approvals.append(
                (
                    seq,
                    when,
                    rec.plate,
                    dzh,
                    a.ref or a.id,
                    a.applicant,
                    a.approver,
                    _site_time(a.approved_at, self.tz),
                    a.reason,
                    _site_time(a.valid_until, self.tz),
                )
            )
        if fix is not None:
            fseq, c = fix
            self.corrections.append(
                (
                    seq,
                    fseq,
                    when,
                    rec.plate,
                    c.operator or rec.operator,
                    _site_time(c.time, self.tz),
                    c.reason,
                    describe_changes(c.changed),
                )
            )
        if not rec.plate_read:
            self.no_plate.append(
                (
                    seq,
                    when,
                    dzh,
                    zh.name(zh.ID_SOURCE, rec.id_source),
                    rec.rfid_tag,
                    rec.plate,
                    deczh,
                    rec.reason_zh,
                )
            )

    def _entry(self, rec: PassageRecord, key: str | None, day: date) -> None:
        level = zh.name(zh.ALERT, rec.alert_level) if rec.alert_level else NO_LEVEL
        slot = self.days[(day, level)]
        slot.entries += 1
        fleet = self.fleets[rec.fleet or NO_FLEET]
        fleet.counts[rec.decision] += 1
        if rec.approval is not None:
            fleet.counts["approval"] += 1
        if key:
            fleet.vehicles.add(key)
            if rec.decision == "deny" or (rec.decision == "allow" and rec.approval is not None):
                fleet.bad.add(key)
            elif rec.decision == "allow":
                fleet.admitted.add(key)
        if rec.decision == "deny":
            slot.refused += 1
        if rec.decision != "allow":
            return
        slot.admitted += 1
        self.admitted_in += 1
        code = zh.stage_code(rec.stage_code, rec.emission_stage, rec.fuel)
        self.stage_entries[code] += 1
        if key:
            slot.vehicles.add(key)
            self.stage_vehicles[code].add(key)

    # -- sections -----------------------------------------------------------------------
    def rows(self, section: Section) -> list[Sequence[Any]]:
        return {
            SUMMARY.name: self.summary_rows,
            TRAFFIC.name: self.traffic_rows,
            STAGES.name: self.stage_rows,
            REFUSALS.name: lambda: self.reason_rows(self.refusals),
            HOLDS.name: lambda: self.reason_rows(self.holds),
            FLEETS.name: self.fleet_rows,
            HAZARDOUS.name: lambda: self.hazardous,
            MACHINERY.name: lambda: self.machinery,
            APPROVALS.name: lambda: self.approvals,
            CORRECTIONS.name: lambda: self.corrections,
            ALERT_DAYS.name: self.alert_day_rows,
            ALERT_LEVELS.name: self.alert_level_rows,
            FREQUENT.name: self.frequent_rows,
            NO_PLATE.name: lambda: self.no_plate,
        }[section.name]()

    def admitted_vehicles(self) -> int:
        return len(set().union(*self.stage_vehicles.values())) if self.stage_vehicles else 0

    def summary_rows(self) -> list[Sequence[Any]]:
        nv = self.admitted_vehicles()
        ne = len(self.stage_vehicles.get("d", ()))
        five_up = len(
            set().union(*(v for c, v in self.stage_vehicles.items() if c in ("5", "6", "d")))
        )
        dec, dr = self.by_decision, self.by_direction
        return [
            ("通行总次数", self.total, None, "进出厂全部记录（含拒绝、待人工），按更正后计"),
            ("进厂次数", dr["in"], _share(dr["in"], self.total), None),
            ("出厂次数", dr["out"], _share(dr["out"], self.total), None),
            ("方向未知次数", dr["unknown"], _share(dr["unknown"], self.total), None),
            ("放行次数", dec["allow"], _share(dec["allow"], self.total), None),
            ("拒绝次数", dec["deny"], _share(dec["deny"], self.total), None),
            ("待人工次数", dec["hold"], _share(dec["hold"], self.total), "保安人工核查"),
            ("车辆数", len(self.vehicles), None, "按车牌（无车牌时按VIN或电子标签）计"),
            ("放行进厂车辆数", nv, None, "排放阶段占比的基数"),
            ("其中新能源车辆", ne, _share(ne, nv), "占放行进厂车辆"),
            ("其中国五及以上（含新能源）", five_up, _share(five_up, nv), "占放行进厂车辆"),
            ("特批放行次数", len(self.approvals), None, None),
            ("更正记录数", len(self.corrections), None, "按更正后的值统计"),
            ("危险货物运输车辆通行次数", len(self.hazardous), None, None),
            ("非道路移动机械通行次数", len(self.machinery), None, None),
            ("无车牌识别通行次数", len(self.no_plate), None, None),
            ("相机离线补录次数", self.offline, None, "相机离线期间识别、事后补录，本机未控制道闸"),
            (
                "其中按规则应拒绝",
                self.offline_refused,
                None,
                "本机离线时可能已入厂，请对照录像核查",
            ),
            ("相机识别但无地感通行次数", self.unjoined, None, "请检查地感及相机触发区域"),
            (
                f"频繁进出车辆数（单日超过{self.frequent_per_day}次）",
                len({r[0] for r in self.frequent_rows()}),
                None,
                None,
            ),
        ]

    def traffic_rows(self) -> list[Sequence[Any]]:
        groups: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for (lane, d, dec), n in self.traffic.items():
            groups[(lane, d)][dec] += n
        order = {k: i for i, k in enumerate(zh.DIRECTION)}
        out: list[Sequence[Any]] = []
        total: Counter[str] = Counter()
        for lane, d in sorted(groups, key=lambda k: (k[0], order.get(k[1], 9))):
            c = groups[(lane, d)]
            total.update(c)
            out.append(
                (lane, zh.name(zh.DIRECTION, d), c["allow"], c["deny"], c["hold"], sum(c.values()))
            )
        out.append(("合计", "", total["allow"], total["deny"], total["hold"], sum(total.values())))
        return out

    def stage_rows(self) -> list[Sequence[Any]]:
        nv = self.admitted_vehicles()
        out: list[Sequence[Any]] = []
        for code in zh.STAGE_CLASS_ORDER:
            if code not in self.stage_entries:
                continue
            v, n = len(self.stage_vehicles.get(code, ())), self.stage_entries[code]
            out.append(
                (zh.stage_class(code), code, v, _share(v, nv), n, _share(n, self.admitted_in))
            )
        out.append(("合计", "", nv, 1.0 if nv else None, self.admitted_in, None))
        return out

    def reason_rows(self, counts: Counter[str]) -> list[Sequence[Any]]:
        total = sum(counts.values())
        return [
            (zh.REASON.get(code) or self.reason_names.get(code) or code, n, _share(n, total), code)
            for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ]

    def fleet_rows(self) -> list[Sequence[Any]]:
        out: list[Sequence[Any]] = []
        for name in sorted(self.fleets, key=lambda n: (n == NO_FLEET, n)):
            f = self.fleets[name]
            good = len(f.admitted - f.bad)
            judged = len(f.admitted | f.bad)
            c = f.counts
            out.append(
                (
                    name,
                    len(f.vehicles),
                    good,
                    _share(good, judged),
                    sum(c[k] for k in ("allow", "deny", "hold")),
                    c["allow"],
                    c["deny"],
                    c["hold"],
                    c["approval"],
                )
            )
        return out

    def alert_day_rows(self) -> list[Sequence[Any]]:
        return [
            (day, level, len(s.vehicles), s.entries, s.admitted, s.refused)
            for (day, level), s in sorted(
                self.days.items(), key=lambda kv: (kv[0][0], _rank(kv[0][1]))
            )
        ]

    def alert_level_rows(self) -> list[Sequence[Any]]:
        per: dict[str, list[_Day]] = defaultdict(list)
        for (_day, level), s in self.days.items():
            per[level].append(s)
        out: list[Sequence[Any]] = []
        for level in sorted(per, key=_rank):
            out.append(_level_row(level, per[level]))
        alert_days: dict[date, _Day] = {}
        for (day, level), s in self.days.items():
            if level in (zh.ALERT["none"], NO_LEVEL):
                continue
            merged = alert_days.setdefault(day, _Day())
            merged.vehicles |= s.vehicles
            merged.entries += s.entries
            merged.admitted += s.admitted
            merged.refused += s.refused
        if alert_days:
            out.append(_level_row("预警日合计", list(alert_days.values())))
        return out

    def frequent_rows(self) -> list[Sequence[Any]]:
        per: dict[tuple[str, date], Counter[str]] = defaultdict(Counter)
        for (plate, day, d), n in self.per_plate_day.items():
            per[(plate, day)][d] += n
        rows = [
            (plate, day, sum(c.values()), c["in"], c["out"])
            for (plate, day), c in per.items()
            if sum(c.values()) > self.frequent_per_day
        ]
        return sorted(rows, key=lambda r: (-r[2], r[0], r[1]))


def _level_row(name: str, days: list[_Day]) -> Sequence[Any]:
    n = len(days)
    return (
        name,
        n,
        sum(len(d.vehicles) for d in days) / n,
        sum(d.entries for d in days) / n,
        sum(d.refused for d in days) / n,
    )


_LEVEL_RANK = {zh.ALERT[k]: i for i, k in enumerate(zh.ALERT_ORDER)}


def _rank(level: str) -> int:
    return _LEVEL_RANK.get(level, len(_LEVEL_RANK))


def _site_time(text: str | None, tz: tzinfo) -> datetime | str | None:
    """An ISO time from a record or the audit trail as a site-time cell."""
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return text
    if dt.tzinfo is None:
        return dt
    return dt.astimezone(tz).replace(tzinfo=None)


#: Names of the correctable fields, for 更正内容.
FIELD_NAMES = {
    "plate": "车牌号码",
    "plate_colour": "车牌颜色",
    "direction": "方向",
    "cargo": "运输货物名称",
    "weight_kg": "总重(kg)",
    "vin": "车辆识别代码",
    "fuel": "燃料类型",
    "emission_stage": "排放阶段",
    "stage_code": "国家编码",
    "fleet": "车队名称",
    "registered_on": "注册日期",
    "engine_no": "发动机号码",
    "vehicle_type": "车辆类型",
    "category": "车辆类别",
    "id_source": "识别方式",
    "raw_plate": "原识别车牌",
    "net_t": "运输量(t)",
}
_SHOWN = ("plate", "plate_colour", "direction", "cargo", "weight_kg")


def describe_changes(changed: dict[str, Any]) -> str:
    """``车牌号码：冀B11111→冀B22222；方向：进厂→出厂`` (the fields a guard corrects first)."""
    parts = []
    keys = [k for k in _SHOWN if k in changed] + [
        k for k in changed if k not in _SHOWN and k in FIELD_NAMES
    ]
    for key in keys:
        old, new = [*changed[key], None, None][:2]
        if key == "direction":
            old, new = zh.name(zh.DIRECTION, old), zh.name(zh.DIRECTION, new)
        elif key == "plate_colour":
            old, new = zh.name(zh.COLOUR, old), zh.name(zh.COLOUR, new)
        parts.append(f"{FIELD_NAMES[key]}：{_text(old)}→{_text(new)}")
    return "；".join(parts)


def _text(v: Any) -> str:
    return "（空）" if v in (None, "") else str(v)
