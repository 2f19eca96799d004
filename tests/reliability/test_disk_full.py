"""A data partition that fills up: images stop, the ledger goes on, and both recover.

The data directory is a small tmpfs, so "full" is real (ENOSPC from the
kernel), not simulated. A ballast file takes the space away in two steps:

1. below ``min_free_mb``: the retention policy stops snapshots (an
   ``images_stopped`` event) while passages still get their ledger rows;
2. no space at all: whatever cannot be written must be refused loudly, and
   no passage may be acknowledged without its row;

then the ballast goes and images resume. The gate runs as ``edged run``
with a replayed camera folder and the real plate models, so the snapshots
are the ones a real passage writes.

Needs root (``mount -t tmpfs``); skipped with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

from edged.lpr import check_models
from tests.broker import Mosquitto
from tests.reliability import summary
from tests.reliability.daemon import REPO, Collector, Instance, event_ids

MODELS = Path(os.environ.get("EDGED_MODEL_DIR", REPO / "models" / "onnx"))
SIZE_MB = 40
MIN_FREE_MB = 12
PLATE = "冀B12345"


@contextlib.contextmanager
def tmpfs(path: Path, size_mb: int) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("disk-full scenario mounts a tmpfs: run the suite as root (or in CI's VM)")
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip()}): needs CAP_SYS_ADMIN")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def free_mb(path: Path) -> float:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize / 2**20


def fill(path: Path, leave_mb: float) -> int:
    """Grow the ballast file until ``leave_mb`` is left (0: until the kernel says ENOSPC)."""
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (65536, 4096, 512, 1):
            block = b"\0" * size
            while free_mb(path.parent) > leave_mb or (leave_mb == 0 and size < 65536):
                try:
                    written += os.write(fd, block)
                except OSError:
                    break
            if leave_mb:
                break
    finally:
        os.close(fd)
    return written


@pytest.mark.reliability
@pytest.mark.slow
def test_disk_full_stops_images_keeps_the_ledger_and_recovers(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    if check_models(MODELS):
        pytest.skip("models not fetched: run python models/fetch.py")
    from edged.lpr.synth import render_scene

    t0 = time.monotonic()
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    cv2.imwrite(str(scenes / "0001.png"), render_scene(PLATE, "blue", size=(1280, 720), seed=1))
    with tmpfs(tmp_path / "data", SIZE_MB) as data:
        gate = Instance(
            tmp_path / "gate",
            mosquitto.port,
            gate="diskfull",
            data_dir=data,
            camera=f'type = "folder"\nfolder = "{scenes}"\nfps = 5.0',
            model_dir=MODELS,
            ledger=f"min_free_mb = {MIN_FREE_MB}",
            extra="[trigger]\nburst_frames = 2\nmin_plate_confidence = 0.6\n",
        )
        collector = Collector(mosquitto.port).start()
        ballast = data / "ballast"
        acked: list[tuple[str, dict]] = []
        refused: list[dict] = []
        try:
            gate.start(ready_timeout=120)

            def drive(n: int, phase: str) -> None:
                for _ in range(n):
                    try:
                        reply = gate.passage(None, timeout=60)
                    except (OSError, ValueError) as exc:
                        refused.append({"phase": phase, "error": repr(exc)})
                        continue
                    if reply.get("ok"):
                        acked.append((phase, reply))
                    else:
                        refused.append({"phase": phase, **reply})

            for _ in range(50):  # until the camera thread has a frame to read
                drive(1, "warm-up")
                if acked and acked[-1][1].get("plate") == PLATE:
                    break
                time.sleep(0.2)
            drive(3, "space")
            fill(ballast, MIN_FREE_MB / 3)
            drive(3, "low")
            fill(ballast, 0)
            drive(3, "full")
            time.sleep(2.5)  # heartbeat, outbox and health all meet ENOSPC meanwhile
            alive_when_full = gate.running
            ballast.unlink()
            if not alive_when_full:
                gate.start(ready_timeout=120)
            drive(3, "recovered")
            rows = gate.ledger_rows()
            missing = collector.wait_for({(gate.site, gate.gate): event_ids(rows)}, timeout=60)
            events = [k for k, _d in gate.events()]
            rc = gate.stop()
        finally:
            if gate.running:
                gate.kill()
            collector.stop()
        by_id = {f["event_id"]: f for _s, f in rows}
        verified = gate.verify(images=True)
    log = gate.log_text()

    def shots(phase: str) -> list[int]:
        return [len(by_id[r["event_id"]]["snapshots"]) for p, r in acked if p == phase]

    ids = set(by_id)
    lost = [r for _p, r in acked if r["event_id"] not in ids]
    summary.record(
        "disk_full",
        faults=2,
        passages=len(acked),
        rows=len(rows),
        delivered=len(ids) - sum(len(v) for v in missing.values()),
        lost=len(lost) + sum(len(v) for v in missing.values()),
        seconds=time.monotonic() - t0,
        note=f"{len(refused)} refused while full; daemon {'survived' if alive_when_full else 'died'}",
    )
    print(f"disk full: acked {[(p, r['seq']) for p, r in acked]}, refused {refused}")
    assert not lost, f"acknowledged without a ledger row: {lost}"
    assert [r for r in refused if r["phase"] != "full"] == [], "refused with space left"
    assert len(shots("space")) == len(shots("low")) == len(shots("recovered")) == 3
    assert all(n > 0 for n in shots("space")), "no snapshots even with space: models or camera?"
    assert shots("low") == [0, 0, 0], "images must stop below min_free_mb"
    assert "images_stopped" in events and "images_resumed" in events, events
    assert all(n > 0 for n in shots("recovered")), "images did not resume after space returned"
    assert "event=ledger_disk_full" in log, "no clear error while the disk was full"
    assert "event=heartbeat_not_written" in log
    if any(r["phase"] == "full" for r in refused):  # a refused vehicle calls the guard
        assert "event=passage_not_recorded" in log and "barrier kept shut" in log
    assert alive_when_full, "the daemon died when the disk filled up"
    assert rc == 0, gate.log_tail()
    assert verified.ok, str(verified.problem)
    assert not missing
