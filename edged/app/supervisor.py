"""Start components in order, restart the ones that fail, stop them in reverse.

A camera that vanishes or a serial port that is missing must never take the
gate down: the supervisor keeps such a component in state ``failed``, retries
it with exponential backoff, and reports it in the health status, while the
rest of the gate goes on (falling back to RFID or manual handling).
Components marked ``critical`` (the ledger) decide whether the daemon counts
as healthy, which is what gates the systemd watchdog.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from edged.logs import get_logger

log = get_logger("supervisor")


class Component(Protocol):
    """What the supervisor needs of a component; drivers stay behind it."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class _Slot:
    component: Component
    critical: bool
    state: str = "stopped"  # stopped | running | failed
    error: str = ""
    failures: int = 0
    next_try: float = 0.0
    since: float = field(default_factory=time.monotonic)


class Supervisor:
    """Owns the lifecycle of every component in one process."""

    def __init__(
        self,
        backoff_min: float = 1.0,
        backoff_max: float = 60.0,
        on_change: Callable[[str, str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.on_change = on_change
        self.clock = clock

    def add(self, component: Component, critical: bool = False) -> None:
        self._slots.append(_Slot(component, critical))

    def _slot(self, name: str) -> _Slot:
        for slot in self._slots:
            if slot.component.name == name:
                return slot
        raise KeyError(name)

    def _set(self, slot: _Slot, state: str, error: str = "") -> None:
        changed = slot.state != state
        slot.state, slot.error = state, error
        if changed:
            slot.since = self.clock()
            if self.on_change:
                try:
                    self.on_change(slot.component.name, state, error)
                except Exception:  # a broken listener must not break supervision
                    log.exception("state_listener_failed", target=slot.component.name)

    def _try_start(self, slot: _Slot) -> None:
        name = slot.component.name
        try:
            slot.component.start()
        except Exception as exc:
            slot.failures += 1
            delay = min(self.backoff_max, self.backoff_min * 2 ** (slot.failures - 1))
            slot.next_try = self.clock() + delay
            log.error(
                "component_start_failed",
                target=name,
                error=f"{type(exc).__name__}: {exc}",
                retry_in_s=round(delay, 1),
                critical=slot.critical,
            )
            self._set(slot, "failed", f"{type(exc).__name__}: {exc}")
            return
        if slot.failures:
            log.info("component_recovered", target=name, after_failures=slot.failures)
        slot.failures = 0
        self._set(slot, "running")
        log.info("component_started", target=name)

    def start_all(self) -> None:
        """Start in the order added (dependency order)."""
        for slot in self._slots:
            with self._lock:
                self._try_start(slot)

    def report_failure(self, name: str, error: str) -> None:
        """A running component says it broke (device gone); restart it later."""
        with self._lock:
            slot = self._slot(name)
            if slot.state != "running":
                return
            try:
                slot.component.stop()
            except Exception as exc:
                log.warning("component_stop_failed", target=name, error=str(exc))
            slot.failures += 1
            delay = min(self.backoff_max, self.backoff_min * 2 ** (slot.failures - 1))
            slot.next_try = self.clock() + delay
            log.error("component_failed", target=name, error=error, retry_in_s=round(delay, 1))
            self._set(slot, "failed", error)

    def tick(self) -> None:
        """Called from the main loop: retry failed components whose backoff is over."""
        now = self.clock()
        with self._lock:
            for slot in self._slots:
                if slot.state == "failed" and now >= slot.next_try:
                    self._try_start(slot)

    def stop_all(self, timeout: float = 10.0) -> list[str]:
        """Stop in reverse order within ``timeout``; returns names that did not stop."""
        deadline = self.clock() + timeout
        stuck: list[str] = []
        for slot in reversed(self._slots):
            if slot.state != "running":
                slot.state = "stopped"
                continue
            remaining = max(0.1, deadline - self.clock())
            done = threading.Event()
            errors: list[BaseException] = []

            def run(
                comp: Component = slot.component,
                done: threading.Event = done,
                errors: list[BaseException] = errors,
            ) -> None:
                try:
                    comp.stop()
                except BaseException as exc:  # report, never raise out of shutdown
                    errors.append(exc)
                finally:
                    done.set()

            threading.Thread(target=run, name=f"stop-{slot.component.name}", daemon=True).start()
            if not done.wait(remaining):
                stuck.append(slot.component.name)
                log.error("component_stop_timeout", target=slot.component.name)
            elif errors:
                log.warning(
                    "component_stop_failed", target=slot.component.name, error=str(errors[0])
                )
            self._set(slot, "stopped")
        return stuck

    def healthy(self) -> bool:
        """True while every critical component runs."""
        return all(s.state == "running" for s in self._slots if s.critical)

    def states(self) -> dict[str, dict[str, Any]]:
        return {
            s.component.name: {
                "state": s.state,
                **({"error": s.error} if s.error else {}),
                **({"failures": s.failures} if s.failures else {}),
            }
            for s in self._slots
        }

    def state(self, name: str) -> str:
        return self._slot(name).state
