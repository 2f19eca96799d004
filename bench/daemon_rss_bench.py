"""Resident memory of the whole daemon reading plates from a 1080p camera.

    python bench/daemon_rss_bench.py [--passages N] [--quick]

Runs ``edged run`` (folder camera of dev scenes fitted into 1920x1080 frames,
every third one with no plate but a lettered yellow lorry front, so that the
text-line fallback runs; no MQTT, mock GPIO) and drives passages through ``edged simulate passage``
three times: as the daemon runs, without its malloc tuning (edged.app.memory),
and without the models' shared arena (edged.lpr.models.shared_arena); then
once more as the daemon runs with the same frames served as a 1080p IP
camera's snapshot URL (``type = "snapshot"``), and prints peak and final
RSS of each: the budget is 200 MB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lpr_bench import fit
from bench.report import emit

REPO = Path(__file__).resolve().parent.parent


def frames(folder: Path, data: Path, n: int) -> None:
    folder.mkdir(parents=True)
    files = sorted((data / "scene").glob("*.jpg"))
    if not files:  # no dev set: rendered scenes
        from edged.lpr.synth import render_scene

        imgs = [render_scene("京A12345", "blue", size=(1920, 1080), seed=i) for i in range(n)]
    else:
        imgs = [
            fit(cv2.imread(str(f)), (1920, 1080), False) for f in files[:: max(1, len(files) // n)]
        ]
    for i, img in enumerate(imgs):
        if i % 3 == 2:
            img = no_plate(img, i)
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), img)


def no_plate(frame: np.ndarray, seed: int) -> np.ndarray:
    """A frame with no plate but a yellow lorry front with lettering on it: the plate
    detector finds nothing, so the text-line fallback runs on the yellow region."""
    rng = np.random.default_rng(seed)
    out = cv2.GaussianBlur(frame, (0, 0), 25)
    h, w = out.shape[:2]
    x0, y0 = w // 3, h // 4
    out[y0 : h * 3 // 4, x0 : w * 2 // 3] = (20, 190, 240)
    for i, word in enumerate(("GANG TIE 88", "YUN SHU 2024")):
        org = (x0 + 60, y0 + 150 + 110 * i)
        cv2.putText(out, word, org, cv2.FONT_HERSHEY_SIMPLEX, 2.2 - 0.8 * i, (20, 20, 20), 5)
    noise = rng.normal(0, 6, out.shape)
    return np.clip(out + noise, 0, 255).astype(np.uint8)


def run(
    tmp: Path, passages: int, name: str, camera: str | None = None, **off: str
) -> tuple[float, float]:
    """Peak and final RSS (MB) of a daemon run; ``camera`` its [camera] section (the
    folder by default), ``off`` environment to set."""
    data_dir = tmp / name
    cfg = tmp / f"edged-{data_dir.name}.toml"
    camera = camera or f'[camera]\ntype = "folder"\nfolder = "{tmp / "frames"}"\nfps = 5\n'
    cfg.write_text(
        f'[site]\nid = "bench"\ngate_id = "g1"\n[daemon]\ndata_dir = "{data_dir}"\n'
        "allow_simulation = true\n"
        f"{camera}"
        f'[lpr]\nmodel_dir = "{REPO / "models" / "onnx"}"\n'
        "[mqtt]\nenabled = false\n"
    )
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", **off}
    edged = [sys.executable, "-m", "edged", "--config", str(cfg)]
    proc = subprocess.Popen(
        [*edged, "run"], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        sock = data_dir / "state" / "control.sock"
        deadline = time.monotonic() + 120
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        for _ in range(passages):
            subprocess.run(
                [*edged, "simulate", "passage"], env=env, cwd=REPO, capture_output=True, timeout=60
            )
        status = Path(f"/proc/{proc.pid}/status").read_text()
        field = {
            k: float(v.split()[0]) / 1024
            for k, v in (
                line.split(":", 1) for line in status.splitlines() if line.startswith("Vm")
            )
        }
        return field["VmHWM"], field["VmRSS"]
    finally:
        proc.terminate()
        proc.wait(30)


def snapshot_run(tmp: Path, passages: int) -> tuple[float, float]:
    """The daemon reading an IP camera's snapshot URL (type = "snapshot"): a loopback
    camera with Digest authentication, in this process, showing the bench's frames
    in turn, a new one every 200 ms."""
    from drivers.simulators import SnapshotCameraSimulator

    pictures = [cv2.imread(str(f)) for f in sorted((tmp / "frames").glob("*.jpg"))]
    sim = SnapshotCameraSimulator(size=(1920, 1080)).start()
    sim.play(pictures, 0.2)
    camera = (
        f'[camera]\ntype = "snapshot"\nurl = "{sim.url}"\nusername = "admin"\n'
        'password = "cam-pass"\n'
    )
    try:
        return run(tmp, passages, "snapshot", camera)
    finally:
        sim.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "plates-dev")
    ap.add_argument("--passages", type=int, default=40)
    ap.add_argument("--quick", action="store_true", help="10 passages")
    args = ap.parse_args(argv)
    n = 10 if args.quick else args.passages
    with tempfile.TemporaryDirectory(prefix="edged-rss-") as t:
        tmp = Path(t)
        frames(tmp / "frames", args.data, 30)
        plain = run(tmp, n, "plain", EDGED_MALLOC_TUNING="off")
        own = run(tmp, n, "own-arenas", EDGED_SHARED_ARENA="off")
        tuned = run(tmp, n, "daemon")
        snap = snapshot_run(tmp, n)
    print(f"daemon RSS after {n} passages, 1080p folder camera:")
    print(f"  malloc tuning off          peak {plain[0]:.0f} MB, now {plain[1]:.0f} MB")
    print(f"  one arena per model        peak {own[0]:.0f} MB, now {own[1]:.0f} MB")
    print(
        f"  as the daemon runs         peak {tuned[0]:.0f} MB, now {tuned[1]:.0f} MB "
        f"(peak ratio {tuned[0] / plain[0]:.2f} to malloc tuning off, "
        f"{tuned[0] / own[0]:.2f} to one arena per model)"
    )
    print(
        f"  snapshot camera (1080p JPEGs asked on request) peak {snap[0]:.0f} MB,"
        f" now {snap[1]:.0f} MB"
    )
    emit("daemon RSS peak, 1080p camera", tuned[0], "MB", "<= 200")
    emit("daemon RSS peak, 1080p snapshot camera", snap[0], "MB", "<= 200")
    emit("daemon RSS steady, 1080p camera", tuned[1], "MB", "<= 200")
    return 0


if __name__ == "__main__":
    sys.exit(main())
