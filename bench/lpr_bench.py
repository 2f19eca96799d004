"""Plate recognition benchmark: accuracy on the dev set, latency, overhead, peak RSS.

    python bench/lpr_bench.py [--data DIR] [--model-dir DIR] [--quick]

Accuracy: exact plate (the labelled plate among the image's reads), character
accuracy (best read, same length), colour, detection recall, by kind, by file
prefix and by colour; wrong reads that pass the syntax check with confidence
>= --high-conf are counted separately (the worst error at a gate).
Latency: full pipeline on dev scenes fitted (aspect kept, grey border; --stretch
to squeeze them) into 1280x720 and 1920x1080 frames, one
intra-op thread, p50/p95, against the bare ``session.run`` time of the two
models on the very same inputs (the overhead ratio).
"""

from __future__ import annotations

import argparse
import csv
import resource
import sys
import time
from collections import defaultdict
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


def rss_mb() -> float:
    """Peak RSS of this process. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    exec, so a child started by a big parent would report the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def read_rows(
    rec: PlateRecognizer, data: Path, rows: list[dict], scale: float = 1.0
) -> list[tuple[dict, list]]:
    """Each labelled image read (optionally scaled first): (row, reads)."""
    out = []
    for row in rows:
        img = cv2.imread(str(data / row["file"]), cv2.IMREAD_COLOR)
        if img is None:
            print(f"  unreadable: {row['file']}")
            continue
        if scale != 1.0:
            size = (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale)))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        out.append((row, rec.read(img)))
    return out


def others(row: dict) -> set[str]:
    """The other plates a labelled image shows (EasyPR scenes with several vehicles)."""
    return {p for p in (row.get("other_plates_in_image") or "").split(";") if p}


def wrong_confident(results: list[tuple[dict, list]], high_conf: float) -> list[str]:
    """Reads of a plate that is not there, valid and at ``high_conf`` or more."""
    wrong = []
    for row, reads in results:
        truth = row["plate"]
        if any(r.text == truth for r in reads):
            continue
        for r in reads:
            if r.valid_syntax and r.confidence >= high_conf and r.text not in others(row):
                wrong.append(f"{row['file']}: read {r.text} ({r.confidence:.2f}) truth {truth}")
    return wrong


def accuracy(
    rec: PlateRecognizer, data: Path, limit: int | None, high_conf: float
) -> list[tuple[dict, list]]:
    rows = list(csv.DictReader((data / "labels.csv").open(encoding="utf-8")))
    if limit:
        rows = rows[:: max(1, len(rows) // limit)][:limit]
    results = read_rows(rec, data, rows)
    groups: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row, reads in results:
        truth = row["plate"]
        exact = any(r.text == truth for r in reads)
        best = max(
            reads,
            key=lambda r: sum(a == b for a, b in zip(r.text, truth, strict=False)),
            default=None,
        )
        chars = (
            sum(a == b for a, b in zip(best.text, truth, strict=False))
            if best and len(best.text) == len(truth)
            else 0
        )
        colour = row.get("plate_color_if_known") or ""
        keys = [
            "all",
            f"kind={row['kind']}",
            "prefix=" + row["file"].split("/")[-1].split("_")[0],
            f"colour={colour or 'unknown'}",
        ]
        for k in keys:
            g = groups[k]
            g["n"] += 1
            g["exact"] += exact
            g["chars"] += chars
            g["chars_n"] += len(truth)
            g["detected"] += bool(reads)
            if colour:
                g["colour_n"] += 1
                g["colour_ok"] += bool(best) and best.colour == colour
    wrong_valid = wrong_confident(results, high_conf)
    print("accuracy (exact = labelled plate among the reads)")
    print(f"  {'group':22s} {'n':>4s} {'exact':>7s} {'chars':>7s} {'colour':>7s} {'recall':>7s}")
    for k in sorted(groups, key=lambda s: (s != "all", s)):
        g = groups[k]
        col = f"{g['colour_ok'] / g['colour_n']:.1%}" if g["colour_n"] else "-"
        print(
            f"  {k:22s} {int(g['n']):4d} {g['exact'] / g['n']:7.1%} "
            f"{g['chars'] / g['chars_n']:7.1%} {col:>7s} {g['detected'] / g['n']:7.1%}"
        )
    n = groups["all"]["n"]
    for kind, target in (("scene", ">= 97.5"), ("crop", ">= 99")):
        g = groups.get(f"kind={kind}")
        if g and g["n"]:
            emit(f"exact plate, {kind}s ({int(g['n'])})", g["exact"] / g["n"] * 100, "%", target)
    emit("wrong valid reads, high confidence", len(wrong_valid) / max(n, 1) * 100, "%", "< 0.5")
    print(
        f"wrong reads with valid syntax and confidence >= {high_conf}: {len(wrong_valid)} "
        f"({len(wrong_valid) / max(n, 1):.1%} of {int(n)} images)"
    )
    for line in wrong_valid:
        print(f"  {line}")
    return results


def half_size(
    rec: PlateRecognizer, data: Path, results: list[tuple[dict, list]], high_conf: float
) -> None:
    """The dev scenes halved in size against the same scenes at full size."""
    scenes = [(row, reads) for row, reads in results if row["kind"] == "scene"]
    if not scenes:
        return
    half = read_rows(rec, data, [row for row, _ in scenes], 0.5)
    full_rate = sum(any(r.text == row["plate"] for r in reads) for row, reads in scenes)
    half_rate = sum(any(r.text == row["plate"] for r in reads) for row, reads in half)
    full_pct, half_pct = full_rate / len(scenes) * 100, half_rate / len(half) * 100
    wrong = wrong_confident(half, high_conf)
    print(
        f"scenes at 50 % scale: {half_rate}/{len(half)} exact ({half_pct:.1f} %) against "
        f"{full_rate}/{len(scenes)} ({full_pct:.1f} %) at full size; "
        f"{len(wrong)} wrong read(s) at confidence >= {high_conf}"
    )
    for line in wrong:
        print(f"  {line}")
    emit("exact plate, scenes at 50 % scale", half_pct, "%", None)
    emit("50 %-scale scenes, points under full size", full_pct - half_pct, "points", "<= 8")


#: Characters a reader confuses (the recogniser's own confusions on the dev set and
#: the issue's: 0/D/Q, 8/B, 湘/浙, 赣/鄂, 渝/川): near-miss plates made with them are
#: the hard case for the identification rule.
LOOKALIKES = {
    "0": "DQ",
    "D": "0Q",
    "Q": "0D",
    "8": "B",
    "B": "8",
    "1": "7T",
    "7": "1T",
    "T": "17",
    "2": "Z",
    "Z": "2",
    "5": "S",
    "S": "5",
    "6": "G",
    "G": "6C",
    "C": "G",
    "E": "F",
    "F": "E",
    "M": "N",
    "N": "MH",
    "H": "N",
    "U": "V",
    "V": "U",
    "湘": "浙",
    "浙": "湘",
    "赣": "鄂",
    "鄂": "赣",
    "渝": "川",
    "川": "渝",
}


def registry_for(truths: list[str], size: int, seed: int = 21) -> set[str]:
    """A registry of ``size`` plates: the true plates, for each two near misses one
    character away (one with a look-alike character where the plate has one, one
    at a random position with any character the grammar allows there), and random
    valid plates for the rest."""
    import random

    from edged.lpr.syntax import ALNUM, LETTERS, PROVINCES, TEMPLATES, check_plate

    rng = random.Random(seed)
    forms = {7: TEMPLATES["standard"], 8: TEMPLATES["nev_small"]}
    known = set(truths)
    for plate in sorted(set(truths)):
        sets = forms.get(len(plate))
        if sets is None:
            continue
        look = [i for i, c in enumerate(plate) if c in LOOKALIKES]
        if look:
            i = rng.choice(look)
            known.add(plate[:i] + rng.choice(LOOKALIKES[plate[i]]) + plate[i + 1 :])
        for _ in range(20):
            i = rng.randrange(len(plate))
            c = rng.choice([c for c in sets[i] if c != plate[i]] or [plate[i]])
            miss = plate[:i] + c + plate[i + 1 :]
            if miss != plate and check_plate(miss) is None:
                known.add(miss)
                break
    while len(known) < size:
        known.add(
            rng.choice(PROVINCES)
            + rng.choice(LETTERS)
            + "".join(rng.choice(ALNUM) for _ in range(5))
        )
    return known


def identification(results: list[tuple[dict, list]], size: int = 2000) -> None:
    """The identification rule (edged.lpr.identify) on the dev reads, with a registry of
    ``size`` plates holding near misses of every true plate."""
    from edged.lpr.identify import identify_read

    truths = [row["plate"] for row, _ in results]
    for row, _ in results:
        truths += sorted(others(row))
    known = registry_for(truths, size)
    counts: dict[str, int] = defaultdict(int)
    wrong: list[str] = []
    for row, reads in results:
        got = [identify_read(r, known) for r in reads]
        named = {g.identified for g in got if g.identified}
        hit = row["plate"] in named
        counts["n"] += 1
        counts["identified"] += hit
        counts["exact_read"] += any(r.text == row["plate"] for r in reads)
        for g in got:
            if g.identified and g.identified != row["plate"] and g.identified not in others(row):
                wrong.append(
                    f"{row['file']}: read {g.raw} identified {g.identified} "
                    f"({g.identified_by}), truth {row['plate']}"
                )
            if g.identified == row["plate"]:
                counts[f"by={g.identified_by}"] += 1
        if not hit:
            reasons = "; ".join(f"{g.raw}: {g.reason}" for g in got) or "no plate read"
            counts["refused"] += any(g.raw for g in got)
            print(f"  not identified: {row['file']} ({row['plate']}): {reasons}")
    n = max(counts["n"], 1)
    by = ", ".join(f"{k[3:]} {v}" for k, v in sorted(counts.items()) if k.startswith("by="))
    print(
        f"identification, registry of {len(known)} plates (true ones, near misses, random): "
        f"{counts['identified']}/{counts['n']} identified ({by}), "
        f"{counts['exact_read']} read exactly, {len(wrong)} wrong identities"
    )
    for line in wrong:
        print(f"  WRONG {line}")
    emit(f"identified, registry of {len(known)}", counts["identified"] / n * 100, "%", ">= 99")
    emit("wrong identities", float(len(wrong)), "", "<= 0")


class _Recorder:
    """Wraps a model's ``run`` to keep the inputs one read feeds it, for the bare timing."""

    def __init__(self, model: object) -> None:
        self.model = model
        self.inner = model.run  # type: ignore[attr-defined]
        self.inputs: list[np.ndarray] = []

    def __enter__(self) -> _Recorder:
        def run(blob: np.ndarray) -> object:
            self.inputs.append(blob)
            return self.inner(blob)

        self.model.run = run  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        del self.model.run  # type: ignore[attr-defined]


