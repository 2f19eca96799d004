"""Fallback plate proposals from a text-line detector, for plates the plate detector misses.

The plate detector (``clp_det.onnx``) was trained mostly on single-row
plates of cars; a yellow double-row plate on a bus or a trailer is what it
misses outright. PP-OCRv4's text detector (``ch_PP-OCRv4_det_lines.onnx``,
the DB segmentation network shipped with RapidOCR, rewritten at set-up by
``models/derive.py``) finds lines of text of any
kind. A double-row plate is two of them: a short line (province and letter)
centred above a long one (five characters), close together. Those pairs,
and single lines shaped like a one-row plate, are proposed as plates and
read by the usual views (a short yellow or white plate also gets its
double-row view).

It costs several times the plate detector per pixel, so it runs only where
it pays: when the plate detector found nothing, and then (``"yellow"``) only
around the yellow regions of the frame (double-row plates are yellow:
lorries, buses, trailers) or (``"frame"``) over the whole frame, for a
camera whose reads only ever follow a vehicle trigger. Its ONNX Runtime
arena is off: its working memory goes back to the system after each rare
run instead of staying with the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edged.lpr.models import open_session

#: A pixel of the probability map is text from this probability (DB's own 0.3).
TEXT_THRESHOLD = 0.3
#: A text line counts from this mean probability over its pixels.
LINE_SCORE = 0.5
#: DB's unclip: a shrunk text kernel grows by area * ratio / perimeter on each side.
UNCLIP_RATIO = 1.6
#: Yellow regions looked at per frame, largest first.
MAX_REGIONS = 3
#: Lines kept per run (largest first): bounds the pairing on a frame full of text.
MAX_LINES = 40
#: Most input pixels per run of the network; larger inputs go in tiles (memory).
TILE_PIXELS = 256 * 192
#: Overlap of those tiles, in input pixels: wider than a plate the fallback is for.
TILE_OVERLAP = 96


@dataclass(frozen=True)
class TextLine:
    """One line of text: its rotated rectangle in image pixels and mean probability."""

    centre: tuple[float, float]
    size: tuple[float, float]  # width along the line, height across it
    angle: float  # degrees, as cv2.minAreaRect gives, normalised so width >= height
    score: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        pts = self.corners()
        return (
            float(pts[:, 0].min()),
            float(pts[:, 1].min()),
            float(pts[:, 0].max()),
            float(pts[:, 1].max()),
        )

    def corners(self) -> np.ndarray:
        """TL, TR, BR, BL of the rectangle."""
        return order_corners(cv2.boxPoints((self.centre, self.size, self.angle)))


def order_corners(pts: np.ndarray) -> np.ndarray:
    """Four points as top-left, top-right, bottom-right, bottom-left."""
    pts = np.asarray(pts, np.float32)
    by_x = pts[np.argsort(pts[:, 0], kind="stable")]
    left = by_x[:2][np.argsort(by_x[:2, 1], kind="stable")]
    right = by_x[2:][np.argsort(by_x[2:, 1], kind="stable")]
    return np.array([left[0], right[0], right[1], left[1]], np.float32)


def lines_from_map(prob: np.ndarray, sx: float, sy: float) -> list[TextLine]:
    """Text lines of a DB probability map; ``sx``/``sy`` scale map pixels to the image's."""
    mask = (prob > TEXT_THRESHOLD).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    lines: list[TextLine] = []
    for c in sorted(contours, key=cv2.contourArea, reverse=True)[:MAX_LINES]:
        if len(c) < 3:
            continue
        (cx, cy), (w, h), angle = cv2.minAreaRect(c)
        if min(w, h) < 2:
            continue
        x, y, bw, bh = cv2.boundingRect(c)
        region = mask[y : y + bh, x : x + bw]
        score = float(prob[y : y + bh, x : x + bw][region > 0].mean())
        if score < LINE_SCORE:
            continue
        grow = w * h * UNCLIP_RATIO / (2 * (w + h))
        w, h = w + 2 * grow, h + 2 * grow
        if w < h:  # keep width along the line
            w, h, angle = h, w, angle - 90.0
        lines.append(TextLine((cx * sx, cy * sy), (w * sx, h * sy), angle, score))
    return lines


def pair_double_rows(lines: list[TextLine]) -> list[tuple[np.ndarray, float]]:
    """Double-row plates among ``lines``: (corners TL TR BR BL, score) per pair.

    GA 36's double-row plate (440x220 mm): the top row (province, letter)
    is about half as wide as the bottom row and centred over it; the bottom
    row's characters are taller. Only near-horizontal lines are paired.
    """
    flat = [ln for ln in lines if abs(_tilt(ln)) <= 20.0]
    out: list[tuple[np.ndarray, float]] = []
    for top in flat:
        for bottom in flat:
            if top is bottom:
                continue
            tw, th = top.size
            bw, bh = bottom.size
            if not (1.3 * tw <= bw <= 4.0 * tw and 0.4 * bh <= th <= 1.1 * bh):
                continue
            dx = abs(top.centre[0] - bottom.centre[0])
            dy = bottom.centre[1] - top.centre[1]
            if dx > 0.25 * bw or not (0.5 * (th + bh) / 2 <= dy <= 1.6 * (th + bh) / 2):
                continue
            b = bottom.corners()
            t = top.corners()
            up = (b[0] - b[3]) / max(float(np.linalg.norm(b[0] - b[3])), 1e-6)
            rise = max(float(np.dot(t[0] - b[0], up)), float(np.dot(t[1] - b[1], up)), 0.0)
            corners = np.array([b[0] + up * rise, b[1] + up * rise, b[2], b[3]], np.float32)
            out.append((corners, min(top.score, bottom.score)))
    out.sort(key=lambda cs: -cs[1])
    return out


