"""``edged lpr read IMAGE...``: what the recogniser sees, for technicians and evaluation."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import cv2


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lpr", help="plate recognition tools")
    lsub = p.add_subparsers(dest="lpr_cmd", required=True)
    r = lsub.add_parser("read", help="read the plates in image files")
    r.add_argument("images", nargs="+", metavar="IMAGE")
    r.add_argument("--json", action="store_true", help="one JSON object per image")
    r.add_argument("--model-dir", default=None, help="folder with the ONNX models")
    r.add_argument("--threads", type=int, default=None, help="intra-op threads per model")
    r.set_defaults(func=handle_read)


def _config(args: argparse.Namespace):
    from edged.lpr.config import LprConfig

    cfg = LprConfig()
    if getattr(args, "config", None):
        from edged.config.load import load_config

        cfg = getattr(load_config(args.config), "lpr", cfg)
    if args.model_dir:
        cfg = replace(cfg, model_dir=args.model_dir)
    if args.threads:
        cfg = replace(cfg, threads=args.threads)
    return cfg


def handle_read(args: argparse.Namespace) -> int:
    from edged.lpr.pipeline import ModelError, PlateRecognizer

    try:
        rec = PlateRecognizer(_config(args))
    except (ModelError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    status = 0
    for path in args.images:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            msg = "not a readable image"
            print(
                json.dumps({"file": path, "error": msg}, ensure_ascii=False)
                if args.json
                else f"{path}: error: {msg}"
            )
            status = 1
            continue
        t0 = time.perf_counter()
        reads = rec.read(image)
        ms = (time.perf_counter() - t0) * 1e3
        if args.json:
            print(
                json.dumps(
                    {"file": path, "ms": round(ms, 1), "plates": [r.to_dict() for r in reads]},
                    ensure_ascii=False,
                )
            )
            continue
        print(f"{path}: {len(reads)} plate(s) in {ms:.1f} ms")
        for r in reads:
            corners = " ".join(f"{x:.0f},{y:.0f}" for x, y in r.corners)
            flag = "" if r.valid_syntax else f"  NOT A VALID PLATE ({r.syntax_error})"
            print(
                f"  {r.text}  conf={r.confidence:.2f}  colour={r.colour}  "
                f"class={r.vehicle_class}  corners={corners}{flag}"
            )
    return status
