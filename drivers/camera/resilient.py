"""A camera that may vanish: reads with a timeout, reconnects with backoff, says ok/lost."""

from __future__ import annotations

import threading
import time

import numpy as np

from drivers.camera import FrameSource
from drivers.log import get_logger

log = get_logger("camera")


class ResilientSource:
    """Wraps a source: read with a timeout, reconnect with backoff, report ``ok``/``lost``."""

    def __init__(
        self,
        source: FrameSource,
        read_timeout: float = 2.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.source = source
        self.name = source.name
        self.read_timeout = read_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.state = "lost"
        self.last_error = ""  # why it was last lost, for health and the camera probe
        self._backoff = backoff_initial
        self._next_try = 0.0
        self._opened = False
        self._busy: threading.Thread | None = None
        self._result: list = []

    def open(self) -> None:
        self._try_open()

    def _try_open(self) -> bool:
        if time.monotonic() < self._next_try:
            return False
        try:
            self.source.close()
            self.source.open()
        except Exception as exc:
            self._mark_lost(f"open failed: {exc}")
            return False
        self._opened = True
        self._backoff = self.backoff_initial
        if self.state != "ok":
            log.info("camera_ok", source=self.name)
        self.state = "ok"
        return True

    def _mark_lost(self, why: str) -> None:
        if self.state != "lost" or self._opened:
            log.warning(
                "camera_lost",
                source=self.name,
                reason=why,
                retry_s=round(self._backoff, 2),
                hint="check camera power/cable/network; gate falls back to RFID/manual",
            )
        self.state = "lost"
        self.last_error = why
        self._opened = False
        self._next_try = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.backoff_max)

    def read(self) -> np.ndarray | None:
        """A frame, or None (lost / timed out) within about ``read_timeout`` seconds."""
        if self._busy is not None and self._busy.is_alive():
            return None  # the previous read is still stuck in the driver
        if not self._opened and not self._try_open():
            return None
        result: list = []

        def work() -> None:
            try:
                result.append(self.source.read())
            except Exception as exc:
                result.append(exc)

        t = threading.Thread(target=work, name=f"camera-read-{self.name}", daemon=True)
        t.start()
        t.join(self.read_timeout)
        if t.is_alive():
            self._busy = t
            self._mark_lost(f"read took over {self.read_timeout}s")
            return None
        value = result[0] if result else None
        if isinstance(value, Exception) or value is None:
            self._mark_lost(f"read failed: {value}" if value is not None else "no frame")
            return None
        return value

    def close(self) -> None:
        self.source.close()
        self._opened = False
        self.state = "lost"
