"""Turn a decision into outputs: open, or keep shut and sound the alarm.

Kept apart from the policy (pure) and the GPIO driver (pins) so the passage
pipeline, the remote-open command and the tests all act the same way.
"""

from __future__ import annotations

from typing import Protocol

from edged.admission.policy import Decision
from edged.logs import get_logger

log = get_logger("gate")


class GateOutputs(Protocol):
    """What ``drivers.gpio.GateIO`` offers; a fake or a network relay can stand in."""

    def open_barrier(self) -> None: ...
    def alarm(self, seconds: float | None = None) -> None: ...
    def allowed_lamp(self, on: bool) -> None: ...


def act(decision: Decision, outputs: GateOutputs) -> None:
    """Open on allow; on deny or hold keep the barrier shut and raise the alarm so
    the driver and the guard see the refusal (the reason goes to the display)."""
    if decision.opens:
        outputs.allowed_lamp(True)
        outputs.open_barrier()
        log.info(
            "gate_opened",
            plate=decision.plate,
            reason=decision.reason,
            approval_id=decision.approval_id,
            operator=decision.operator,
        )
    else:
        outputs.allowed_lamp(False)
        outputs.alarm()
        log.info(
            "gate_refused",
            plate=decision.plate,
            action=decision.action,
            reason=decision.reason,
            text=decision.text_zh,
        )
