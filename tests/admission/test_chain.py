"""Loop rises → read → decision → relay pulse, or alarm and no pulse (MockFactory pins)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from drivers.gpio import GateIO, GpioConfig, InputPin, OutputPin
from edged.admission.actions import act
from edged.admission.model import GateRead, Vehicle
from edged.admission.policy import PolicyConfig, decide_read
from edged.admission.registry import Registry


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    old = Device.pin_factory
    Device.pin_factory = MockFactory()
    yield Device.pin_factory
    Device.pin_factory.reset()
    Device.pin_factory = old


def pulses(pin) -> int:
    return sum(
        1 for a, b in zip(pin.states, pin.states[1:], strict=False) if a.state and not b.state
    )


@pytest.mark.parametrize(
    "stage,opened", [("国6a", True), ("国4", False)], ids=["compliant", "below_stage"]
)
def test_chain(factory: MockFactory, tmp_path: Path, stage: str, opened: bool) -> None:
    cfg = GpioConfig(
        barrier_open=OutputPin(17),
        alarm=OutputPin(27),
        ground_loop=InputPin(22, debounce_ms=0),
        ir_beam=InputPin(23, debounce_ms=0),
        pulse_ms=100,
        alarm_s=5,
    )
    passages: list[tuple[str, str]] = []
    with Registry(tmp_path / "r.sqlite") as reg, GateIO(cfg) as io:
        reg.upsert_vehicles([Vehicle("冀A12345", emission_stage=stage)])

        def on_loop() -> None:  # what the passage pipeline will do on the trigger
            read = GateRead("冀A12345", "yellow", passage_id="P1")  # stands in for the LPR burst
            io.note_read()
            snap = reg.snapshot()
            decision = decide_read(read, snap, datetime.now().astimezone(), "in", PolicyConfig())
            act(decision, io)
            passages.append((decision.action, decision.reason))

        io.on_loop = lambda name, active: on_loop() if active else None
        factory.pin(22).drive_high()
        assert pulses(factory.pin(17)) == (1 if opened else 0)
        assert factory.pin(27).state is (not opened)
    assert passages == [("allow", "stage_ok")] if opened else [("deny", "stage_below_minimum")]
