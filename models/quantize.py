"""INT8 variants of the plate models: calibrated once on the dev set, made at set-up.

A board's CPU may run 8-bit convolutions faster than float ones (a Pi 5's
Cortex-A76 has dot-product instructions; x86 without VNNI gains little), so
each model gets an INT8 variant made with ONNX Runtime's static quantisation
(QOperator format, per-channel int8 weights, uint8 activations). Only the
wide dense convolutions are 8-bit: those with at least ``MIN_CHANNELS``
input channels and no channel groups. That is where the time goes (the
recogniser's 1x1 convolutions over 240 and 480 channels), and where the
rounding averages out over a long sum. Depthwise convolutions (9 or 25
products per output) and the narrow first layers lost 13 points of the
recogniser's exact rate when they were 8-bit too, and ran no faster: ONNX
Runtime's 8-bit depthwise kernels are slow. Attention and element-wise ops
stay float.
``bench/lpr_bench.py`` measures each variant's accuracy and speed against
its float model in the same run; ``[lpr] detector_model`` /
``recognizer_model`` select one (see docs/LPR.md for which are adopted).

Two steps, so that every box gets the same bytes without the dev set:

1. ``python models/quantize.py calibrate --data DIR`` (maintainers, with the
   dev set): the float pipeline reads every dev image, the exact inputs it
   gives each model are recorded, and ONNX Runtime's MinMax calibration
   finds each activation's range. The ranges go to
   ``models/calibration/NAME.json`` (plain JSON: tensor -> [lowest, highest],
   float32 values), which is committed.
2. ``models/fetch.py`` (set-up, every box) makes each ``[[derived]]`` file
   with ``recipe = "int8-static-conv"`` from its float source and those
   ranges, and checks its SHA-256 against the manifest. The bytes depend only
   on the source, the ranges, and the onnxruntime and onnx versions (the
   manifest records both; constraints.txt pins them).

Needs onnxruntime (the daemon's) and onnx (a set-up dependency)::

    python models/quantize.py make SOURCE.onnx RANGES.json OUTPUT.onnx
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

RECIPE = "int8-static-conv"
RECIPE_VERSION = 2
#: A dense convolution is made 8-bit from this many input channels.
MIN_CHANNELS = 128
HERE = Path(__file__).resolve().parent
CALIBRATION = HERE / "calibration"


def versions() -> str:
    import onnx
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__}, onnx {onnx.__version__}"


def load_ranges(path: Path) -> dict[str, tuple[float, float]]:
    """Activation ranges written by :func:`calibrate`: tensor name -> (lowest, highest)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("recipe") != RECIPE or not isinstance(data.get("ranges"), dict):
        raise ValueError(f"{path}: not a calibration file of {RECIPE}")
    return {k: (float(v[0]), float(v[1])) for k, v in data["ranges"].items()}


def wide_convolutions(model: object) -> list[str]:
    """Names of the dense convolutions with at least :data:`MIN_CHANNELS` input
    channels: the nodes the recipe makes 8-bit (``model`` an ``onnx.ModelProto``)."""
    weights = {t.name: t for t in model.graph.initializer}  # type: ignore[attr-defined]
    names = []
    for node in model.graph.node:  # type: ignore[attr-defined]
        if node.op_type != "Conv":
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        weight = weights.get(node.input[1])
        if group != 1 or weight is None or weight.dims[1] < MIN_CHANNELS:
            continue
        if not node.name:
            raise ValueError("a convolution without a node name cannot be chosen for INT8")
        names.append(node.name)
    return names


