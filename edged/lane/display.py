"""A lane's display and voice as a supervised part that never holds up the barrier.

The lane hands each recorded passage to :meth:`DisplayPart.passage` after
the barrier has acted; that call only puts the row on a short queue. The
part's own thread renders the screen (:mod:`edged.lane.screen`), writes it
to the board and speaks, so a board that is unplugged, refuses frames or
hangs a TCP connection costs a warning event and a line in ``edged
status``, never a moment at the barrier. When the queue is full the oldest
screen gives way (the driver needs the newest), counted. Between passages
the board shows the idle screen, refreshed each minute by the same thread. A board shared by
two lanes is one part fed by both.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from drivers import config as driver_config
from drivers.display import DisplayError
from drivers.display.speaker import WavPrompts
from edged import sitetime
from edged.lane.screen import Screen, idle_screen, passage_screen
from edged.logs import get_logger

log = get_logger("display")

QUEUE = 4  # screens waiting for the board; older ones give way
IDLE_REFRESH_S = 60.0  # the idle screen shows the time to the minute


class DisplayPart:
    """Supervised part ``<lane>.display``: a board, its thread and its bounded queue."""

    def __init__(self, owner: str, cfg: Any, ctx: Any) -> None:
        self.name = f"{owner}.display"
        self.owner = owner
        self.cfg = cfg
        self.ctx = ctx
        self.driver: Any = None
        #: for a board behind the lane's camera (port = "camera"): gives the camera's channel
        self.camera_channel: Any = None
        self.prompts = WavPrompts(cfg.prompts_dir, cfg.alsa_device) if cfg.speech == "wav" else None
        self._q: queue.Queue[tuple[str, Any] | None] = queue.Queue(maxsize=QUEUE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle_due = 0.0  # monotonic time the idle screen is due; 0: showing idle
        self._idle_shown = -1.0  # when the idle screen was last queued
        self.state = "starting"
        self.error: str | None = None
        self.shown = 0
        self.spoken = 0
        self.failures = 0
        self.dropped = 0
        self.showing: tuple[str, ...] = ()

    # -- the lane's side (never blocks) ---------------------------------------------------
    def passage(self, record: dict[str, Any], lane: str) -> None:
        """A recorded passage to show; returns at once whatever the board does."""
        self._put(("passage", (dict(record), lane)))
        self._idle_due = time.monotonic() + self.cfg.hold_s

    def _idle_wait(self) -> float:
        """Seconds until the idle screen is due (a passage's time is up, or the minute turns)."""
        now = time.monotonic()
        if self._idle_due:
            return max(0.0, self._idle_due - now)
        return max(0.0, self._idle_shown + IDLE_REFRESH_S - now)

    def _put(self, item: tuple[str, Any]) -> None:
        with self._lock:
            while True:
                try:
                    self._q.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        self._q.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass

    # -- supervised part -------------------------------------------------------------------
    def start(self) -> None:
        self.driver = driver_config.build(self.cfg, name=self.name)
        if getattr(self.cfg, "port", None) == "camera" and self.camera_channel is not None:
            self.driver.camera_port = self.camera_channel()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._put(("stop", None))
            thread.join(self.cfg.write_timeout_s + 3.0)
            if thread.is_alive():
                return  # still inside a write or an answer's wait: it closes the board itself
        if self.driver is not None:
            self.driver.close()

    # -- the display's thread --------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                kind, payload = self._q.get(timeout=min(1.0, self._idle_wait()))
            except queue.Empty:
                if self._idle_wait() > 0:
                    continue
                kind, payload = "idle", None
            if kind == "idle":
                self._idle_due, self._idle_shown = 0.0, time.monotonic()
            if kind == "stop":
                return
            try:
                screen = self._render(kind, payload)
                self._show(screen)
            except Exception as exc:  # a board fault must never end the thread
                self._failed(exc)
            else:
                self._ok()

    def _render(self, kind: str, payload: Any) -> Screen:
        ctx = self.ctx
        now = sitetime.now()
        alert = _alert_level(ctx)
        if kind == "idle":
            return idle_screen(self.cfg, ctx.site, self.owner, alert, now)
        record, lane = payload
        return passage_screen(self.cfg, record, ctx.site, lane, alert, now)

    def _show(self, screen: Screen) -> None:
        self.driver.show(screen.lines, refusal=screen.refusal)
        self.shown += 1
        self.showing = screen.lines
        if screen.speech and getattr(self.driver, "speaks", False):
            self.driver.speak(screen.speech)
            self.spoken += 1
        elif screen.prompts and self.prompts is not None:
            self.prompts.play(screen.prompts)
            self.spoken += 1

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        why = str(exc) if isinstance(exc, DisplayError) else f"{type(exc).__name__}: {exc}"
        first = self.state != "failed"
        if self.driver is not None:
            self.driver.close()  # reopened by the next screen: a board that comes back is found
        if first:
            self.ctx.sink.event(
                "display_failed",
                "warning",
                "the driver display or voice failed: passages go on, drivers are not told why;"
                " check the board",
                display=self.name,
                error=why,
            )
        else:
            log.debug("display_still_failing", display=self.name, error=why)
        self.state, self.error = "failed", why

    def _ok(self) -> None:
        if self.state == "failed":
            self.ctx.sink.event(
                "display_restored", "info", "the driver display works again", display=self.name
            )
        self.state, self.error = "ok", None

    def status(self) -> dict[str, Any]:
        return {
            "type": self.cfg.type,
            "state": self.state,
            "error": self.error,
            "showing": list(self.showing),
            "shown": self.shown,
            "spoken": self.spoken,
            "failures": self.failures,
            "dropped": self.dropped,
        }


def _alert_level(ctx: Any) -> str:
    """The alert level in force, or none while the registry is not open."""
    try:
        return str(ctx.registry.snapshot().alert.level)
    except Exception:  # the registry part may be restarting; the screen still shows
        return "none"
