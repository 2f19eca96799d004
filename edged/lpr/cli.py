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
    r.add_argument(
        "--known-plates",
        metavar="FILE",
        default=None,
        help="registered plates, one per line: print per plate the one it identifies "
        "(identified, identified_by), see edged.lpr.identify",
    )
    r.add_argument(
        "--rfid-plate",
        action="append",
        default=[],
        metavar="PLATE",
        help="plate of an RFID tag seen with the images (repeatable; with --known-plates)",
    )
    r.set_defaults(func=handle_read)


def load_known_plates(path: str) -> set[str]:
    """Plates of a file, one per line (blank lines and # comments skipped).

    A line that is not a plate stops the command with its line number: a
    registry with a typo would quietly never match.
    """
    from edged.lpr.syntax import check_plate

    plates: set[str] = set()
    with open(path, encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, start=1):
            plate = "".join(ch for ch in line.split("#", 1)[0].upper() if ch not in " \t\r\n·.-")
            if not plate:
                continue
            err = check_plate(plate)
            if err is not None:
                raise ValueError(f"{path}:{n}: {plate!r} is not a plate ({err})")
            plates.add(plate)
    return plates


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
    from edged.lpr.identify import identify_read
    from edged.lpr.pipeline import ModelError, PlateRecognizer

    known: set[str] | None = None
    try:
        if args.known_plates:
            known = load_known_plates(args.known_plates)
        rec = PlateRecognizer(_config(args))
    except (ModelError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rfid = tuple(p.strip().upper() for p in args.rfid_plate)
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
        plates = [r.to_dict() for r in reads]
        if known is not None:
            for r, d in zip(reads, plates, strict=True):
                ident = identify_read(r, known, rfid)
                d.update(ident.to_dict())
        if args.json:
            print(
                json.dumps({"file": path, "ms": round(ms, 1), "plates": plates}, ensure_ascii=False)
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
            if known is not None:
                ident = identify_read(r, known, rfid)
                print(
                    f"    identified={ident.identified or '-'}  by={ident.identified_by}  "
                    f"({ident.reason})"
                )
    return status
