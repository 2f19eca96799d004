"""A lane's camera as the passage sees it: fresh frames on request, and whether frames come.

One thread per camera owns the source. A passage asks for a frame taken
after its trigger (:meth:`CameraFeed.frame_after`), never for whatever frame
happens to be stored: a stream read slower than the camera sends it queues
frames in the socket, and a burst would read pictures of the lane from
seconds before the vehicle arrived.

``decode = "on_demand"`` (where the source can grab without decoding: the
opencv and folder sources) takes every frame the camera sends, as fast as it
sends them, so none queue, and makes a picture only of the frames a passage
is waiting for; between vehicles the frame thread pays for taking frames,
not for pictures nobody reads. ``decode = "every_frame"`` (and sources that
cannot grab) reads and decodes at ``camera.fps`` and keeps the newest.
Memory holds one decoded frame either way.

A source that takes a picture only when asked (``on_request``: a camera's
snapshot URL) is asked only while a passage waits for a frame, and once
every ``check_every_s`` between vehicles to know it is there. Its frame
counts from the moment it was asked for, so it is never older than the
trigger that wanted it.

When frames stop or come back it raises one event each way, not one per
retry: the guard must know plates are not read and passages rely on RFID or
on them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from drivers.camera import can_grab
from drivers.camera.resilient import ResilientSource
from edged import sitetime
from edged.app.health import RateMeter

Event = Callable[..., None]  # event(kind, severity, message, **details)

#: Grabs a second at most: a source that does not wait for the camera (a video file
#: opened as a device) must not spin a core; a stream's backlog still drains at once.
MAX_GRAB_RATE = 120.0
#: An https camera's certificate this close to its end is reported (once a day): once it
#: has expired the camera is lost until it makes a new one and the box is given it.
CERTIFICATE_WARN_DAYS = 30


class CameraFeed:
    """Supervised component: ``start``/``stop``, ``frame_after()``, ``latest()``, ``status()``."""

    def __init__(self, name: str, source: Any, cfg: Any, event: Event) -> None:
        self.name = name
        self.cfg = cfg
        self.source = ResilientSource(
            source, read_timeout=cfg.read_timeout_s, backoff_max=cfg.reconnect_max_s
        )
        self.on_demand = getattr(cfg, "decode", "every_frame") == "on_demand" and can_grab(source)
        self.on_request = self.on_demand and bool(getattr(source, "on_request", False))
        self._check_every = float(getattr(source, "check_every_s", 10.0))
        self._event = event
        self.rate = RateMeter()  # frames taken from the camera
        self.decoded = RateMeter()  # frames made into pictures
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._frame_time = 0.0  # time.monotonic() when the frame arrived
        self._last_arrival = 0.0  # newest frame taken, decoded or not
        self._lost = True
        self._certificate_warned: date | None = None  # the day it was last reported
        # A stream's decoder hands out a frame only after the next ones came in (the
        # H.264 parser waits for the next frame, each extra decoding thread holds one):
        # the frame out right after a trigger was sent before it.
        self._held = int(getattr(source, "held_frames", 0))
        self._seq = 0  # frames taken so far
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=256)  # (seq, time) of recent ones
        self._frame_seq = 0
        self._need: list[int] = []  # for each waiter: the first frame number it can take
        self._ages: deque[float] = deque(maxlen=100)  # ms from arrival to hand-over
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(3)
        self.source.close()

    # -- what passages ask -------------------------------------------------------------
    def frame_after(
        self, since: float, timeout: float | None = None
    ) -> tuple[np.ndarray, float] | None:
        """A frame that arrived after ``since`` (``time.monotonic()``), with its arrival time.

        Waits for the camera's next frame if needed, at most ``timeout`` seconds
        (default ``camera.read_timeout_s``); None at once while the camera is lost.
        """
        deadline = time.monotonic() + (self.cfg.read_timeout_s if timeout is None else timeout)
        with self._cond:
            first = next((n for n, t in self._arrivals if t > since), self._seq + 1)
            need = first + self._held
            self._need.append(need)
            self._cond.notify_all()  # a source taken on request waits for this
            try:
                while True:
                    if self._lost:
                        return None
                    if self._frame is not None and self._frame_seq >= need:
                        self._ages.append((time.monotonic() - self._frame_time) * 1000)
                        return self._frame, self._frame_time
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._stop.is_set():
                        return None
                    self._cond.wait(remaining)
            finally:
                self._need.remove(need)

    def latest(self) -> np.ndarray | None:
        """The newest frame (decoded now if it was not), or None while the camera is lost."""
        if not self.on_demand:
            with self._cond:
                return None if self._lost else self._frame
        got = self.frame_after(self._last_arrival - 1e-6, timeout=min(1.0, self.cfg.read_timeout_s))
        return None if got is None else got[0]

    # -- the frame thread --------------------------------------------------------------
    def _run(self) -> None:
        period = 1.0 / self.cfg.fps
        reported: str | None = None
        last_grab = 0.0
        while not self._stop.is_set():
            if self.on_demand:
                if self.on_request:
                    self._wait_for_need()
                    if self._stop.is_set():
                        break
                asked = time.monotonic()
                ok = self.source.grab()
                # a picture taken on request shows the moment it was asked for, or later
                now = asked if self.on_request else time.monotonic()
                frame = None
                if ok:
                    self.rate.tick()
                    with self._cond:
                        seq = self._arrived(now)
                        wanted = bool(self._need) and seq >= min(self._need)
                    if wanted:
                        frame = self.source.retrieve()
                        if frame is not None:
                            self.decoded.tick()
                        ok = frame is not None
            else:
                frame = self.source.read()
                now = time.monotonic()
                ok = frame is not None
                if ok:
                    self.rate.tick()
                    self.decoded.tick()
                    with self._cond:
                        seq = self._arrived(now)
            with self._cond:
                self._lost = not ok
                if frame is not None or not ok:
                    self._frame, self._frame_time, self._frame_seq = frame, now, self._seq
                self._cond.notify_all()
            state = "ok" if ok else "lost"
            if ok:
                self._check_certificate()
            if state != reported:
                self._report(state, reported)
                reported = state
            if not ok or not self.on_demand:
                self._stop.wait(period)
            else:  # the camera sets the pace; only a source that never waits is held back
                pause = last_grab + 1.0 / MAX_GRAB_RATE - time.monotonic()
                if pause > 0:
                    self._stop.wait(pause)
                last_grab = time.monotonic()

    def _wait_for_need(self) -> None:
        """Until a passage waits for a frame, or the next check of the camera is due."""
        with self._cond:
            due = self._last_arrival + self._check_every
            while not self._lost and not self._need and not self._stop.is_set():
                remaining = due - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    def _arrived(self, now: float) -> int:
        """Number the frame just taken; called with the lock held."""
        self._seq += 1
        self._arrivals.append((self._seq, now))
        self._last_arrival = now
        return self._seq

    def certificate_expires(self) -> datetime | None:
        """When the https camera's certificate ends (None: no https, or not read yet)."""
        return getattr(self.source.source, "certificate_expires", None)

    def _check_certificate(self) -> None:
        expires = self.certificate_expires()
        if expires is None:
            return
        now = datetime.now(UTC)
        days = (expires - now).total_seconds() / 86400
        if days >= CERTIFICATE_WARN_DAYS or self._certificate_warned == now.date():
            return
        self._certificate_warned = now.date()
        self._event(
            "camera_certificate_expiring",
            "warning",
            f"the camera's https certificate ends in {max(days, 0):.0f} days: have the camera"
            " make a new one, then save it for the box (edged probe camera --save-cert)",
            source=self.source.name,
            expires=sitetime.local(expires).isoformat(timespec="seconds"),
        )

    def _report(self, state: str, reported: str | None) -> None:
        if state == "lost":
            self._event(
                "camera_lost",
                "warning",
                "camera lost: plates are not read, passages fall back to RFID or the"
                " guard; check camera power, cable and network",
                source=self.source.name,
            )
        elif reported == "lost":
            self._event(
                "camera_restored",
                "info",
                "camera back: plates are read again",
                source=self.source.name,
            )

    def status(self) -> dict[str, Any]:
        """State, frames taken and decoded a second, and how old the frames are.

        ``frame_age_ms``: since the newest frame arrived (a frozen stream grows
        it); ``passage_frame_age_ms``: the 95th percentile, over the last 100
        frames handed to passages, of the time from a frame's arrival to the
        hand-over (the decoding and the wait for the frame thread).
        """
        ages = sorted(self._ages)
        p95 = ages[min(len(ages) - 1, int(0.95 * len(ages)))] if ages else None
        arrived = self._last_arrival
        return {
            "state": self.source.state,
            "fps": self.rate.rate(),
            "decoded_fps": self.decoded.rate(),
            "decode": (
                "on_request"
                if self.on_request
                else "on_demand"
                if self.on_demand
                else "every_frame"
            ),
            "frame_age_ms": round((time.monotonic() - arrived) * 1000) if arrived else None,
            "passage_frame_age_ms": None if p95 is None else round(p95, 1),
            "source": self.source.name,
            "error": self.source.last_error or None,
            **self._certificate_status(),
        }

    def _certificate_status(self) -> dict[str, Any]:
        expires = self.certificate_expires()
        if expires is None:
            return {}
        return {"certificate_expires": sitetime.local(expires).isoformat(timespec="seconds")}
