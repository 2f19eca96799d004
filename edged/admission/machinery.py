"""Non-road mobile machinery (非道路移动机械) at the gate: its own admission rules.

Machinery is judged by its non-road stage (国一..国四), and ``x`` (no stage)
is below every minimum. The plant's rules are per alert level; by default
orange and red alerts stop machinery below 国三 and machinery without a stage,
as the emergency measures of the performance-grading rules ask, and at other
times machinery passes and is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from drivers.config import raise_all
from edged.admission.decision import Decision, check_levels, grey
from edged.admission.model import ALERT_LEVELS, Nrmm
from edged.admission.stages import NO_STAGE, parse_machine_stage, stage_en, stage_rank
from edged.config.schema import doc


@dataclass(frozen=True)
class MachineryRule:
    """A non-road machinery rule (非道路移动机械): machines need at least ``min_stage``
    at the alert levels it lists."""

    min_stage: str = field(
        default="国3",
        metadata=doc(
            "Lowest non-road emission stage admitted: 国1..国4 (国一..国四); a machine"
            " without a stage (x) is below every minimum"
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
            stage = parse_machine_stage(self.min_stage)
            if stage == NO_STAGE:
                problems.append("min_stage: x admits every machine; leave the rule out instead")
            object.__setattr__(self, "min_stage", stage)
        except ValueError as exc:
            problems.append(f"min_stage: {exc}")
        problems += check_levels(self.alert_levels, ALERT_LEVELS)
        raise_all(problems)

    def matches(self, alert_level: str) -> bool:
        return not self.alert_levels or alert_level in self.alert_levels


def default_machinery_rules() -> list[MachineryRule]:
    # Under orange and red alerts plants stop machinery below 国三 and machinery
    # without a stage (the emergency measures of the grading rules); otherwise
    # machinery is recorded, not stopped.
    return [MachineryRule(min_stage="国3", alert_levels=["orange", "red"], name="machinery_alert")]


class MachineryPolicy(Protocol):
    """The parts of ``PolicyConfig`` the machinery decision reads."""

    machinery_rules: list[MachineryRule]
    new_energy_fuels: list[str]
    expired_action: str
    missing_stage_action: str


def machine_rules(
    machine: Nrmm,
    now: datetime,
    alert_level: str,
    policy: MachineryPolicy,
    flags: list[str],
    common: dict[str, object],
) -> Decision:
    """The steps of the precedence a special approval may override, for a machine."""
    if machine.valid_until is not None and now >= machine.valid_until:
        day = machine.valid_until.date().isoformat()
        return grey(
            policy.expired_action,
            "registration_expired",
            f"非道路移动机械登记已过期（{day}）",
            f"machinery registration expired on {day}",
            flags,
            **common,
        )
    if machine.fuel in policy.new_energy_fuels:
        return Decision(
            "allow",
            "new_energy",
            "新能源非道路移动机械，放行",
            "new-energy machinery: allowed",
            flags=tuple(flags),
            **common,
        )  # type: ignore[arg-type]
    for index, rule in enumerate(policy.machinery_rules):
        if not rule.matches(alert_level):
            continue
        name = rule.name or f"machinery_rule{index + 1}"
        stage, minimum = machine.emission_stage, rule.min_stage
        if stage is None:
            return grey(
                policy.missing_stage_action,
                "stage_missing",
                "非道路移动机械排放阶段未登记",
                "machinery emission stage not registered",
                flags,
                rule=name,
                **common,
            )
        if stage_rank(stage) < stage_rank(minimum):
            zh = "无排放阶段" if stage == NO_STAGE else f"排放阶段不达标（{stage}）"
            return Decision(
                "deny",
                "machine_no_stage" if stage == NO_STAGE else "machine_stage_below_minimum",
                f"非道路移动机械{zh}，需{minimum}及以上，禁止通行",
                f"machinery with {stage_en(stage)}: {stage_en(minimum)} or better required",
                flags=tuple(flags),
                rule=name,
                **common,  # type: ignore[arg-type]
            )
        return Decision(
            "allow",
            "machine_stage_ok",
            f"{stage}非道路移动机械，放行",
            f"{stage_en(stage)} machinery: allowed",
            flags=tuple(flags),
            rule=name,
            **common,
        )  # type: ignore[arg-type]
    return Decision(
        "allow",
        "no_restriction",
        "非道路移动机械，放行",
        "no rule restricts this machine: allowed",
        flags=tuple(flags),
        **common,
    )  # type: ignore[arg-type]
