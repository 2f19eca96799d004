"""Plate detector: RetinaFace-style boxes with 4 corner points (clp_det.onnx).

Pre- and post-processing are vectorised numpy and the priors are cached per
input size, so the time per frame is the model's own plus little else.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

MIN_SIZES = ((24, 48), (96, 192), (384, 768))
STEPS = (8, 16, 32)
VARIANCE = (0.1, 0.2)
MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


@dataclass(frozen=True)
class Detection:
    """One plate in frame coordinates; corners top-left, top-right, bottom-right, bottom-left."""

    score: float
    box: tuple[float, float, float, float]
    corners: np.ndarray  # (4, 2) float32


@lru_cache(maxsize=16)
def priors_for(height: int, width: int) -> np.ndarray:
    """(N, 4) priors (cx, cy, w, h) in relative units, in the model's output order."""
    out = []
    for step, sizes in zip(STEPS, MIN_SIZES, strict=True):
        fh, fw = -(-height // step), -(-width // step)
        cy, cx = np.meshgrid(
            (np.arange(fh) + 0.5) * step / height,
            (np.arange(fw) + 0.5) * step / width,
            indexing="ij",
        )
        per_size = [
            np.stack([cx, cy, np.full_like(cx, s / width), np.full_like(cy, s / height)], axis=-1)
            for s in sizes
        ]
        out.append(np.stack(per_size, axis=2).reshape(-1, 4))
    pri = np.concatenate(out).astype(np.float32)
    pri.setflags(write=False)
    return pri


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first."""
    order = np.argsort(-scores)
    x1, y1, x2, y2 = boxes.T
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        overlap = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.array(keep, dtype=np.int64)


def decode(
    loc: np.ndarray, landms: np.ndarray, pri: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Box (x1,y1,x2,y2) and corners (4,2, TL TR BR BL) in input pixels."""
    v0, v1 = VARIANCE
    centre = pri[:, :2] + loc[:, :2] * v0 * pri[:, 2:]
    size = pri[:, 2:] * np.exp(loc[:, 2:] * v1)
    scale = np.array([width, height], dtype=np.float32)
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1) * np.tile(scale, 2)
    pts = pri[:, None, :2] + landms.reshape(-1, 4, 2) * v0 * pri[:, None, 2:]
    pts = pts * scale
    # model order: bottom-right, bottom-left, top-left, top-right -> TL, TR, BR, BL
    corners = pts[:, [2, 3, 0, 1], :]
    return boxes, corners


class PlateDetector:
    """Runs clp_det.onnx on a BGR image scaled so its longest side is ``max_side``."""

    def __init__(self, model_path: str | Path, threads: int = 1) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.enable_cpu_mem_arena = False  # input sizes vary; the arena only grows
        self.session = ort.InferenceSession(
            str(model_path), opts, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def prepare(self, image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
        h, w = image.shape[:2]
        scale = min(1.0, max_side / max(h, w))
        if scale < 1.0:
            image = cv2.resize(
                image,
                (max(1, round(w * scale)), max(1, round(h * scale))),
                interpolation=cv2.INTER_LINEAR,
            )
        # one C++ pass: float conversion, mean subtraction, HWC -> NCHW
        blob = cv2.dnn.blobFromImage(image, 1.0, None, (104.0, 117.0, 123.0), False, False)
        return blob, scale

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: blob})

    def detect(
        self, image: np.ndarray, max_side: int, score: float, nms_iou: float = 0.4
    ) -> list[Detection]:
        blob, scale = self.prepare(image, max_side)
        loc, conf, landms = self.run(blob)
        return self.postprocess(
            loc, conf, landms, blob.shape[2], blob.shape[3], scale, score, nms_iou
        )

    @staticmethod
    def postprocess(
        loc: np.ndarray,
        conf: np.ndarray,
        landms: np.ndarray,
        height: int,
        width: int,
        scale: float,
        score: float,
        nms_iou: float,
    ) -> list[Detection]:
        scores = conf[0, :, 1]
        idx = np.nonzero(scores > score)[0]
        if idx.size == 0:
            return []
        pri = priors_for(height, width)[idx]
        boxes, corners = decode(loc[0, idx], landms[0, idx], pri, width, height)
        keep = nms(boxes, scores[idx], nms_iou)
        inv = 1.0 / scale
        return [
            Detection(
                float(scores[idx][k]),
                tuple((boxes[k] * inv).tolist()),
                (corners[k] * inv).astype(np.float32),
            )
            for k in keep
        ]