def quantize_bytes(source: bytes, ranges: dict[str, tuple[float, float]]) -> bytes:
    """The INT8 variant of the float model ``source``, with the given activation ranges."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        TensorData,
        TensorsData,
        quantize_static,
        save_tensors_data,
    )

    tensors = TensorsData(
        CalibrationMethod.MinMax,
        {
            name: TensorData(lowest=np.array([lo], np.float32), highest=np.array([hi], np.float32))
            for name, (lo, hi) in sorted(ranges.items())
        },
    )
    with tempfile.TemporaryDirectory(prefix="edged-int8-") as tmp:
        folder = Path(tmp)
        (folder / "source.onnx").write_bytes(source)
        save_tensors_data(tensors, folder / "ranges.json")
        quantize_static(
            folder / "source.onnx",
            folder / "int8.onnx",
            None,
            quant_format=QuantFormat.QOperator,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv"],
            nodes_to_quantize=wide_convolutions(onnx.load_from_string(source)),
            calibration_cache_path=folder / "ranges.json",
        )
        return (folder / "int8.onnx").read_bytes()


def calibrate(model_dir: Path, data: Path, out: Path = CALIBRATION) -> list[str]:
    """Record the inputs the float pipeline gives each model on every dev image and
    write each model's activation ranges (MinMax) to ``out/NAME.json``."""
    import csv

    import cv2
    from onnxruntime.quantization import CalibrationDataReader, create_calibrator

    sys.path.insert(0, str(HERE.parent))
    from edged.lpr.config import LprConfig
    from edged.lpr.pipeline import PlateRecognizer

    # the float models, whatever the defaults are: their activations are what is measured
    cfg = LprConfig(
        model_dir=str(model_dir),
        detector_model="clp_det.onnx",
        recognizer_model="ch_PP-OCRv4_rec_plate.onnx",
        text_line_fallback="off",
    )
    rec = PlateRecognizer(cfg)
    recorded: dict[str, list[np.ndarray]] = {cfg.detector_model: [], cfg.recognizer_model: []}
    for name, model in ((cfg.detector_model, rec.detector), (cfg.recognizer_model, rec.recognizer)):
        inner = model.run

        def run(blob: np.ndarray, inner=inner, name=name) -> object:
            recorded[name].append(blob)
            return inner(blob)

        model.run = run  # type: ignore[method-assign]
    for row in csv.DictReader((data / "labels.csv").open(encoding="utf-8")):
        image = cv2.imread(str(data / row["file"]), cv2.IMREAD_COLOR)
        if image is not None:
            rec.read(image)
    out.mkdir(parents=True, exist_ok=True)
    report = []
    for name, inputs in recorded.items():

        class Reader(CalibrationDataReader):
            def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
                self.feeds = iter(feeds)

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self.feeds, None)

        with tempfile.TemporaryDirectory(prefix="edged-calib-") as tmp:
            calibrator = create_calibrator(
                model_dir / name, ["Conv"], augmented_model_path=str(Path(tmp) / "aug.onnx")
            )
            feed_name = calibrator.infer_session.get_inputs()[0].name
            calibrator.collect_data(Reader([{feed_name: x} for x in inputs]))
            tensors = calibrator.compute_data()
        ranges = {
            k: [
                float(np.asarray(v.range_value[0], np.float32).reshape(-1)[0]),
                float(np.asarray(v.range_value[1], np.float32).reshape(-1)[0]),
            ]
            for k, v in sorted(tensors.data.items())
        }
        path = out / f"{name.removesuffix('.onnx')}.json"
        path.write_text(
            json.dumps(
                {
                    "recipe": RECIPE,
                    "model": name,
                    "calibrated_on": f"{len(inputs)} inputs the pipeline gave it on the dev set",
                    "ranges": ranges,
                },
                indent=1,
                sort_keys=True,
            )
            + "\n",
            encoding="utf-8",
        )
        report.append(f"{path}: {len(ranges)} ranges from {len(inputs)} inputs")
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("calibrate", help="ranges from the dev set into models/calibration/")
    c.add_argument("--data", type=Path, required=True, help="the plates-dev folder")
    c.add_argument("--model-dir", type=Path, default=HERE / "onnx")
    c.add_argument("--out", type=Path, default=CALIBRATION)
    m = sub.add_parser("make", help="make one INT8 variant")
    m.add_argument("source", type=Path)
    m.add_argument("ranges", type=Path)
    m.add_argument("output", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "calibrate":
        for line in calibrate(args.model_dir, args.data, args.out):
            print(line)
        return 0
    args.output.write_bytes(quantize_bytes(args.source.read_bytes(), load_ranges(args.ranges)))
    print(f"{args.output} ({versions()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
