"""Plate reads on the dev set under damage: JPEG, scale, blur, darkness, rotation.

    python bench/lpr_robust_bench.py [--data DIR] [--model-dir DIR] [--quick]

Each perturbation is applied to every dev image (scenes and crops) and the
pipeline reads the result; printed per perturbation beside the clean
figure, scenes and crops apart: exact reads (the labelled plate among the
reads) and confident wrong reads (a valid plate that is not there, read at
confidence >= --high-conf), the error a gate must not make whatever the
picture. The perturbations are those a gate camera gives: heavy JPEG
compression (quality 30), a plate half as far away (50 % scale), focus or
motion blur (Gaussian, sigma 1.5), dusk (brightness x 0.4) and a camera or
plate tilted by 8 degrees either way.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit
from edged.logs import configure

configure(level="warning")  # before the lpr modules bind their loggers

from edged.lpr.config import LprConfig  # noqa: E402
from edged.lpr.pipeline import PlateRecognizer  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
Perturb = Callable[[np.ndarray], np.ndarray]


def jpeg(quality: int) -> Perturb:
    def apply(img: np.ndarray) -> np.ndarray:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)

    return apply


def scale(factor: float) -> Perturb:
    def apply(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        return cv2.resize(img, size, interpolation=cv2.INTER_AREA)

    return apply


def blur(sigma: float) -> Perturb:
    def apply(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, (0, 0), sigma)

    return apply


def brightness(factor: float) -> Perturb:
    def apply(img: np.ndarray) -> np.ndarray:
        return cv2.convertScaleAbs(img, alpha=factor, beta=0)

    return apply


def rotate(degrees: float) -> Perturb:
    """Rotated about the centre on a canvas grown to hold it all (edges repeated):
    nothing of the plate is cut off, as a tilted camera would not cut it."""

    def apply(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
        cos, sin = abs(m[0, 0]), abs(m[0, 1])
        nw, nh = round(h * sin + w * cos), round(h * cos + w * sin)
        m[0, 2] += nw / 2 - w / 2
        m[1, 2] += nh / 2 - h / 2
        return cv2.warpAffine(img, m, (nw, nh), borderMode=cv2.BORDER_REPLICATE)

    return apply


PERTURBATIONS: list[tuple[str, Perturb | None]] = [
    ("clean", None),
    ("jpeg q30", jpeg(30)),
    ("scale 50 %", scale(0.5)),
    ("blur sigma 1.5", blur(1.5)),
    ("brightness x0.4", brightness(0.4)),
    ("rotate +8 deg", rotate(8.0)),
    ("rotate -8 deg", rotate(-8.0)),
]


def run(
    rec: PlateRecognizer,
    data: Path,
    rows: list[dict],
    images: list[np.ndarray],
    perturb: Perturb | None,
    high_conf: float,
) -> dict[str, list[int]]:
    """Per kind: [images, exact, confident wrong]; prints each confident wrong read."""
    out: dict[str, list[int]] = {}
    for row, img in zip(rows, images, strict=True):
        reads = rec.read(perturb(img) if perturb else img)
        others = set((row.get("other_plates_in_image") or "").split(";"))
        exact = any(r.text == row["plate"] for r in reads)
        wrong = [
            r
            for r in reads
            if not exact
            and r.valid_syntax
            and r.confidence >= high_conf
            and r.text != row["plate"]
            and r.text not in others
        ]
        for r in wrong:
            print(
                f"    wrong: {row['file']} read {r.text} ({r.confidence:.2f}), truth {row['plate']}"
            )
        counts = out.setdefault(row["kind"], [0, 0, 0])
        counts[0] += 1
        counts[1] += exact
        counts[2] += bool(wrong)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "plates-dev")
    ap.add_argument("--model-dir", default=str(REPO / "models" / "onnx"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--high-conf", type=float, default=0.8)
    ap.add_argument("--quick", action="store_true", help="every 6th image (< 1 minute)")
    args = ap.parse_args(argv)
    labels = args.data / "labels.csv"
    if not labels.is_file():
        print(f"dev set not found at {args.data}: nothing to measure")
        return 0
    rows = list(csv.DictReader(labels.open(encoding="utf-8")))
    if args.quick:
        rows = rows[::6]
    loaded = [(row, cv2.imread(str(args.data / row["file"]), cv2.IMREAD_COLOR)) for row in rows]
    rows = [row for row, img in loaded if img is not None]
    images = [img for _, img in loaded if img is not None]
    rec = PlateRecognizer(LprConfig(model_dir=args.model_dir, threads=args.threads))
    table: list[tuple[str, dict[str, list[int]]]] = []
    for name, perturb in PERTURBATIONS:
        print(f"  {name} ...", flush=True)
        table.append((name, run(rec, args.data, rows, images, perturb, args.high_conf)))
    clean = table[0][1]
    print(
        f"\nrobustness on {len(rows)} dev images (exact reads; confident wrong reads at "
        f">= {args.high_conf}), beside the clean figure"
    )
    print(
        f"  {'perturbation':18s} {'kind':6s} {'n':>4s} {'exact':>7s} {'vs clean':>9s} {'wrong':>6s}"
    )
    for name, counts in table:
        for kind in sorted(counts):
            n, exact, wrong = counts[kind]
            base = clean[kind][1] / clean[kind][0] * 100
            pct = exact / n * 100
            print(f"  {name:18s} {kind:6s} {n:4d} {pct:6.1f}% {pct - base:+8.1f}  {wrong:5d}")
            if name != "clean":
                emit(f"exact {kind}s, {name}", pct, "%", None)
        n_all = sum(c[0] for c in counts.values())
        wrong_all = sum(c[2] for c in counts.values())
        emit(f"confident wrong reads, {name}", wrong_all / max(n_all, 1) * 100, "%", "< 0.5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
