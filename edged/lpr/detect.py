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

from edged.lpr.models import open_session

MIN_SIZES = ((24, 48), (96, 192), (384, 768))
STEPS = (8, 16, 32)
VARIANCE = (0.1, 0.2)
MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)
#: Overlap of detector tiles, in scaled pixels: wider than a plate that needs the tiles.
TILE_OVERLAP = 96
#: Frame-pass score from which a prior counts as a hint: a place the second pass zooms
#: in on. Far below any plate's own score, but a plate too small for the frame pass
#: still leaves this much where it is (0.008 to 0.2 on the dev scenes that need the
#: second pass), while an empty road leaves a handful of places at most.
HINT_SCORE = 0.005
#: A detector input whose brightest 2 % lie under this level is dark (see :func:`expose`).
DARK = 128
#: The level :func:`expose` brings a dark input's brightest 2 % to.
EXPOSED = 200
#: Most priors looked at for hints (best first): bounds the suppression on a busy frame.
HINT_POOL = 200
#: A second-pass window in its own (enlarged) pixels: room for a plate of up to about
#: 250 pixels at that scale and the context the detector needs around it.
HINT_WINDOW = (256, 160)


@dataclass(frozen=True)
class Detection:
    """One plate in frame coordinates; corners top-left, top-right, bottom-right, bottom-left."""

    score: float
    box: tuple[float, float, float, float]
    corners: np.ndarray  # (4, 2) float32
    #: what proposed it: "detector", "text_lines" (the fallback) or "crop" (the image)
    source: str = "detector"


def to_blob(image: np.ndarray) -> np.ndarray:
    """BGR uint8 HWC -> float32 NCHW minus the mean: one OpenCV pass per channel plane,
    twice as fast as ``cv2.dnn.blobFromImage`` on the same frame."""
    h, w = image.shape[:2]
    blob = np.empty((1, 3, h, w), np.float32)
    for c, plane in enumerate(cv2.split(image)):
        cv2.subtract(plane, float(MEAN_BGR[c]), dst=blob[0, c], dtype=cv2.CV_32F)
    return blob


def expose(image: np.ndarray, max_gain: float) -> np.ndarray:
    """``image`` brightened for the detector when it is dark: when its brightest 2 %
    (:func:`brightest`) lie under :data:`DARK`, it is scaled so they reach
    :data:`EXPOSED`, by at most ``max_gain``.

    The detector takes its input as it comes (the mean subtracted, nothing
    scaled), and a dark frame (dusk, backlight, an underexposed camera) leaves
    plates it finds in daylight: the dev scenes at 0.4 of their brightness
    lost 6 plates of 122 to no detection, none with this gain, which leaves
    every frame of normal exposure as it is.
    """
    if max_gain <= 1.0 or image.size == 0:
        return image
    bright = brightest(image)
    if bright >= DARK:
        return image
    gain = min(max_gain, EXPOSED / max(bright, 1.0))
    return cv2.convertScaleAbs(image, alpha=gain, beta=0)


