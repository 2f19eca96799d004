"""Remember how the daemon last stopped, so every start can report it.

The data-logger guide asks for the time of a fault and of the recovery, and
the gate regulations ask that a cut of power be reported. A heartbeat file,
rewritten every few seconds and marked clean on an orderly stop, tells the
next start whether the previous run ended cleanly, when it was last alive
and how long the box was down.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edged import sitetime


@dataclass(frozen=True)
class PreviousStop:
    """What the last run left behind, as published and kept in the event log."""

    first_start: bool
    clean: bool
    last_heartbeat: str | None
    stopped_at: str | None
    down_seconds: float | None
    previous_pid: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return sitetime.local(datetime.fromtimestamp(ts, UTC)).isoformat(timespec="seconds")


def judge_previous(state: dict[str, Any] | None, now: float) -> PreviousStop:
    """Pure: turn the last heartbeat state into a report about the previous stop."""
    if not state:
        return PreviousStop(True, True, None, None, None, None)
    clean = bool(state.get("clean_stop"))
    beat = state.get("last_heartbeat")
    stopped = state.get("stopped_at") if clean else None
    ref = stopped if stopped is not None else beat
    down = round(max(0.0, now - float(ref)), 1) if ref is not None else None
    pid = state.get("pid")
    return PreviousStop(
        False,
        clean,
        _iso(beat),
        _iso(stopped),
        down,
        int(pid) if isinstance(pid, int) else None,
    )


class Heartbeat:
    """The heartbeat file: one owner (the main loop), written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = time.time()

    def read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # A half-written file after a power cut still means "not clean".
            return {"clean_stop": False}

    def _write(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def beat(self) -> None:
        self._write(
            {
                "pid": os.getpid(),
                "started": self.started,
                "last_heartbeat": time.time(),
                "clean_stop": False,
            }
        )

    def mark_clean(self) -> None:
        now = time.time()
        self._write(
            {
                "pid": os.getpid(),
                "started": self.started,
                "last_heartbeat": now,
                "stopped_at": now,
                "clean_stop": True,
            }
        )
