"""A lane's camera as the passage sees it: the latest frame, and whether frames come.

One thread per camera owns the source: it reads at the configured rate and
keeps only the newest frame, so a burst never reads a queue of old ones and
memory holds one frame. When frames stop or come back it raises one event
each way, not one per retry: the guard must know plates are not read and
passages rely on RFID or on them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from drivers.camera.resilient import ResilientSource
from edged.app.health import RateMeter

Event = Callable[..., None]  # event(kind, severity, message, **details)


class CameraFeed:
    """Supervised component: ``start``/``stop``, ``latest()`` and ``status()``."""

    def __init__(self, name: str, source: Any, cfg: Any, event: Event) -> None:
        self.name = name
        self.cfg = cfg
        self.source = ResilientSource(
            source, read_timeout=cfg.read_timeout_s, backoff_max=cfg.reconnect_max_s
        )
        self._event = event
        self.rate = RateMeter()
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._frame_time = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3)
        self.source.close()

    def latest(self) -> np.ndarray | None:
        """The newest frame, or None while the camera is lost."""
        with self._lock:
            return self._frame

    def _run(self) -> None:
        period = 1.0 / self.cfg.fps
        reported: str | None = None
        while not self._stop.is_set():
            frame = self.source.read()
            if frame is not None:
                self.rate.tick()
            with self._lock:
                self._frame = frame
                self._frame_time = time.time()
            state = "ok" if frame is not None else "lost"
            if state != reported:
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
                reported = state
            self._stop.wait(period)

    def status(self) -> dict[str, Any]:
        return {
            "state": self.source.state,
            "fps": self.rate.rate(),
            "source": self.source.name,
            "error": self.source.last_error or None,
        }
