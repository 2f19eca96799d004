"""Barrier, alarm and vehicle sensors on GPIO (gpiozero).

The barrier controller (道闸) takes a relay pulse to open and, optionally, one
to close; the ground loop (地感) and IR beam (红外对射) say a vehicle is under the
arm. The one safety rule here: never command a close while either reports a
vehicle. ``GateIO.close()`` leaves outputs safe (alarm off, relays released).

A small watchdog turns sensor timing into events a technician or inspector
cares about: a loop occupied too long (stuck vehicle / tailgating), a barrier
opened with no vehicle passing, and a passage nobody read (possible evasion).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gpiozero import DigitalInputDevice, DigitalOutputDevice

from edged.config.schema import doc
from edged.logs import get_logger

log = get_logger("gpio")

OnEvent = Callable[..., None]  # on_event(kind: str, **details)


@dataclass(frozen=True)
class InputPin:
    """One sensor input."""

    pin: int | None = field(default=None, metadata=doc("BCM pin number; none = not fitted"))
    active_high: bool = field(
        default=True, metadata=doc("True if the input reads high while a vehicle is present")
    )
    pull_up: bool = field(
        default=False, metadata=doc("Enable the internal pull-up (dry contact to ground)")
    )
    debounce_ms: int = field(
        default=50,
        metadata=doc("Ignore changes shorter than this (relay chatter, rain on the beam)"),
    )

    def __post_init__(self) -> None:
        if self.pull_up and self.active_high:
            raise ValueError(
                "active_high: with pull_up the input is active when the contact pulls it low;"
                " set active_high = false"
            )
        if not 0 <= self.debounce_ms <= 5000:
            raise ValueError(f"debounce_ms: expected 0..5000, found {self.debounce_ms}")


@dataclass(frozen=True)
class OutputPin:
    """One relay or lamp output."""

    pin: int | None = field(default=None, metadata=doc("BCM pin number; none = not fitted"))
    active_high: bool = field(
        default=True, metadata=doc("True if driving the pin high energises the relay")
    )


@dataclass(frozen=True)
class GpioConfig:
    """Barrier controller (道闸), alarm and vehicle sensors wired to the board's GPIO."""

    barrier_open: OutputPin = field(
        default_factory=lambda: OutputPin(17), metadata=doc("Relay that opens the barrier (抬杆)")
    )
    barrier_close: OutputPin = field(
        default_factory=OutputPin,
        metadata=doc(
            "Relay that closes the barrier (落杆); none = the controller closes by itself"
        ),
    )
    alarm: OutputPin = field(
        default_factory=lambda: OutputPin(27), metadata=doc("Alarm light / buzzer (声光报警)")
    )
    allowed_lamp: OutputPin = field(
        default_factory=OutputPin, metadata=doc("Optional 'vehicle allowed' lamp (绿灯)")
    )
    ground_loop: InputPin = field(
        default_factory=lambda: InputPin(22), metadata=doc("Ground loop detector output (地感)")
    )
    ir_beam: InputPin = field(
        default_factory=lambda: InputPin(23),
        metadata=doc("IR beam, anti-crush (红外对射); active = beam broken"),
    )
    barrier_up: InputPin = field(
        default_factory=InputPin, metadata=doc("Optional barrier-up limit switch (到位开关)")
    )
    pulse_ms: int = field(default=500, metadata=doc("Length of the open/close relay pulse"))
    alarm_seconds: float = field(
        default=5.0, metadata=doc("How long the alarm sounds on a refusal")
    )
    loop_max_seconds: float = field(
        default=60.0,
        metadata=doc(
            "Loop occupied longer than this raises loop_occupied_too_long"
            " (stuck vehicle / tailgating)"
        ),
    )
    passage_timeout_seconds: float = field(
        default=15.0,
        metadata=doc(
            "Barrier opened and no vehicle passed within this time raises open_without_passage"
        ),
    )
    read_window_seconds: float = field(
        default=5.0,
        metadata=doc("A vehicle passing with no read within this time raises passage_without_read"),
    )

    def __post_init__(self) -> None:
        if not 50 <= self.pulse_ms <= 5000:
            raise ValueError(f"pulse_ms: expected 50..5000, found {self.pulse_ms}")
        if self.barrier_open.pin is None:
            raise ValueError("barrier_open: a pin is required")


def _output(p: OutputPin) -> DigitalOutputDevice | None:
    if p.pin is None:
        return None
    return DigitalOutputDevice(p.pin, active_high=p.active_high, initial_value=False)


def _input(p: InputPin) -> DigitalInputDevice | None:
    if p.pin is None:
        return None
    bounce = (p.debounce_ms / 1000) or None
    if p.pull_up:  # dry contact to ground: idles high, active low
        return DigitalInputDevice(p.pin, pull_up=True, bounce_time=bounce)
    if p.active_high:
        return DigitalInputDevice(p.pin, pull_up=False, bounce_time=bounce)
    return DigitalInputDevice(p.pin, pull_up=None, active_state=False, bounce_time=bounce)