def fit(frame: np.ndarray, size: tuple[int, int], stretch: bool) -> np.ndarray:
    """The dev photo as a camera frame of ``size``: scaled to fit and centred on grey,
    keeping its aspect (a portrait CCPD photo squeezed into 16:9 would shrink its
    plate to a width no gate camera gives), or stretched with ``--stretch``."""
    if stretch:
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    w, h = size
    scale = min(w / frame.shape[1], h / frame.shape[0])
    nw, nh = round(frame.shape[1] * scale), round(frame.shape[0] * scale)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = np.full((h, w, 3), 96, np.uint8)
    x, y = (w - nw) // 2, (h - nh) // 2
    out[y : y + nh, x : x + nw] = cv2.resize(frame, (nw, nh), interpolation=interp)
    return out


def latency(
    rec: PlateRecognizer,
    frames: list[np.ndarray],
    size: tuple[int, int],
    repeats: int,
    stretch: bool = False,
) -> None:
    full, bare = [], []
    cfg = rec.config
    for frame in frames:
        img = fit(frame, size, stretch)
        rec.read(img)  # warm-up (priors for this size, allocator)
        for _ in range(repeats):
            t0 = time.perf_counter()
            rec.read(img)
            full.append(time.perf_counter() - t0)
        # the very same model calls, bare: every detector pass (frame, zoomed
        # candidates, second pass) and the recogniser batch, inputs prepared
        with _Recorder(rec.detector) as det, _Recorder(rec.recognizer) as txt:
            rec.read(img)
        for _ in range(repeats):
            t0 = time.perf_counter()
            for blob in det.inputs:
                det.inner(blob)
            for batch in txt.inputs:
                txt.inner(batch)
            bare.append(time.perf_counter() - t0)
    f, b = np.array(full) * 1e3, np.array(bare) * 1e3
    ratio = f.mean() / b.mean()
    print(
        f"latency {size[0]}x{size[1]} ({'stretched' if stretch else 'fitted'}), "
        f"{cfg.threads} thread(s), {len(f)} runs: "
        f"full p50 {np.percentile(f, 50):.1f} ms p95 {np.percentile(f, 95):.1f} ms | "
        f"bare session.run p50 {np.percentile(b, 50):.1f} ms p95 {np.percentile(b, 95):.1f} ms"
        f" | ratio full/bare (mean) {ratio:.3f}"
    )
    label = f"{size[0]}x{size[1]}"
    emit(
        f"read p95, {label}, 1 thread",
        float(np.percentile(f, 95)),
        "ms",
        "<= 60" if size[1] == 1080 else None,
    )
    emit(f"full / bare model time, {label}", float(ratio), "x", "<= 1.15")


