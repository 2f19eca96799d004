"""``edged probe gpio``: the loops, beam and relays of a lane, a pulse only when asked."""

from __future__ import annotations

import time
from typing import Any, TextIO

from edged.probe.output import ProbeOutput

_INPUT_MEANING = {
    "ground_loop": "vehicle on the loop",
    "inner_loop": "vehicle on the inner loop",
    "ir_beam": "beam broken",
    "barrier_up": "barrier up",
}


def probe_gpio(gc: Any, out: TextIO, *, pulse: str | None = None, watch: float = 0.0) -> int:
    """Show inputs and outputs; pulse one output only when asked."""
    from gpiozero import Device
    from gpiozero.exc import GPIOZeroError

    from drivers.gpio import GateIO

    v = ProbeOutput(out)
    how = "set by the caller"
    if Device.pin_factory is None:  # chosen here, explicitly: no fallback chain, no warnings
        from edged.app.pins import PinFactoryError, open_pin_factory

        try:
            Device.pin_factory, choice = open_pin_factory()
        except PinFactoryError as exc:
            return v.failed(exc.message, exc.hint)
        chip = getattr(Device.pin_factory, "chip", None)
        how = f"{choice.name}, chosen by {choice.source}" + (
            f", chip {chip}" if chip is not None else ""
        )
        if choice.board:
            how += f", board {choice.board}"
    try:
        io = GateIO(gc)
    except (GPIOZeroError, OSError, RuntimeError) as exc:
        return v.failed(
            f"GPIO pins could not be opened: {type(exc).__name__}: {exc}",
            "stop the daemon first (sudo systemctl stop edged) if it holds the pins, check"
            " the pin numbers in [gpio] and that the user is in the gpio group",
        )
    try:
        v.line(f"pin factory: {type(Device.pin_factory).__name__} ({how})")
        inputs = (
            ("ground_loop", gc.ground_loop, io.loop),
            ("inner_loop", gc.inner_loop, io.inner_loop),
            ("ir_beam", gc.ir_beam, io.beam),
            ("barrier_up", gc.barrier_up, io.barrier_up),
        )

        def state(name: str, dev: Any) -> str:
            return f"ACTIVE ({_INPUT_MEANING[name]})" if dev.is_active else "inactive"

        for name, pin, dev in inputs:
            if dev is None:
                v.line(f"input  {name:<14} not fitted")
            else:
                v.line(f"input  {name:<14} BCM{pin.pin:<3} {state(name, dev)}")
        for name in ("barrier_open", "barrier_close", "alarm", "allowed_lamp"):
            pin = getattr(gc, name).pin
            v.line(f"output {name:<14} " + ("not fitted" if pin is None else f"BCM{pin:<3} off"))
        if watch > 0:
            v.line(f"watching inputs for {watch:g} s: drive over the loop, break the beam")
            last = {n: d.is_active for n, _, d in inputs if d is not None}
            t0 = time.monotonic()
            while time.monotonic() - t0 < watch:
                for name, _, dev in inputs:
                    if dev is not None and dev.is_active != last[name]:
                        last[name] = dev.is_active
                        v.line(f"{time.monotonic() - t0:7.2f}s {name} {state(name, dev)}")
                time.sleep(0.02)
        done = ""
        output = {"barrier": "barrier_open", "close": "barrier_close", "lamp": "allowed_lamp"}
        name = output.get(pulse or "", pulse or "")
        if pulse and getattr(gc, name).pin is None:
            return v.failed(f"{name} is not fitted (no pin)", f"set gpio.{name}.pin")
        if pulse:
            v.line(f"switching {name} now: watch it")
        if pulse == "barrier":
            io.open_barrier()
            done = f"; barrier_open pulsed {gc.pulse_ms} ms (the arm should have gone up)"
        elif pulse == "close":
            if not io.close_barrier():
                return v.failed(
                    "close refused: the loop or beam reports a vehicle",
                    "clear the lane (or check the loop/beam wiring if it is empty)",
                )
            done = f"; barrier_close pulsed {gc.pulse_ms} ms (the arm should have come down)"
        elif pulse == "alarm":
            seconds = min(gc.alarm_s, 2.0)
            io.alarm(seconds)
            time.sleep(seconds + 0.05)
            done = f"; alarm on for {seconds:g} s (light/buzzer should have come on)"
        elif pulse == "lamp":
            io.allowed_lamp(True)
            time.sleep(1.0)
            io.allowed_lamp(False)
            done = "; allowed lamp on for 1 s"
        present = " (a vehicle is reported present)" if io.vehicle_present() else ""
    finally:
        io.close()
    return v.passed(f"GPIO opened, inputs read{present}{done}")