def single_rows(lines: list[TextLine]) -> list[tuple[np.ndarray, float]]:
    """Lines shaped like a one-row plate's text (7 or 8 characters: 3 to 8 times as
    wide as high), near horizontal."""
    return [
        (ln.corners(), ln.score)
        for ln in lines
        if 3.0 <= ln.size[0] / max(ln.size[1], 1e-6) <= 8.0 and abs(_tilt(ln)) <= 20.0
    ]


def _tilt(line: TextLine) -> float:
    a = line.angle % 180.0
    return a - 180.0 if a > 90.0 else a


def yellow_regions(image: np.ndarray, most: int = MAX_REGIONS) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1) around the largest yellow areas of ``image``, found on a
    160-pixel copy: where a yellow plate can be."""
    h, w = image.shape[:2]
    f = 160.0 / max(h, w)
    small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    mask = cv2.inRange(hsv, (11, 80, 70), (34, 255, 255))
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    found = sorted(range(1, n), key=lambda i: -stats[i, cv2.CC_STAT_AREA])[:most]
    out = []
    for i in found:
        x, y, bw, bh, area = stats[i]
        if area < 4:
            continue
        mx, my = bw * 0.5 + 2, bh * 0.5 + 2
        out.append(
            (
                int(max(0, (x - mx) / f)),
                int(max(0, (y - my) / f)),
                int(min(w, (x + bw + mx) / f)),
                int(min(h, (y + bh + my) / f)),
            )
        )
    return out


class TextLineProposer:
    """Runs the text-line detector on an image or its yellow regions; proposes plates."""

    def __init__(self, model_path: str | Path, threads: int = 1) -> None:
        self.session = open_session(model_path, threads, arena=False)
        self.input_name = self.session.get_inputs()[0].name

    def lines(self, image: np.ndarray, max_side: int) -> list[TextLine]:
        """Text lines of ``image`` scaled so its longest side is about ``max_side``
        (rounded to the network's multiple of 32, at least 32).

        An input of more than :data:`TILE_PIXELS` is run in overlapping tiles
        across its longer side: the network's working memory grows with the
        pixels of one run, and this model's peak adds to the daemon's (over the
        loaded model: 23 MB for a 320x320 input, 14 MB for 256x192).
        """
        h, w = image.shape[:2]
        r = max_side / max(h, w)
        nh, nw = max(32, round(h * r / 32) * 32), max(32, round(w * r / 32) * 32)
        x = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        sx, sy = w / nw, h / nh
        along = 1 if nw >= nh else 0  # the axis that is cut into tiles
        length, across = (nw, nh) if along else (nh, nw)
        tile = max(TILE_OVERLAP + 32, (TILE_PIXELS // across) // 32 * 32)
        starts = [0]
        while starts[-1] + tile < length:
            starts.append(min(starts[-1] + tile - TILE_OVERLAP, length - tile))
        found: list[TextLine] = []
        for start in starts:
            part = x[:, start : start + tile] if along else x[start : start + tile]
            blob = (part.astype(np.float32) * (2.0 / 255.0) - 1.0).transpose(2, 0, 1)[None]
            prob = self.run(np.ascontiguousarray(blob))[0][0, 0]
            ox, oy = (start * sx, 0.0) if along else (0.0, start * sy)
            for ln in lines_from_map(prob, sx, sy):
                cx, cy = ln.centre
                found.append(TextLine((cx + ox, cy + oy), ln.size, ln.angle, ln.score))
        return found

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: blob})

    def propose(
        self, image: np.ndarray, where: str, max_side: int, most: int
    ) -> list[tuple[np.ndarray, float, bool]]:
        """Up to ``most`` plates: (corners TL TR BR BL in image pixels, score, double-row).

        ``where``: ``"frame"`` (the whole image, scaled to ``max_side``) or
        ``"yellow"`` (its yellow regions, each scaled to at most half of it).
        """
        if where == "frame":
            regions = [(0, 0, image.shape[1], image.shape[0])]
        else:
            regions = yellow_regions(image)
        found: list[tuple[np.ndarray, float, bool]] = []
        for x0, y0, x1, y1 in regions:
            if x1 - x0 < 16 or y1 - y0 < 8:
                continue
            region = image[y0:y1, x0:x1]
            side = max_side if where == "frame" else min(max_side // 2, 4 * max(region.shape[:2]))
            lines = self.lines(region, side)
            off = np.array([x0, y0], np.float32)
            found += [(c + off, s, True) for c, s in pair_double_rows(lines)]
            found += [(c + off, s, False) for c, s in single_rows(lines)]
        found.sort(key=lambda p: (-p[2], -p[1]))  # double rows first: what this is for
        return _distinct(found)[:most]


def _distinct(found: list[tuple[np.ndarray, float, bool]]) -> list[tuple[np.ndarray, float, bool]]:
    """Drop a proposal whose centre lies in one already kept (a pair's bottom line)."""
    kept: list[tuple[np.ndarray, float, bool]] = []
    for corners, score, double in found:
        cx, cy = corners.mean(0)
        if any(
            k[:, 0].min() <= cx <= k[:, 0].max() and k[:, 1].min() <= cy <= k[:, 1].max()
            for k, _, _ in kept
        ):
            continue
        kept.append((corners, score, double))
    return kept