def opencv_threads(rec: PlateRecognizer, frames: list[np.ndarray]) -> None:
    """The pipeline's image work on OpenCV's default pool (one thread per core) against
    the one thread the recogniser sets, alternately on the same frames: CPU and wall
    time a read."""
    import os

    pool = os.cpu_count() or 1
    kept = cv2.getNumThreads()
    took = {1: [0.0, 0.0], pool: [0.0, 0.0]}
    try:
        for rep in range(2):
            for frame in frames:
                for n in (1, pool) if rep % 2 else (pool, 1):
                    cv2.setNumThreads(n)
                    wall, cpu = time.perf_counter(), time.process_time()
                    rec.read(frame)
                    took[n][0] += time.perf_counter() - wall
                    took[n][1] += time.process_time() - cpu
    finally:
        cv2.setNumThreads(kept)
    reads = 2 * len(frames)
    (w1, c1), (wp, cp) = took[1], took[pool]
    print(
        f"OpenCV threads, 1080p reads: 1 thread {c1 / reads * 1e3:.1f} ms CPU "
        f"{w1 / reads * 1e3:.1f} ms wall; {pool} threads (its default here) "
        f"{cp / reads * 1e3:.1f} ms CPU {wp / reads * 1e3:.1f} ms wall"
    )
    emit("CPU a read, OpenCV default pool / 1 thread", cp / max(c1, 1e-9), "x", None)
    emit("wall a read, OpenCV default pool / 1 thread", wp / max(w1, 1e-9), "x", None)


