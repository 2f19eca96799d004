"""A camera that may vanish: reads with a timeout, reconnects with backoff, says ok/lost."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

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
        self._stuck: threading.Thread | None = None
        self._caller: _Caller | None = None

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
        value = self._call(self.source.read, "read")
        return None if value is None else value

    def grab(self) -> bool:
        """Take the next frame without decoding it (see :class:`drivers.camera.GrabSource`)."""
        return bool(self._call(self.source.grab, "grab"))  # type: ignore[attr-defined]

    def retrieve(self) -> np.ndarray | None:
        """The last grabbed frame as a picture; None (and lost) when it cannot be made."""
        return self._call(self.source.retrieve, "retrieve")  # type: ignore[attr-defined]

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        """``fn()`` on the camera's call thread, given up after ``read_timeout`` seconds.

        One long-lived thread makes every call (not one thread a frame, which
        at 25 frames a second is its own cost); a call stuck in the driver
        leaves that thread behind and the camera lost until it returns.
        """
        if self._stuck is not None:
            if self._stuck.is_alive():
                return None  # the previous call is still stuck in the driver
            self._stuck = None
        if not self._opened and not self._try_open():
            return None
        caller = self._caller
        if caller is None or not caller.thread.is_alive():
            caller = self._caller = _Caller(f"camera-read-{self.name}")
        done, result = caller.call(fn, self.read_timeout)
        if not done:
            caller.stop()  # it ends once the stuck call returns
            self._stuck, self._caller = caller.thread, None
            self._mark_lost(f"{what} took over {self.read_timeout}s")
            return None
        if isinstance(result, Exception) or result is None or result is False:
            self._mark_lost(
                f"{what} failed: {result}" if result not in (None, False) else "no frame"
            )
            return None
        return result

    def close(self) -> None:
        self.source.close()
        self._opened = False
        self.state = "lost"
        if self._caller is not None:
            self._caller.stop()
            self._caller = None


class _Caller:
    """A thread that runs one call at a time for its owner and hands back the result."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def call(self, fn: Callable[[], Any], timeout: float) -> tuple[bool, Any]:
        """(done, result or the exception raised); done is False after ``timeout`` s."""
        box: list[Any] = []
        done = threading.Event()
        self._jobs.put((fn, box, done))
        if not done.wait(timeout):
            return False, None
        return True, box[0]

    def stop(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, box, done = job
            try:
                box.append(fn())
            except Exception as exc:
                box.append(exc)
            done.set()
