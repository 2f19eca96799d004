"""The admission policy (准入规则): a pure function from what is known to allow/deny/hold.

``decide(read, vehicle, blacklist_entry, approval, alert_level, now, direction,
policy, machine=...)`` does no I/O; the caller looks the vehicle or machine up
in a registry snapshot (``resolve``) and, after opening on a special approval,
consumes it in the registry. ``decide_read`` does both and takes the alert
level in force at ``now`` from the snapshot itself.

Precedence, as the plant's environment officer reads it (first match wins):

1. **Exit** (``direction="out"``) with ``exit_mode="open"``: record and open.
   Trapping a loaded truck inside helps nobody; a blacklisted or unknown vehicle
   leaving is flagged for the ledger, not stopped.
2. **Nothing identified** (no plate, no known tag): ``unread_action`` (hold for
   the guard by default). No approval can match a vehicle nobody identified.
3. **Blacklist** (regulator list, e.g. over-emitting trucks): deny. A plant's own
   special approval does NOT override a regulator's blacklist — the plant cannot
   waive a regulator's decision — unless ``approval_overrides_blacklist`` is set.
4. **Special approval** (特批放行): a usable one-time pass for this plate opens
   the barrier when any later rule would refuse or hold it. It is consumed only
   when it changed the outcome, so a compliant truck does not burn a pass it did
   not need, and every use is tied to the passage that needed it.
5. **Unknown vehicle**: ``unknown_action`` (deny / allow-and-flag / hold).
6. **Registration expired** (valid-until passed): ``expired_action``.
7. **Hazardous goods** (危险品) outside ``hazardous_windows``: deny.
8. **New energy** (electric, hydrogen by default): allow.
9. **Emission stage**: the first rule matching fuel, vehicle class, category and
   the alert level in force gives the minimum stage; a missing stage gets
   ``missing_stage_action``; below the minimum is denied. No matching rule:
   allow (rules list restrictions, not permissions).

Non-road machinery (a passage ``resolve`` identified as a machine) goes through
the same steps 1-6 and 8, then its own ``machinery_rules``: the first rule for
the alert level in force gives the minimum non-road stage (国一..国四), and a
machine without a stage (``x``) is below every minimum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Literal, Protocol

from drivers.config import raise_all
from edged.admission.decision import Action as Action
from edged.admission.decision import Decision as Decision
from edged.admission.decision import Direction, check_levels, grey
from edged.admission.machinery import MachineryRule, default_machinery_rules, machine_rules
from edged.admission.model import (
    ALERT_LEVELS,
    CATEGORIES,
    FUELS,
    Approval,
    BlacklistEntry,
    GateRead,
    Nrmm,
    Vehicle,
)
from edged.admission.stages import parse_stage, stage_en, stage_rank
from edged.config.schema import doc
from edged.logs import get_logger

log = get_logger("gate")

_WINDOW_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True)
class EmissionRule:
    """One row of the admission standard: vehicles it matches need at least ``min_stage``."""

    min_stage: str = field(
        default="国5",
        metadata=doc("Lowest emission stage admitted (排放阶段): 国0..国5, 国6a, 国6b"),
    )
    fuels: list[str] = field(
        default_factory=lambda: ["diesel"],
        metadata=doc("Fuels this rule matches: diesel, petrol, gas, electric, hybrid, hydrogen"),
    )
    vehicle_classes: list[str] = field(
        default_factory=list,
        metadata=doc(
            "Vehicle classes this rule matches (e.g. heavy_truck, light_truck, car); empty = all"
        ),
    )
    categories: list[str] = field(
        default_factory=list,
        metadata=doc(
            "Vehicle categories this rule matches: transport (运输车辆), in_plant"
            " (厂内运输车辆); empty = both"
        ),
    )
    alert_levels: list[str] = field(
        default_factory=list,
        metadata=doc("Heavy-pollution alert levels (预警级别) this rule applies at; empty = all"),
    )
    name: str = field(default="", metadata=doc("Short name shown in logs and the ledger"))

    def __post_init__(self) -> None:
        problems: list[str] = []
        try:
            object.__setattr__(self, "min_stage", parse_stage(self.min_stage))
        except ValueError as exc:
            problems.append(f"min_stage: {exc}")
        for fuel in self.fuels:
            if fuel not in FUELS:
                problems.append(f"fuels: expected items from {', '.join(FUELS)}, found {fuel!r}")
        for category in self.categories:
            if category not in CATEGORIES:
                problems.append(
                    f"categories: expected items from {', '.join(CATEGORIES)}, found {category!r}"
                )
        problems += check_levels(self.alert_levels, ALERT_LEVELS)
        raise_all(problems)

    def matches(self, vehicle: Vehicle, alert_level: str) -> bool:
        return (
            vehicle.fuel in self.fuels
            and (not self.vehicle_classes or vehicle.vehicle_class in self.vehicle_classes)
            and (not self.categories or vehicle.category in self.categories)
            and (not self.alert_levels or alert_level in self.alert_levels)
        )


def _default_rules() -> list[EmissionRule]:
    return [
        EmissionRule(
            min_stage="国6a",
            fuels=["diesel", "gas"],
            alert_levels=["orange", "red"],
            name="alert_orange_red",
        ),
        EmissionRule(min_stage="国5", fuels=["diesel", "gas", "petrol", "hybrid"], name="base"),
    ]


@dataclass(frozen=True)
class PolicyConfig:
    """Admission policy (准入规则): ordered emission rules plus what to do in the grey cases."""

    rules: list[EmissionRule] = field(
        default_factory=_default_rules,
        metadata=doc(
            "Ordered emission rules; the first one matching fuel, class, category and alert"
            " level sets the minimum stage"
        ),
    )
    new_energy_fuels: list[str] = field(
        default_factory=lambda: ["electric", "hydrogen"],
        metadata=doc("Fuels admitted as new-energy vehicles (新能源) without a stage check"),
    )
    unknown_action: Literal["deny", "allow_flag", "hold"] = field(
        default="hold",
        metadata=doc(
            "Vehicle not in the registry (未登记车辆): deny, allow and flag, or hold for the guard"
        ),
    )
    unread_action: Literal["deny", "hold"] = field(
        default="hold", metadata=doc("Neither plate nor RFID tag read: deny or hold for the guard")
    )
    expired_action: Literal["deny", "allow_flag", "hold"] = field(
        default="hold", metadata=doc("Registry entry past its valid-until date (登记过期)")
    )
    missing_stage_action: Literal["deny", "allow_flag", "hold"] = field(
        default="hold",
        metadata=doc("Registered vehicle without an emission stage (排放阶段未登记)"),
    )
    hazardous_windows: list[str] = field(
        default_factory=list,
        metadata=doc(
            "Times hazardous-goods vehicles (危险品车辆) may enter, HH:MM-HH:MM in site time"
            " (may cross midnight); empty = no time limit"
        ),
    )
    exit_mode: Literal["open", "check"] = field(
        default="open",
        metadata=doc(
            "Exit direction (出厂): open = record and open; check = apply the entry rules"
        ),
    )
    approval_overrides_blacklist: bool = field(
        default=False,
        metadata=doc(
            "Let a special approval (特批放行) open for a blacklisted plate;"
            " off: the regulator's list wins"
        ),
    )
    approval_self_approve: bool = field(
        default=False,
        metadata=doc(
            "Accept a special approval whose applicant is also its approver;"
            " off: another person must approve"
        ),
    )
    machinery_rules: list[MachineryRule] = field(
        default_factory=default_machinery_rules,
        metadata=doc(
            "Ordered rules for non-road machinery (非道路移动机械); the first one matching"
            " the alert level sets the minimum stage; none matching: admitted"
        ),
    )

    def __post_init__(self) -> None:
        problems: list[str] = []
        for fuel in self.new_energy_fuels:
            if fuel not in FUELS:
                problems.append(
                    f"new_energy_fuels: expected items from {', '.join(FUELS)}, found {fuel!r}"
                )
        for w in self.hazardous_windows:
            if not _WINDOW_RE.match(w):
                problems.append(f"hazardous_windows: expected HH:MM-HH:MM, found {w!r}")
        raise_all(problems)

    def windows(self) -> list[tuple[time, time | None]]:
        out = []
        for w in self.hazardous_windows:
            a, b = w.split("-")
            start = time(int(a[:2]), int(a[3:]))
            end = None if b == "24:00" else time(int(b[:2]), int(b[3:]))
            out.append((start, end))
        return out


def _in_window(now: datetime, windows: list[tuple[time, time | None]]) -> bool:
    t = now.time().replace(tzinfo=None)
    for start, end in windows:
        if end is None:
            if t >= start:
                return True
        elif start <= end:
            if start <= t < end:
                return True
        elif t >= start or t < end:  # crosses midnight
            return True
    return False


def _entry_rules(
    read: GateRead,
    vehicle: Vehicle | None,
    now: datetime,
    alert_level: str,
    policy: PolicyConfig,
    flags: list[str],
    common: dict[str, object],
) -> Decision:
    """Steps 5-9 of the precedence: everything a special approval may override."""
    if vehicle is None:
        return grey(
            policy.unknown_action,
            "unknown_vehicle",
            "未登记车辆",
            "vehicle not registered",
            flags,
            **common,
        )
    if vehicle.valid_until is not None and now >= vehicle.valid_until:
        day = vehicle.valid_until.date().isoformat()
        return grey(
            policy.expired_action,
            "registration_expired",
            f"登记信息已过期（{day}）",
            f"registration expired on {day}",
            flags,
            **common,
        )
    if vehicle.hazardous and policy.hazardous_windows and not _in_window(now, policy.windows()):
        hours = ", ".join(policy.hazardous_windows)
        return Decision(
            "deny",
            "hazardous_outside_window",
            f"危险品车辆非通行时段禁入（{hours}）",
            f"hazardous-goods vehicle outside allowed hours ({hours})",
            flags=tuple(flags),
            **common,
        )  # type: ignore[arg-type]
    if vehicle.fuel in policy.new_energy_fuels:
        return Decision(
            "allow",
            "new_energy",
            "新能源车辆，放行",
            "new-energy vehicle: allowed",
            flags=tuple(flags),
            **common,
        )  # type: ignore[arg-type]
    for index, rule in enumerate(policy.rules):
        if not rule.matches(vehicle, alert_level):
            continue
        name = rule.name or f"rule{index + 1}"
        minimum = rule.min_stage
        if vehicle.emission_stage is None:
            return grey(
                policy.missing_stage_action,
                "stage_missing",
                "排放阶段未登记",
                "emission stage not registered",
                flags,
                rule=name,
                **common,
            )
        if stage_rank(vehicle.emission_stage) < stage_rank(minimum):
            return Decision(
                "deny",
                "stage_below_minimum",
                f"排放阶段不达标（{vehicle.emission_stage}，需{minimum}及以上），禁止入厂",
                f"emission stage below {minimum} ({stage_en(vehicle.emission_stage)}, "
                f"{stage_en(minimum)} or better required): entry refused",
                flags=tuple(flags),
                rule=name,
                **common,  # type: ignore[arg-type]
            )
        return Decision(
            "allow",
            "stage_ok",
            f"{vehicle.emission_stage}车辆，放行",
            f"{stage_en(vehicle.emission_stage)} vehicle: allowed",
            flags=tuple(flags),
            rule=name,
            **common,
        )  # type: ignore[arg-type]
    return Decision(
        "allow",
        "no_restriction",
        "放行",
        "no rule restricts this vehicle: allowed",
        flags=tuple(flags),
        **common,
    )  # type: ignore[arg-type]


def decide(
    read: GateRead,
    vehicle: Vehicle | None,
    blacklist_entry: BlacklistEntry | None,
    approval: Approval | None,
    alert_level: str,
    now: datetime,
    direction: Direction,
    policy: PolicyConfig,
    flags: tuple[str, ...] = (),
    machine: Nrmm | None = None,
) -> Decision:
    """Decide one passage. ``now`` must be in the site's time zone (hazardous windows
    are wall-clock times); ``flags`` carries what identification already noticed;
    ``machine`` is the non-road machine the passage was identified as (then
    ``vehicle`` is None), judged by the machinery rules."""
    if vehicle is not None:
        machine = None
    plate = read.plate or (vehicle.plate if vehicle is not None else None)
    if plate is None and machine is not None:
        plate = machine.plate or None
    subject = plate or (machine.registry_no if machine is not None else None)
    common: dict[str, object] = {
        "plate": plate,
        "direction": direction,
        "alert_level": alert_level,
        "at": now,
        "machine": machine.registry_no if machine is not None else None,
    }
    fl = list(flags)
    if blacklist_entry is not None and not blacklist_entry.active(now):
        blacklist_entry = None
    if approval is not None and (approval.plate != subject or not approval.usable(now, direction)):
        approval = None

    if direction == "out" and policy.exit_mode == "open":
        if blacklist_entry is not None:
            fl.append("blacklisted")
        if vehicle is None and machine is None and plate is not None:
            fl.append("unknown_vehicle")
        if subject is None:
            fl.append("unread")
        return Decision(
            "allow", "exit_open", "出厂放行", "exit: recorded and opened", flags=tuple(fl), **common
        )  # type: ignore[arg-type]

    if subject is None:
        return grey(policy.unread_action, "unread", "未识别车牌", "plate not read", fl, **common)

    if blacklist_entry is not None and not (approval and policy.approval_overrides_blacklist):
        return Decision(
            "deny",
            "blacklisted",
            f"黑名单车辆禁止通行：{blacklist_entry.reason}",
            f"blacklisted vehicle: {blacklist_entry.reason}",
            flags=tuple(fl),
            **common,
        )  # type: ignore[arg-type]

    if machine is not None:
        base = machine_rules(machine, now, alert_level, policy, fl, common)
    else:
        base = _entry_rules(read, vehicle, now, alert_level, policy, fl, common)
    # past a blacklist only on the approval: it is what opens, so it is consumed
    if approval is not None and (base.action != "allow" or blacklist_entry is not None):
        extra = ["blacklisted"] if blacklist_entry is not None else []
        return Decision(
            "allow",
            "special_approval",
            f"特批放行：{approval.reason}",
            f"special approval: {approval.reason} (would have been: {base.reason})",
            flags=(*fl, *extra, f"overrode:{base.reason}"),
            approval_id=approval.id,
            rule=base.rule,
            **common,  # type: ignore[arg-type]
        )
    return base


@dataclass(frozen=True)
class Resolved:
    """What the registry snapshot knows about a read: a vehicle, or a machine, or neither.

    ``machine`` is set only when no vehicle matched: the passage is then a
    non-road machine's, recorded with its own fields.
    """

    vehicle: Vehicle | None
    blacklist_entry: BlacklistEntry | None
    approval: Approval | None
    flags: tuple[str, ...]
    machine: Nrmm | None = None

    @property
    def is_machine(self) -> bool:
        return self.machine is not None


class SnapshotLike(Protocol):
    """What the resolver needs from a registry snapshot (``snapshot.Snapshot``)."""

    def vehicle(self, plate: str | None) -> Vehicle | None: ...
    def vehicle_by_tag(self, tag: str) -> Vehicle | None: ...
    def machine(self, plate_or_code: str | None) -> Nrmm | None: ...
    def machine_by_tag(self, tag: str) -> Nrmm | None: ...
    def blacklisted(self, plate: str | None, now: datetime) -> BlacklistEntry | None: ...
    def approval_for(
        self, plate: str | None, now: datetime, direction: str | None = None
    ) -> Approval | None: ...
    def alert_at(self, now: datetime) -> str: ...


def resolve(
    read: GateRead, snapshot: SnapshotLike, now: datetime, direction: str | None = None
) -> Resolved:
    """Find the vehicle by plate, else by RFID tag; failing both, a machine by plate,
    registry code or tag. Flag a tag that belongs to another plate (a swapped plate
    or tag is the evasion inspectors look for)."""
    flags: list[str] = []
    vehicle = snapshot.vehicle(read.plate)
    tag_vehicles = [v for v in (snapshot.vehicle_by_tag(t) for t in read.rfid_tags) if v]
    tag_machines = [m for m in (snapshot.machine_by_tag(t) for t in read.rfid_tags) if m]
    if read.plate is not None and (
        any(v.plate != read.plate for v in tag_vehicles)
        or any(read.plate not in (m.plate, m.registry_no) for m in tag_machines)
    ):
        flags.append("tag_plate_mismatch")
    if vehicle is None and read.plate is None and tag_vehicles:
        vehicle = tag_vehicles[0]
        flags.append("identified_by_tag")
    machine = None
    if vehicle is None:
        machine = snapshot.machine(read.plate)
        if machine is None and read.plate is None and tag_machines:
            machine = tag_machines[0]
            flags.append("identified_by_tag")
    plate = read.plate or (vehicle.plate if vehicle else None)
    if plate is None and machine is not None:
        plate = machine.plate or None
    key = plate or (machine.registry_no if machine is not None else None)
    return Resolved(
        vehicle,
        snapshot.blacklisted(plate, now),
        snapshot.approval_for(key, now, direction),
        tuple(flags),
        machine,
    )


def decide_read(
    read: GateRead,
    snapshot: SnapshotLike,
    now: datetime,
    direction: Direction,
    policy: PolicyConfig,
    *,
    resolved: Resolved | None = None,
) -> Decision:
    """``resolve`` (unless given) then ``decide``, at the alert level the snapshot has in
    force at ``now``: the one call the passage pipeline makes.

    The level is never passed in: the snapshot says which is in force at ``now``
    (an earlier form took it from the caller, who passed the alert record where a
    level was expected, and no alert rule ever applied).
    """
    r = resolved if resolved is not None else resolve(read, snapshot, now, direction)
    return decide(
        read,
        r.vehicle,
        r.blacklist_entry,
        r.approval,
        snapshot.alert_at(now),
        now,
        direction,
        policy,
        flags=r.flags,
        machine=r.machine,
    )


def manual_open(
    operator: str,
    reason: str,
    now: datetime,
    plate: str | None = None,
    direction: Direction = "in",
    alert_level: str = "none",
    remote: bool = False,
) -> Decision:
    """A guard's or a remote operator's open (人工/远程抬杆): refused without who and why,
    because an unexplained open is exactly what an inspector flags as evasion."""
    if not operator.strip():
        raise ValueError("operator: who opened the barrier is required")
    if len(reason.strip()) < 4:
        raise ValueError(f"reason: at least 4 characters saying why, found {reason!r}")
    how_zh, how_en = ("远程开闸", "remote open") if remote else ("人工开闸", "manual open")
    return Decision(
        "allow",
        "remote_open" if remote else "manual_open",
        f"{how_zh}：{reason.strip()}",
        f"{how_en} by {operator.strip()}: {reason.strip()}",
        plate=plate,
        direction=direction,
        alert_level=alert_level,
        flags=("manual",),
        operator=operator.strip(),
        at=now,
    )
