"""The gate worker: one job at a time, and a caller that gives up waiting is told why."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edged.app.control import ControlServer
from edged.lane.worker import WorkerTimeout
from tests.gate_rig import held_worker


@pytest.fixture
def held():
    with held_worker("test-worker") as pair:
        yield pair


def test_a_timed_out_job_is_not_cancelled(held) -> None:
    worker, release = held
    ran: list[str] = []
    with pytest.raises(WorkerTimeout, match=r"did not finish append within 0\.05 s") as err:
        worker.submit(ran.append, "late", wait=0.05)
    assert "not cancelled" in str(err.value) and isinstance(err.value, TimeoutError)
    assert ran == [] and worker.depth == 1
    release.set()
    deadline = time.monotonic() + 5
    while not ran and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ran == ["late"], "the job that timed out for its caller must still run"
    assert worker.submit(lambda: "next", wait=5) == "next"


def test_control_socket_reply_says_the_job_still_runs(held, tmp_path: Path) -> None:
    worker, _release = held
    server = ControlServer(tmp_path / "control.sock")
    server.on("simulate", lambda _req: worker.submit(dict, wait=0.05))
    reply = server.handle(b'{"cmd": "simulate"}\n')
    assert reply["ok"] is False
    assert "did not finish dict within 0.05 s" in reply["error"], reply
    assert "still runs" in reply["error"]
