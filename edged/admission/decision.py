"""What the gate does and why: the decision, in the words of the LED board and the ledger.

Kept apart from the rules that make it (``policy``, ``machinery``) so the
actions, the passage and the ledger share one shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Action = Literal["allow", "deny", "hold"]
Direction = Literal["in", "out"]


@dataclass(frozen=True)
class Decision:
    """What the gate does and why, in the words shown on the LED board and the ledger."""

    action: Action
    reason: str  # stable code for the ledger / MQTT
    text_zh: str
    text_en: str
    plate: str | None = None
    direction: Direction = "in"
    alert_level: str = "none"
    flags: tuple[str, ...] = ()
    rule: str | None = None  # the emission rule that decided, if any
    machine: str | None = None  # registry code (登记编码) when the passage is a machine
    approval_id: int | None = None  # approval to consume in the registry
    operator: str | None = None  # set on manual opens
    at: datetime | None = None  # when it was decided

    @property
    def opens(self) -> bool:
        return self.action == "allow"


GREY = {
    "deny": ("deny", "禁止通行", "entry refused"),
    "hold": ("hold", "请人工核查", "guard to check"),
    "allow_flag": ("allow", "放行并标记", "allowed, flagged"),
}


def grey(
    setting: str, reason: str, zh: str, en: str, flags: list[str], **common: object
) -> Decision:
    action, zh_tail, en_tail = GREY[setting]
    if setting == "allow_flag":
        flags = [*flags, reason]
    return Decision(
        action,
        reason,
        f"{zh}，{zh_tail}",
        f"{en}: {en_tail}",  # type: ignore[arg-type]
        flags=tuple(flags),
        **common,
    )  # type: ignore[arg-type]


def check_levels(levels: list[str], known: tuple[str, ...]) -> list[str]:
    """Problems with a rule's ``alert_levels``, one per unknown level."""
    return [
        f"alert_levels: expected items from {', '.join(known)}, found {level!r}"
        for level in levels
        if level not in known
    ]