def decode_time(rec: PlateRecognizer, frames: list[np.ndarray]) -> None:
    """The grammar decoder alone (edged.lpr.recognize), on the very recogniser outputs
    the pipeline decoded for ``frames``: milliseconds a crop."""
    inner = rec.recognizer.decode
    calls: list[tuple] = []

    def record(probs: np.ndarray, forms: object = None, sets: object = None) -> object:
        calls.append((probs.copy(), forms, sets))
        return inner(probs, forms, sets)

    rec.recognizer.decode = record  # type: ignore[method-assign]
    try:
        for frame in frames:
            rec.read(frame)
    finally:
        del rec.recognizer.decode
    if not calls:
        return
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for probs, forms, sets in calls:
            inner(probs, forms, sets)
        best = min(best, (time.perf_counter() - t0) / len(calls))
    print(f"plate grammar decode: {best * 1e3:.2f} ms a crop ({len(calls)} crops, best of 5)")
    emit("grammar decode a crop", best * 1e3, "ms", None)


def recogniser_ratio(rec: PlateRecognizer, frames: list[np.ndarray], model_dir: str) -> None:
    """The derived recogniser against the file as shipped, on the very batches the
    pipeline fed it for ``frames``, the two sessions run alternately."""
    from edged.lpr.models import open_session

    shipped_path = Path(model_dir) / "ch_PP-OCRv4_rec_infer.onnx"
    if not shipped_path.is_file() or rec.config.recognizer_model == shipped_path.name:
        print("recogniser ratio skipped: the shipped model is not installed or is in use")
        return
    with _Recorder(rec.recognizer) as txt:
        for frame in frames:
            rec.read(frame)
    shipped = open_session(shipped_path, rec.config.threads)
    name = shipped.get_inputs()[0].name
    derived_s = shipped_s = 0.0
    for _ in range(3):
        for batch in txt.inputs:
            t0 = time.perf_counter()
            txt.inner(batch)
            t1 = time.perf_counter()
            shipped.run(None, {name: batch})
            derived_s += t1 - t0
            shipped_s += time.perf_counter() - t1
    ratio = derived_s / shipped_s
    print(
        f"recogniser {rec.config.recognizer_model} / {shipped_path.name}: {ratio:.2f} "
        f"({len(txt.inputs)} batches x 3, {derived_s * 1e3:.0f} vs {shipped_s * 1e3:.0f} ms)"
    )
    emit("derived / shipped recogniser time", ratio, "x", None)


