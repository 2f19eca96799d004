"""The main loop: start the gate, keep systemd informed, stop cleanly.

One process. The main thread owns the lifecycle (supervisor, heartbeat,
watchdog, health); each component owns its resources and its threads. The
watchdog is pinged only while the main loop turns and every critical
component runs, so a hung loop or a dead ledger gets the service restarted.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edged.app.lifecycle import Heartbeat, judge_previous
from edged.app.sdnotify import Notifier, watchdog_interval
from edged.app.supervisor import Supervisor
from edged.logs import get_logger

log = get_logger("daemon")


class Daemon:
    """Owns start-up order, the main loop and shutdown."""

    def __init__(
        self,
        cfg: Any,
        notifier: Notifier | None = None,
        assemble: Callable[[Any, Daemon], Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self.notifier = notifier or Notifier()
        self.stop_event = threading.Event()
        self.data_dir = Path(cfg.daemon.data_dir)
        self.heartbeat = Heartbeat(self.data_dir / "state" / "heartbeat.json")
        self.supervisor = Supervisor(
            backoff_max=cfg.daemon.restart_backoff_max_seconds, on_change=self._component_changed
        )
        self.started_at = time.time()
        self.gate: Any = None  # the assembled gate (components + pipeline)
        self._assemble = assemble
        self._last_health = 0.0
        self._beat_error: str | None = None

    # -- events from components -------------------------------------------
    def _component_changed(self, name: str, state: str, error: str) -> None:
        if self.gate is not None and state != "stopped":
            severity = "error" if state == "failed" else "info"
            self.gate.event(
                f"component_{state}", severity, f"{name} is {state}", component=name, error=error
            )

    # -- lifecycle ---------------------------------------------------------
    def request_stop(self, *_: Any) -> None:
        self.stop_event.set()

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self) -> int:
        cfg = self.cfg
        self.data_dir.mkdir(parents=True, exist_ok=True)
        previous = judge_previous(self.heartbeat.read(), time.time())
        self._beat()
        log.info(
            "starting",
            site=cfg.site.id,
            gate=cfg.site.gate_id,
            data_dir=str(self.data_dir),
            previous_clean=previous.clean,
            down_s=previous.down_seconds,
        )
        if self._assemble is None:
            from edged.assembly import assemble as default_assemble

            self._assemble = default_assemble
        self.gate = self._assemble(cfg, self)
        self.supervisor.start_all()
        self.gate.started(previous)
        self.notifier.ready(self.summary())
        log.info(
            "ready",
            components=" ".join(f"{k}={v['state']}" for k, v in self.supervisor.states().items()),
        )
        try:
            self._loop()
        finally:
            self._shutdown()
        return 0

    def _loop(self) -> None:
        wd = watchdog_interval()
        beat_every = self.cfg.daemon.heartbeat_seconds
        next_beat = next_wd = 0.0
        tick = min(0.5, wd or 0.5, beat_every)
        while not self.stop_event.wait(tick):
            now = time.monotonic()
            self.supervisor.tick()
            self.gate.tick()
            healthy = self.supervisor.healthy()
            if now >= next_beat:
                self._beat()
                next_beat = now + beat_every
                self.notifier.status(self.summary())
            if healthy and now >= next_wd:
                self.notifier.watchdog()
                next_wd = now + (wd or 1.0)
            if now - self._last_health >= self.cfg.daemon.health_seconds:
                self._last_health = now
                self.gate.publish_health()

    def _beat(self, clean: bool = False) -> None:
        """Write the heartbeat; a full or read-only data partition must not stop the gate.

        The heartbeat only dates the last stop for the next start; the ledger,
        which refuses rows loudly on its own, is what matters while the disk is full.
        """
        try:
            if clean:
                self.heartbeat.mark_clean()
            else:
                self.heartbeat.beat()
        except OSError as exc:
            if self._beat_error != str(exc):  # once per kind of failure, not every beat
                log.error(
                    "heartbeat_not_written",
                    path=str(self.heartbeat.path),
                    error=str(exc),
                    hint="free space on the data partition (df -h); the gate keeps running",
                )
            self._beat_error = str(exc)
            return
        if self._beat_error is not None:
            log.info("heartbeat_written_again")
            self._beat_error = None

    def _shutdown(self) -> None:
        log.info("stopping")
        self.notifier.stopping()
        self.notifier.status("stopping")
        if self.gate is not None:
            self.gate.stopping()
        stuck = self.supervisor.stop_all(self.cfg.daemon.stop_timeout_seconds)
        self._beat(clean=True)
        log.info("stopped", stuck=",".join(stuck) or None)

    def summary(self) -> str:
        states = self.supervisor.states()
        bad = [n for n, s in states.items() if s["state"] != "running"]
        head = self.gate.summary() if self.gate is not None else ""
        text = head + (f"; degraded: {', '.join(bad)}" if bad else "; all components running")
        return text.strip("; ")