def brightest(image: np.ndarray) -> float:
    """The level under which 98 % of ``image``'s pixels lie (their largest channel),
    on a grid of about 45 rows: a few hundredths of a millisecond a frame."""
    step = max(1, min(image.shape[:2]) // 45)
    sample = image[::step, ::step]
    top = cv2.max(cv2.max(sample[:, :, 0], sample[:, :, 1]), sample[:, :, 2]).reshape(-1)
    k = min(top.size - 1, int(top.size * 0.98))
    return float(np.partition(top, k)[k])


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


def merge(found: list[Detection], nms_iou: float) -> list[Detection]:
    """One detection per plate, best first, from passes over overlapping parts."""
    if len(found) < 2:
        return found
    keep = nms(
        np.array([d.box for d in found], np.float32),
        np.array([d.score for d in found], np.float32),
        nms_iou,
    )
    return [found[k] for k in keep]


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


@dataclass(frozen=True)
class FramePass:
    """The raw output of one detector pass, kept for :meth:`hints`."""

    loc: np.ndarray
    conf: np.ndarray
    landms: np.ndarray
    height: int
    width: int
    scale: float

    def hints(self, most: int) -> list[tuple[float, float]]:
        """Centres (image pixels) of at most ``most`` places where a prior scored above
        :data:`HINT_SCORE`, best first, one per place: where :meth:`PlateDetector.zoom_in`
        looks when the pass found no plate. Worked out only then."""
        scores = self.conf[0, :, 1]
        idx = np.nonzero(scores > HINT_SCORE)[0]
        idx = idx[np.argsort(-scores[idx])[:HINT_POOL]]
        if idx.size == 0 or most <= 0:
            return []
        pri = priors_for(self.height, self.width)[idx]
        boxes, _ = decode(self.loc[0, idx], self.landms[0, idx], pri, self.width, self.height)
        keep = nms(boxes, scores[idx], 0.1)[:most]
        centres = (boxes[keep, :2] + boxes[keep, 2:]) / (2 * self.scale)
        return [(float(x), float(y)) for x, y in centres]


class PlateDetector:
    """Runs clp_det.onnx on a BGR image scaled so its longest side is ``max_side``.

    Images are only shrunk to ``max_side`` unless a call allows ``enlarge``: the
    factor up to which a smaller image is enlarged to it.
    """

    def __init__(self, model_path: str | Path, threads: int = 1, max_gain: float = 1.0) -> None:
        self.session = open_session(model_path, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.max_gain = max_gain

    def expose(self, image: np.ndarray) -> np.ndarray:
        return expose(image, self.max_gain)

    def prepare(
        self, image: np.ndarray, max_side: int, enlarge: float = 1.0
    ) -> tuple[np.ndarray, float]:
        h, w = image.shape[:2]
        scale = min(enlarge, max_side / max(h, w))
        if scale != 1.0:
            image = cv2.resize(
                image,
                (max(1, round(w * scale)), max(1, round(h * scale))),
                interpolation=cv2.INTER_LINEAR,
            )
        blob = to_blob(self.expose(image))
        return blob, scale

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: blob})

    def detect(
        self, image: np.ndarray, max_side: int, score: float, nms_iou: float = 0.4
    ) -> list[Detection]:
        return self.scan(image, max_side, score, nms_iou)[0]

    def scan(
        self,
        image: np.ndarray,
        max_side: int,
        score: float,
        nms_iou: float = 0.4,
        enlarge: float = 1.0,
    ) -> tuple[list[Detection], FramePass]:
        """Plates at ``score`` and up, and the pass itself, which can still say where
        it saw faint signs of a plate (:meth:`FramePass.hints`)."""
        blob, scale = self.prepare(image, max_side, enlarge)
        loc, conf, landms = self.run(blob)
        height, width = blob.shape[2], blob.shape[3]
        found = self.postprocess(loc, conf, landms, height, width, scale, score, nms_iou)
        return found, FramePass(loc, conf, landms, height, width, scale)

    def zoom_in(
        self,
        image: np.ndarray,
        centres: list[tuple[float, float]],
        max_side: int,
        score: float,
        nms_iou: float = 0.4,
        enlarge: float = 1.0,
    ) -> list[Detection]:
        """Detect in windows around ``centres``, the image scaled to ``max_side``.

        The second pass for plates too small for the frame pass. Searching the
        whole enlarged frame took four or more detector runs of the frame
        pass's size (a 1080p frame at 1280: about six times the frame pass);
        the frame pass already says where a small plate may be, and a window
        there costs a quarter of it. Windows whose centre another window
        already covers well are skipped.
        """
        ih, iw = image.shape[:2]
        zoom = min(enlarge, max_side / max(ih, iw))
        fw, fh = min(iw, HINT_WINDOW[0] / zoom), min(ih, HINT_WINDOW[1] / zoom)
        done: list[tuple[float, float]] = []
        found: list[Detection] = []
        for cx, cy in centres:
            if any(abs(cx - x) < fw / 4 and abs(cy - y) < fh / 4 for x, y in done):
                continue
            done.append((cx, cy))
            x0 = int(np.clip(cx - fw / 2, 0, iw - fw))
            y0 = int(np.clip(cy - fh / 2, 0, ih - fh))
            region = image[y0 : y0 + int(fh), x0 : x0 + int(fw)]
            if zoom != 1.0:
                size = (
                    max(1, round(region.shape[1] * zoom)),
                    max(1, round(region.shape[0] * zoom)),
                )
                region = cv2.resize(region, size, interpolation=cv2.INTER_LINEAR)
            blob = to_blob(self.expose(region))
            loc, conf, landms = self.run(blob)
            off = np.array([x0, y0], np.float32)
            height, width = blob.shape[2], blob.shape[3]
            for d in self.postprocess(loc, conf, landms, height, width, zoom, score, nms_iou):
                x1, y1, x2, y2 = d.box
                found.append(
                    Detection(d.score, (x1 + x0, y1 + y0, x2 + x0, y2 + y0), d.corners + off)
                )
        return merge(found, nms_iou)

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

    def detect_tiled(
        self,
        image: np.ndarray,
        max_side: int,
        tile: int,
        score: float,
        nms_iou: float = 0.4,
        enlarge: float = 1.0,
    ) -> list[Detection]:
        """Detect on the image scaled to ``max_side``, in overlapping tiles of about ``tile``.

        One pass over a 1280-pixel frame needs four times the working memory
        of a 640-pixel one, and the allocator keeps that peak for the life of
        the daemon. Tiles give the same detail at the memory of the small pass
        (and the time of the big one, plus the overlap).
        """
        h, w = image.shape[:2]
        scale = min(enlarge, max_side / max(h, w))
        if scale != 1.0:
            image = cv2.resize(
                image, (max(1, round(w * scale)), max(1, round(h * scale))), cv2.INTER_LINEAR
            )
        h, w = image.shape[:2]
        nx, ny = -(-w // tile), -(-h // tile)
        tw, th = min(w, -(-w // nx) + TILE_OVERLAP), min(h, -(-h // ny) + TILE_OVERLAP)
        found: list[Detection] = []
        for y in np.linspace(0, h - th, ny).round().astype(int):
            for x in np.linspace(0, w - tw, nx).round().astype(int):
                part = image[y : y + th, x : x + tw]
                blob = to_blob(self.expose(part))
                loc, conf, landms = self.run(blob)
                for d in self.postprocess(loc, conf, landms, th, tw, 1.0, score, nms_iou):
                    x1, y1, x2, y2 = d.box
                    found.append(
                        Detection(
                            d.score,
                            (
                                (x1 + x) / scale,
                                (y1 + y) / scale,
                                (x2 + x) / scale,
                                (y2 + y) / scale,
                            ),
                            ((d.corners + np.array([x, y], np.float32)) / scale).astype(np.float32),
                        )
                    )
        return merge(found, nms_iou)

    def refine(
        self, image: np.ndarray, det: Detection, plate_px: int, score: float, nms_iou: float = 0.4
    ) -> Detection | None:
        """Run the detector again on the region around ``det``, scaled so the plate is
        about ``plate_px`` wide, and return the plate it finds there (or None).

        A whole frame is scaled down to a few hundred pixels for speed, which
        leaves distant plates small: their scores fall under the threshold and
        their corners land a few pixels off, enough to cut a character. A
        second look at the plate's own neighbourhood at a good scale costs a
        fraction of the frame pass and confirms (or rejects) a weak candidate
        with corners taken at full detail.
        """
        x1, y1, x2, y2 = det.box
        w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
        ih, iw = image.shape[:2]
        rx0, rx1 = int(max(0, x1 - 0.5 * w)), int(min(iw, x2 + 0.5 * w))
        ry0, ry1 = int(max(0, y1 - 1.5 * h)), int(min(ih, y2 + 1.5 * h))
        if rx1 - rx0 < 8 or ry1 - ry0 < 8:
            return None
        region = image[ry0:ry1, rx0:rx1]
        scale = float(np.clip(plate_px / w, 0.25, 4.0))
        size = (max(32, round((rx1 - rx0) * scale)), max(32, round((ry1 - ry0) * scale)))
        interp = cv2.INTER_LINEAR if scale >= 1.0 else cv2.INTER_AREA
        zoomed = cv2.resize(region, size, interpolation=interp)
        blob = to_blob(self.expose(zoomed))
        loc, conf, landms = self.run(blob)
        sx, sy = size[0] / (rx1 - rx0), size[1] / (ry1 - ry0)
        found = self.postprocess(
            loc, conf, landms, blob.shape[2], blob.shape[3], 1.0, score, nms_iou
        )
        best: Detection | None = None
        best_iou = 0.0
        for d in found:
            bx = (
                d.box[0] / sx + rx0,
                d.box[1] / sy + ry0,
                d.box[2] / sx + rx0,
                d.box[3] / sy + ry0,
            )
            iou = _iou(bx, det.box)
            if iou > best_iou:
                corners = d.corners / np.array([sx, sy], np.float32) + np.array(
                    [rx0, ry0], np.float32
                )
                best, best_iou = Detection(d.score, bx, corners.astype(np.float32)), iou
        return best if best_iou >= 0.3 else None


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
