"""Barrier, alarm and watchdog on gpiozero MockFactory pins."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from drivers.gpio import GateIO, GpioConfig, InputPin, OutputPin


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    old = Device.pin_factory
    Device.pin_factory = MockFactory()
    yield Device.pin_factory
    Device.pin_factory.reset()
    Device.pin_factory = old


def cfg(**kw: object) -> GpioConfig:
    base = dict(
        barrier_open=OutputPin(17),
        barrier_close=OutputPin(18),
        alarm=OutputPin(27),
        allowed_lamp=OutputPin(24),
        ground_loop=InputPin(22, debounce_ms=0),
        ir_beam=InputPin(23, debounce_ms=0),
        pulse_ms=200,
        alarm_seconds=0.1,
    )
    base.update(kw)
    return GpioConfig(**base)  # type: ignore[arg-type]


def high_durations(pin) -> list[float]:
    states = pin.states
    out = []
    for a, b in itertools.pairwise(states):
        if a.state and not b.state:
            out.append(b.timestamp - a.timestamp)
    return out


def test_open_pulse_has_configured_length(factory: MockFactory) -> None:
    with GateIO(cfg()) as io:
        io.open_barrier()
        pulses = high_durations(factory.pin(17))
    assert len(pulses) == 1
    assert 0.19 <= pulses[0] < 0.3


def test_open_pulse_active_low_relay(factory: MockFactory) -> None:
    with GateIO(cfg(barrier_open=OutputPin(17, active_high=False))) as io:
        pin = factory.pin(17)
        assert pin.state is True  # released = high for an active-low relay board
        io.open_barrier()
        assert [s.state for s in pin.states][-2:] == [False, True]


@pytest.mark.parametrize("sensor", [22, 23])
def test_never_closes_with_vehicle_under_arm(factory: MockFactory, sensor: int) -> None:
    events: list[str] = []
    with GateIO(cfg(), on_event=lambda kind, **d: events.append(kind)) as io:
        factory.pin(sensor).drive_high()
        assert io.close_barrier() is False
        assert high_durations(factory.pin(18)) == []
        assert events == ["close_refused_vehicle_present"]
        factory.pin(sensor).drive_low()
        assert io.close_barrier() is True
        assert len(high_durations(factory.pin(18))) == 1


def test_alarm_is_timed_and_close_is_safe(factory: MockFactory) -> None:
    io = GateIO(cfg(alarm_seconds=5.0))
    io.alarm()
    assert factory.pin(27).state is True
    io.close()  # daemon stop: alarm must not keep sounding
    assert factory.pin(27).state is False
    assert factory.pin(17).state is False


def test_alarm_switches_itself_off(factory: MockFactory) -> None:
    with GateIO(cfg()) as io:
        io.alarm(0.05)
        assert factory.pin(27).state is True
        time.sleep(0.2)
        assert factory.pin(27).state is False


def test_pull_up_input_is_active_low(factory: MockFactory) -> None:
    with GateIO(
        cfg(ground_loop=InputPin(22, active_high=False, pull_up=True, debounce_ms=0))
    ) as io:
        factory.pin(22).drive_high()
        assert not io.vehicle_present()
        factory.pin(22).drive_low()
        assert io.vehicle_present()


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match=r"^pulse_ms: "):
        GpioConfig(pulse_ms=10)
    with pytest.raises(ValueError, match=r"^active_high: "):
        InputPin(5, active_high=True, pull_up=True)


def test_watchdog_loop_occupied_too_long(factory: MockFactory) -> None:
    clock = Clock()
    events: list[tuple[str, dict]] = []
    with GateIO(cfg(loop_max_seconds=30), lambda k, **d: events.append((k, d)), clock) as io:
        factory.pin(22).drive_high()
        clock.t += 29
        assert io.check() == []
        clock.t += 2
        assert io.check() == ["loop_occupied_too_long"]
        assert io.check() == []  # reported once per occupation
    assert events[0][1]["seconds"] == 31


def test_watchdog_open_without_passage(factory: MockFactory) -> None:
    clock = Clock()
    with GateIO(cfg(pulse_ms=50, passage_timeout_seconds=15), clock=clock) as io:
        io.open_barrier()
        clock.t += 16
        assert io.check() == ["open_without_passage"]
        io.open_barrier()  # this time the vehicle goes through
        io.note_read()
        factory.pin(22).drive_high()
        factory.pin(22).drive_low()
        clock.t += 16
        assert io.check() == []


def test_watchdog_passage_without_read(factory: MockFactory) -> None:
    clock = Clock()
    with GateIO(cfg(read_window_seconds=5), clock=clock) as io:
        factory.pin(22).drive_high()
        clock.t += 2
        factory.pin(22).drive_low()  # crossed, nothing read
        clock.t += 6
        assert io.check() == ["passage_without_read"]
        # a read vehicle does not raise it
        io.note_read()
        factory.pin(22).drive_high()
        factory.pin(22).drive_low()
        clock.t += 6
        assert io.check() == []
