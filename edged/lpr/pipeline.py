"""Frame in, plate reads out: detect -> rectify -> recognise -> colour -> syntax check."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edged.logs import get_logger
from edged.lpr.colour import plate_colour, vehicle_class
from edged.lpr.config import LprConfig
from edged.lpr.detect import Detection, PlateDetector
from edged.lpr.models import check_models
from edged.lpr.recognize import HEIGHT, TextRead, TextRecognizer
from edged.lpr.rectify import DOUBLE_ROW_ASPECT, expand, plate_aspect, split_rows, warp
from edged.lpr.syntax import ALNUM, LETTERS, PROVINCES, check_plate

log = get_logger("lpr")

MAX_REC_WIDTH = 320
#: Rectified crop: width stretch over the plate's own aspect, and margins (fractions).
WIDTH_FACTOR = 1.4
MARGIN_X, MARGIN_Y = 0.04, 0.08


class ModelError(RuntimeError):
    """Model files missing or wrong; the message says how to fetch them."""


@dataclass(frozen=True)
class PlateRead:
    """One plate read off one frame. ``valid_syntax`` False means: not a plate, do not trust."""

    text: str
    confidence: float
    char_confidences: tuple[float, ...]
    colour: str
    vehicle_class: str
    corners: tuple[tuple[float, float], ...]  # TL, TR, BR, BL in frame pixels
    valid_syntax: bool
    syntax_error: str | None
    detector_score: float
    double_row: bool = False
    crop: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "char_confidences": [round(c, 4) for c in self.char_confidences],
            "colour": self.colour,
            "vehicle_class": self.vehicle_class,
            "corners": [[round(x, 1), round(y, 1)] for x, y in self.corners],
            "valid_syntax": self.valid_syntax,
            "syntax_error": self.syntax_error,
            "detector_score": round(self.detector_score, 4),
            "double_row": self.double_row,
        }


class PlateRecognizer:
    """Both models loaded once; ``read`` is thread-safe for one caller at a time per instance."""

    def __init__(self, config: LprConfig | None = None) -> None:
        self.config = config or LprConfig()
        cfg = self.config
        problems = check_models(cfg.model_dir, (cfg.detector_model, cfg.recognizer_model))
        if problems:
            for p in problems:
                log.error("lpr_model_problem", problem=p)
            raise ModelError("; ".join(problems))
        folder = Path(cfg.model_dir)
        self.detector = PlateDetector(folder / cfg.detector_model, cfg.threads)
        self.recognizer = TextRecognizer(folder / cfg.recognizer_model, cfg.threads)
        self._top_sets = self.recognizer.row_sets((PROVINCES, LETTERS))
        self._bottom_sets = {
            "standard": self.recognizer.row_sets((ALNUM,) * 5),
            "special": self.recognizer.row_sets((ALNUM,) * 4 + ("挂学警",)),
        }

    # -- stages -------------------------------------------------------------
    def detect(self, frame: np.ndarray) -> list[Detection]:
        cfg = self.config
        x0, y0, image = 0, 0, frame
        if cfg.roi:
            x, y, w, h = cfg.roi
            image = frame[y : y + h, x : x + w]
            x0, y0 = x, y
        if image.size == 0:
            log.warning(
                "lpr_roi_empty",
                roi=cfg.roi,
                frame=f"{frame.shape[1]}x{frame.shape[0]}",
                hint="roi lies outside the frame: fix [lpr] roi",
            )
            return []
        dets = self.detector.detect(image, cfg.det_max_side, cfg.det_score, cfg.nms_iou)
        dets = [d for d in dets if d.box[2] - d.box[0] >= cfg.min_plate_width]
        if not dets and cfg.second_pass_max_side and max(image.shape[:2]) > cfg.det_max_side:
            dets = self.detector.detect(
                image, cfg.second_pass_max_side, cfg.second_pass_score, cfg.nms_iou
            )
            dets = [d for d in dets if d.box[2] - d.box[0] >= cfg.min_plate_width]
        dets = dets[: cfg.max_plates]
        if x0 or y0:
            off = np.array([x0, y0], dtype=np.float32)
            dets = [
                Detection(
                    d.score,
                    (d.box[0] + x0, d.box[1] + y0, d.box[2] + x0, d.box[3] + y0),
                    d.corners + off,
                )
                for d in dets
            ]
        return dets

    def rectify(self, frame: np.ndarray, det: Detection) -> tuple[np.ndarray, bool]:
        aspect = plate_aspect(det.corners)
        if det.score == 0.0:  # whole image is the plate: no margin to add
            width = int(np.clip(round(HEIGHT * aspect * WIDTH_FACTOR), 2 * HEIGHT, MAX_REC_WIDTH))
            if aspect < DOUBLE_ROW_ASPECT:
                return warp(frame, det.corners, 6 * HEIGHT, 3 * HEIGHT), True
            return warp(frame, det.corners, width, HEIGHT), False
        double = aspect < DOUBLE_ROW_ASPECT
        if double:
            crop = warp(frame, expand(det.corners, 0.03, 0.05), 2 * 3 * HEIGHT, 3 * HEIGHT)
        else:
            width = int(np.clip(round(HEIGHT * aspect * WIDTH_FACTOR), 2 * HEIGHT, MAX_REC_WIDTH))
            crop = warp(frame, expand(det.corners, MARGIN_X, MARGIN_Y), width, HEIGHT)
        return crop, double

    def recognise(self, crops: list[tuple[np.ndarray, bool]]) -> list[TextRead | None]:
        """Read all crops of a frame in one model call (rows of double-row plates too)."""
        pieces: list[np.ndarray] = []
        for crop, double in crops:
            if double:
                top, bottom = split_rows(crop)
                pieces += [top, bottom]
            else:
                pieces.append(crop)
        if not pieces:
            return []
        probs = self.recognizer.run(self.recognizer.prepare(pieces))
        out: list[TextRead | None] = []
        i = 0
        for _, double in crops:
            if not double:
                out.append(self.recognizer.decode(probs[i]))
                i += 1
                continue
            top = self.recognizer.decode(probs[i], ("top",), {"top": self._top_sets})
            bottom = self.recognizer.decode(probs[i + 1], None, self._bottom_sets)
            i += 2
            if top is None or bottom is None:
                out.append(None)
            else:
                out.append(
                    TextRead(
                        top.text + bottom.text,
                        top.char_confidences + bottom.char_confidences,
                        top.score + bottom.score,
                        "double_" + bottom.form,
                    )
                )
        return out

    @staticmethod
    def _looks_like_crop(image: np.ndarray) -> bool:
        """A small image shaped like a plate is read as an already cut-out plate."""
        h, w = image.shape[:2]
        return h <= 240 and 1.8 <= w / max(h, 1) <= 6.0

    # -- whole frame --------------------------------------------------------
    def read(self, frame_bgr: np.ndarray) -> list[PlateRead]:
        """Every plate in the frame, best detection first; garbage in gives []."""
        if (
            not isinstance(frame_bgr, np.ndarray)
            or frame_bgr.ndim != 3
            or frame_bgr.shape[2] != 3
            or frame_bgr.dtype != np.uint8
            or frame_bgr.size == 0
        ):
            log.warning(
                "lpr_bad_frame",
                shape=getattr(frame_bgr, "shape", None),
                dtype=str(getattr(frame_bgr, "dtype", None)),
                hint="camera must deliver 8-bit BGR frames; check the camera source",
            )
            return []
        t0 = time.perf_counter()
        dets = self.detect(frame_bgr)
        if not dets and self._looks_like_crop(frame_bgr):
            h, w = frame_bgr.shape[:2]
            dets = [
                Detection(
                    0.0,
                    (0.0, 0.0, float(w), float(h)),
                    np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float32),
                )
            ]
        crops = [self.rectify(frame_bgr, d) for d in dets]
        texts = self.recognise(crops)
        reads: list[PlateRead] = []
        for det, (crop, double), tr in zip(dets, crops, texts, strict=True):
            if tr is None:
                continue
            colour = plate_colour(crop)
            conf = min(tr.char_confidences) if tr.char_confidences else 0.0
            if conf < self.config.min_confidence:
                continue
            err = check_plate(tr.text)
            reads.append(
                PlateRead(
                    text=tr.text,
                    confidence=conf,
                    char_confidences=tr.char_confidences,
                    colour=colour,
                    vehicle_class=vehicle_class(colour, tr.text),
                    corners=tuple((float(x), float(y)) for x, y in det.corners),
                    valid_syntax=err is None,
                    syntax_error=err,
                    detector_score=det.score,
                    double_row=double,
                    crop=crop,
                )
            )
        log.debug("lpr_frame", plates=len(reads), ms=round((time.perf_counter() - t0) * 1e3, 1))
        return reads
