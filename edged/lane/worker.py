"""The lane's one worker thread: everything that touches its barrier, in order.

Vehicle triggers, manual and remote opens and MQTT commands that change
what the gate decides all run here, one at a time, so two threads can never
drive the relays against each other. A job that fails is logged and the
thread goes on; a caller that waits too long is told the job still runs.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

from edged.logs import get_logger

log = get_logger("gate")


class WorkerTimeout(TimeoutError):
    """A job waited for did not finish in time; it stays queued and still runs."""


class GateWorker:
    """A single thread that runs gate jobs in order; jobs never kill it."""

    def __init__(self, name: str = "gate-worker") -> None:
        self._jobs: queue.Queue[
            tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], queue.Queue[Any] | None]
            | None
        ] = queue.Queue(maxsize=64)
        self._thread: threading.Thread | None = None
        self.name = name
        self.busy = False
        self.done = 0
        self.failed = 0

    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread and self._thread.is_alive():
            with contextlib.suppress(queue.Full):
                self._jobs.put(None, timeout=timeout)
            self._thread.join(timeout)
        self._thread = None

    def submit(
        self, fn: Callable[..., Any], *args: Any, wait: float | None = None, **kwargs: Any
    ) -> Any:
        """Queue a job; with ``wait`` block for its result (re-raising its error)."""
        reply: queue.Queue[Any] | None = queue.Queue(1) if wait is not None else None
        try:
            self._jobs.put((fn, args, kwargs, reply), timeout=1.0)
        except queue.Full:
            log.error(
                "gate_queue_full",
                job=getattr(fn, "__name__", str(fn)),
                hint="gate worker is stuck or overloaded",
            )
            raise RuntimeError("gate worker queue is full") from None
        if reply is None:
            return None
        try:
            ok, value = reply.get(timeout=wait)
        except queue.Empty:
            job = getattr(fn, "__name__", str(fn))
            log.warning("gate_job_slow", job=job, waited_s=wait, queued=self.depth)
            raise WorkerTimeout(
                f"the gate worker did not finish {job} within {wait:g} s ({self.depth} jobs"
                " queued); it is not cancelled: it still runs and is recorded when done."
                " Check `edged status` and the journal for what holds the gate up"
            ) from None
        if not ok:
            raise value
        return value

    @property
    def depth(self) -> int:
        return self._jobs.qsize()

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            fn, args, kwargs, reply = item
            self.busy = True
            try:
                value = fn(*args, **kwargs)
                self.done += 1
                if reply is not None:
                    reply.put((True, value))
            except Exception as exc:
                self.failed += 1
                log.exception(
                    "gate_job_failed", job=getattr(fn, "__name__", str(fn)), error=str(exc)
                )
                if reply is not None:
                    reply.put((False, exc))
            finally:
                self.busy = False