class GateIO:
    """All gate I/O and the watchdog. Thread-safe; callbacks run on gpiozero's thread."""

    def __init__(
        self,
        config: GpioConfig,
        on_event: OnEvent | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_arrival: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self._on_event = on_event or (lambda kind, **d: None)
        self.on_arrival = on_arrival  # the passage trigger: loop became occupied
        self._clock = clock
        self._lock = threading.RLock()
        self._open = _output(config.barrier_open)
        self._close = _output(config.barrier_close)
        self._alarm = _output(config.alarm)
        self._lamp = _output(config.allowed_lamp)
        self.loop = _input(config.ground_loop)
        self.beam = _input(config.ir_beam)
        self.barrier_up = _input(config.barrier_up)
        self._loop_since: float | None = None
        self._loop_reported = False
        self._opened_at: float | None = None
        self._passed_since_open = False
        self._last_read_at: float | None = None
        self._pending_passage: float | None = None
        self._timers: list[threading.Timer] = []
        self._closed = False
        if self.loop is not None:
            self.loop.when_activated = self._loop_on
            self.loop.when_deactivated = self._loop_off

    # -- state ------------------------------------------------------------------

    def vehicle_present(self) -> bool:
        """Loop or beam reports something under the arm."""
        return bool((self.loop and self.loop.is_active) or (self.beam and self.beam.is_active))

    # -- outputs ----------------------------------------------------------------

    def _pulse(self, dev: DigitalOutputDevice) -> None:
        dev.on()
        time.sleep(self.config.pulse_ms / 1000)
        dev.off()

    def open_barrier(self) -> None:
        """One open pulse (blocking for its length, so the caller knows it was sent)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("gate I/O is closed")
            assert self._open is not None
            self._pulse(self._open)
            self._opened_at = self._clock()
            self._passed_since_open = False
        log.info("barrier_open_pulse", pulse_ms=self.config.pulse_ms)

    def close_barrier(self) -> bool:
        """Close pulse, refused while a vehicle is under the arm. Returns True if sent."""
        with self._lock:
            if self._close is None:
                return False
            if self.vehicle_present():
                log.warning("barrier_close_refused", hint="vehicle on loop or beam; not closing")
                self._on_event("close_refused_vehicle_present")
                return False
            self._pulse(self._close)
        log.info("barrier_close_pulse", pulse_ms=self.config.pulse_ms)
        return True

    def alarm(self, seconds: float | None = None) -> None:
        """Sound/flash the alarm for a while (non-blocking)."""
        if self._alarm is None:
            return
        self._alarm.on()
        t = threading.Timer(
            self.config.alarm_seconds if seconds is None else seconds, self._alarm_off
        )
        t.daemon = True
        self._timers.append(t)
        t.start()

    def _alarm_off(self) -> None:
        with self._lock:
            if self._alarm is not None and not self._closed:
                self._alarm.off()

    def allowed_lamp(self, on: bool) -> None:
        if self._lamp is not None:
            self._lamp.value = on

    # -- watchdog inputs --------------------------------------------------------

    def note_read(self) -> None:
        """Identification produced a plate or tag for the current vehicle."""
        with self._lock:
            self._last_read_at = self._clock()
            self._pending_passage = None

    def _loop_on(self) -> None:
        with self._lock:
            self._loop_since = self._clock()
            self._loop_reported = False
        log.debug("loop_occupied")
        if self.on_arrival is not None:
            try:
                self.on_arrival()
            except Exception as exc:  # a failing pipeline must not kill the pin thread
                log.error(
                    "arrival_handler_failed",
                    error=repr(exc),
                    hint="passage not processed; guard must handle this vehicle",
                )

    def _loop_off(self) -> None:
        with self._lock:
            now = self._clock()
            self._loop_since = None
            if self._opened_at is not None:
                self._passed_since_open = True
                self._opened_at = None
            read_recent = (
                self._last_read_at is not None
                and now - self._last_read_at <= self.config.read_window_seconds
            )
            if not read_recent:
                self._pending_passage = now
        log.debug("loop_cleared")

    def check(self) -> list[str]:
        """Run the watchdog once (call it every second). Returns the events raised."""
        raised: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            now = self._clock()
            cfg = self.config
            if (
                self._loop_since is not None
                and not self._loop_reported
                and now - self._loop_since > cfg.loop_max_seconds
            ):
                self._loop_reported = True
                raised.append(
                    ("loop_occupied_too_long", {"seconds": round(now - self._loop_since, 1)})
                )
            if (
                self._opened_at is not None
                and not self._passed_since_open
                and now - self._opened_at > cfg.passage_timeout_seconds
            ):
                raised.append(
                    ("open_without_passage", {"seconds": round(now - self._opened_at, 1)})
                )
                self._opened_at = None
            if (
                self._pending_passage is not None
                and now - self._pending_passage > cfg.read_window_seconds
            ):
                if self._last_read_at is None or self._last_read_at < self._pending_passage - (
                    cfg.read_window_seconds
                ):
                    raised.append(("passage_without_read", {}))
                self._pending_passage = None
        for kind, details in raised:
            log.warning(kind, hint=_HINTS[kind], **details)
            self._on_event(kind, **details)
        return [k for k, _ in raised]

    # -- shutdown ---------------------------------------------------------------

    def close(self) -> None:
        """Safe state: alarm and lamp off, relays released. The barrier stays where
        it is (the controller decides what an unpowered relay means)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for t in self._timers:
                t.cancel()
            for dev in (self._alarm, self._lamp, self._open, self._close):
                if dev is not None:
                    dev.off()
                    dev.close()
            for dev in (self.loop, self.beam, self.barrier_up):
                if dev is not None:
                    dev.close()
        log.info("gpio_safe_state")

    def __enter__(self) -> GateIO:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_HINTS = {
    "loop_occupied_too_long": "vehicle stuck or tailgating on the loop; check the camera",
    "open_without_passage": "barrier opened but nothing crossed the loop; check the video",
    "passage_without_read": "vehicle crossed with no plate/tag read: possible evasion, check video",
}