#: A child process: RSS growth (MB) for loading a model and running it on one input.
_LOAD_RSS = """
import sys, numpy as np, onnxruntime as ort
def rss():
    return int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) / 1024
warm = ort.InferenceSession(sys.argv[2], providers=['CPUExecutionProvider'])  # runtime itself
before = rss()
opts = ort.SessionOptions(); opts.intra_op_num_threads = 1; opts.enable_cpu_mem_arena = False
s = ort.InferenceSession(sys.argv[1], opts, providers=['CPUExecutionProvider'])
s.run(None, {s.get_inputs()[0].name: np.zeros((1, 3, 192, 256), np.float32)})
print(rss() - before)
"""


def text_line_ratio(frames: list[np.ndarray], model_dir: str) -> None:
    """The derived text-line detector against the file as shipped: time on 256x192
    tiles cut from ``frames`` (the fallback's largest input), the two sessions run
    alternately, and resident memory after loading and one run, each in a child."""
    import subprocess

    from edged.lpr.models import open_session

    folder = Path(model_dir)
    shipped, derived = folder / "ch_PP-OCRv4_det_infer.onnx", folder / "ch_PP-OCRv4_det_lines.onnx"
    if not shipped.is_file() or not derived.is_file():
        print("text-line ratio skipped: a text-line model is not installed")
        return
    tiles = [
        (f[:192, :256].astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None].copy()
        for f in frames
        if f.shape[0] >= 192 and f.shape[1] >= 256
    ]
    sessions = [open_session(p, 1) for p in (shipped, derived)]
    spent = [0.0, 0.0]
    for _ in range(3):
        for tile in tiles:
            for i, sess in enumerate(sessions):
                t0 = time.perf_counter()
                sess.run(None, {sess.get_inputs()[0].name: tile})
                spent[i] += time.perf_counter() - t0
    mb = [
        float(
            subprocess.run(
                [sys.executable, "-c", _LOAD_RSS, str(p), str(folder / "clp_det.onnx")],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for p in (shipped, derived)
    ]
    ratio = spent[1] / max(spent[0], 1e-9)
    print(
        f"text-line detector {derived.name} / {shipped.name}: time {ratio:.2f} "
        f"({len(tiles)} tiles x 3), resident after load and a run {mb[1]:.1f} vs {mb[0]:.1f} MB"
    )
    emit("derived / shipped text-line detector time", ratio, "x", None)
    emit("derived - shipped text-line detector memory", mb[1] - mb[0], "MB", None)


#: (role, config key, float model, its INT8 variant made at set-up by models/quantize.py)
INT8_VARIANTS = (
    ("detector", "detector_model", "clp_det.onnx", "clp_det_int8.onnx"),
    (
        "recogniser",
        "recognizer_model",
        "ch_PP-OCRv4_rec_plate.onnx",
        "ch_PP-OCRv4_rec_plate_int8.onnx",
    ),
)


def int8_variants(
    rec: PlateRecognizer,
    data: Path,
    results: list[tuple[dict, list]],
    frames: list[np.ndarray],
    high_conf: float,
) -> None:
    """Each model's INT8 variant against its float model in this run, whichever of the
    two the configuration reads: the dev-set exact rate and wrong reads at confidence
    >= ``high_conf`` with only that model swapped, and the time of the two sessions on
    the very inputs the pipeline fed the float one for ``frames`` (run alternately).
    Worth adopting only where the exact rate drops by at most 0.5 points, no wrong
    read becomes confident (the gate would open on it) and the variant is faster
    (here: under 0.95 x)."""
    from dataclasses import replace

    from edged.lpr.models import open_session

    rows = [row for row, _ in results]
    for role, key, float_name, int8_name in INT8_VARIANTS:
        folder = Path(rec.config.model_dir)
        in_use = getattr(rec.config, key)
        if not (folder / int8_name).is_file() or not (folder / float_name).is_file():
            print(f"INT8 {role}: skipped ({int8_name} or {float_name} not installed)")
            continue
        pipelines = {
            name: rec if in_use == name else PlateRecognizer(replace(rec.config, **{key: name}))
            for name in (float_name, int8_name)
        }
        exact, confident_wrong = {}, {}
        for name, pipeline in pipelines.items():
            reads = results if pipeline is rec else read_rows(pipeline, data, rows)
            exact[name] = sum(any(r.text == row["plate"] for r in got) for row, got in reads)
            confident_wrong[name] = wrong_confident(reads, high_conf)
        # the same wrong read at another confidence is not a new one
        known_wrong = {line.split(" (")[0] for line in confident_wrong[float_name]}
        new_wrong = [w for w in confident_wrong[int8_name] if w.split(" (")[0] not in known_wrong]
        drop = (exact[float_name] - exact[int8_name]) / max(len(rows), 1) * 100
        flt = pipelines[float_name]
        model = flt.detector if role == "detector" else flt.recognizer
        with _Recorder(model) as calls:
            for frame in frames:
                flt.read(frame)
        int8 = open_session(folder / int8_name, rec.config.threads)
        name = int8.get_inputs()[0].name
        float_s = int8_s = 0.0
        for _ in range(3):
            for blob in calls.inputs:
                t0 = time.perf_counter()
                calls.inner(blob)
                t1 = time.perf_counter()
                int8.run(None, {name: blob})
                float_s += t1 - t0
                int8_s += time.perf_counter() - t1
        ratio = int8_s / max(float_s, 1e-9)
        if drop > 0.5:
            verdict = "keep the float model (too many reads lost)"
        elif new_wrong:
            verdict = "keep the float model (wrong reads it is sure of)"
        elif ratio >= 0.95:
            verdict = "keep the float model (no faster here)"
        else:
            verdict = "adopt"
        print(
            f"INT8 {role} ({int8_name}): exact {exact[int8_name]}/{len(rows)} against "
            f"{exact[float_name]}/{len(rows)} float ({0.0 - drop:+.1f} points), time {ratio:.2f} x "
            f"float ({len(calls.inputs)} inputs x 3), confident wrong reads "
            f"{len(confident_wrong[int8_name])} against {len(confident_wrong[float_name])}: "
            f"{verdict}; in use: {in_use}"
        )
        for line in new_wrong:
            print(f"  only with INT8: {line}")
        emit(f"INT8 {role}: exact-rate drop", drop, "points", "<= 0.5")
        emit(f"INT8 {role}: time / float", ratio, "x", None)
        emit(f"INT8 {role}: new confident wrong reads", float(len(new_wrong)), "", "<= 0")


def rss_probe(model_dir: str, threads: int, images: list[Path]) -> int:
    """Peak RSS of the pipeline alone (no dev set in memory): run in a child process.

    Reads a dev scene (or a plain frame) five times, a frame whose plate is too
    small for the frame pass (the second pass's windows and zoomed look), and an
    empty frame. The frames are made by the parent: rendering one here would
    set the peak itself."""
    from edged.app.memory import bound_heap

    bound_heap()  # as the daemon does at start
    rec = PlateRecognizer(LprConfig(model_dir=model_dir, threads=threads))
    loaded = rss_mb()
    frames = [cv2.imread(str(p)) for p in images]
    frame = frames[0] if frames and frames[0] is not None else None
    if frame is None:
        frame = np.full((1080, 1920, 3), 90, np.uint8)
    frame = cv2.resize(frame, (1920, 1080))
    for _ in range(5):
        rec.read(frame)
    for small in frames[1:]:
        rec.read(small)
    rec.read(np.full((1080, 1920, 3), 100, np.uint8))  # nothing at all
    print(f"{loaded:.0f} {rss_mb():.0f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "plates-dev")
    ap.add_argument("--model-dir", default=str(REPO / "models" / "onnx"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--high-conf", type=float, default=0.8)
    ap.add_argument(
        "--stretch",
        action="store_true",
        help="latency frames: stretch dev photos to 16:9 instead of fitting them",
    )
    ap.add_argument("--quick", action="store_true", help="small subset, smoke test (< 20 s)")
    ap.add_argument("--rss-probe", type=Path, nargs="*", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_probe is not None:
        return rss_probe(args.model_dir, args.threads, args.rss_probe)
    import subprocess
    import tempfile

    from edged.lpr.synth import render_scene

    first = sorted((args.data / "scene").glob("*.jpg"))[:1] or [Path("-")]
    with tempfile.TemporaryDirectory(prefix="lpr-bench-") as tmp:
        small = Path(tmp) / "small-plate.png"
        cv2.imwrite(
            str(small),
            render_scene("苏E88866", "blue", size=(1920, 1080), seed=5, plate_width=120),
        )
        probe = subprocess.run(
            [
                sys.executable,
                __file__,
                "--model-dir",
                args.model_dir,
                "--threads",
                str(args.threads),
                "--rss-probe",
                str(first[0]),
                str(small),
            ],
            capture_output=True,
            text=True,
        )
    try:
        loaded, peak = probe.stdout.split()[-2:]
        print(
            f"peak RSS (pipeline alone, child process): {loaded} MB with both models loaded, "
            f"{peak} MB after 1080p reads incl. a second detector pass"
        )
        emit("peak RSS, models loaded and reading", float(peak), "MB", "<= 200")
    except ValueError:
        print(f"RSS probe failed: {probe.stderr.strip()[-300:]}")
    rec = PlateRecognizer(LprConfig(model_dir=args.model_dir, threads=args.threads))
    results: list[tuple[dict, list]] = []
    if not (args.data / "labels.csv").is_file():
        print(f"dev set not found at {args.data}: accuracy skipped; latency on synthetic scenes")
        from edged.lpr.synth import render_scene

        scenes = [render_scene("京A12345", "blue", seed=i) for i in range(3)]
    else:
        results = accuracy(rec, args.data, 30 if args.quick else None, args.high_conf)
        identification(results)
        half_size(rec, args.data, results, args.high_conf)
        rows = [
            r
            for r in csv.DictReader((args.data / "labels.csv").open(encoding="utf-8"))
            if r["kind"] == "scene"
        ]
        rows = rows[:: max(1, len(rows) // (4 if args.quick else 40))]
        scenes = [
            im for im in (cv2.imread(str(args.data / r["file"])) for r in rows) if im is not None
        ]
    reps = 1 if args.quick else 3
    for size in ((1280, 720), (1920, 1080)):
        latency(rec, scenes, size, reps, args.stretch)
    fitted = [fit(f, (1920, 1080), args.stretch) for f in scenes]
    opencv_threads(rec, fitted)
    decode_time(rec, fitted)
    recogniser_ratio(rec, fitted, args.model_dir)
    text_line_ratio(fitted, args.model_dir)
    if results:
        int8_variants(rec, args.data, results, fitted, args.high_conf)
    print(f"peak RSS of this benchmark process (dev set in memory): {rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
