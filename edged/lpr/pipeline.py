"""Frame in, plate reads out: detect -> rectify -> recognise -> colour -> syntax check."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from edged.logs import get_logger
from edged.lpr.colour import plate_colour, vehicle_class
from edged.lpr.config import LprConfig
from edged.lpr.detect import Detection, FramePass, PlateDetector
from edged.lpr.models import check_models
from edged.lpr.recognize import ALTERNATIVES, HEIGHT, TextRead, TextRecognizer
from edged.lpr.rectify import DOUBLE_ROW_ASPECT, Views, expand, plate_aspect, split_rows
from edged.lpr.syntax import ALNUM, LETTERS, PROVINCES, check_plate
from edged.lpr.textlines import TextLineProposer

log = get_logger("lpr")

MAX_REC_WIDTH = 320
#: Single-row views of a detected plate, read together and voted: margins around the
#: detector's corners (fractions of width, height) and the width stretch over the plate's
#: own aspect. Corners a few pixels off cut or pad a character differently in each view,
#: so their errors disagree while the right reading agrees.
SCENE_VIEWS = ((0.04, 0.08, 1.4), (0.10, 0.15, 1.4), (0.0, 0.0, 1.2))
#: Width stretches for an image that is itself a cut-out plate (no margin to vary).
CROP_VIEWS = (1.4, 1.2, 1.0)
#: Most crops per recogniser call: its working memory grows with the batch, its speed
#: hardly (the peak of a 16-crop batch would stay with the daemon for good).
REC_BATCH = 4
#: Plate colours that come in a double-row form (GA 36: large vehicles' rear, trailers,
#: motorcycles, police); "unknown" covers night and IR images with no colour to see.
DOUBLE_ROW_COLOURS = frozenset({"yellow", "white", "unknown"})
#: A first view read this badly (geometric mean of its characters' probabilities) is
#: not a plate that more views could save but a false detection (a sign, a grille):
#: it is reported from that view alone. On the dev set, false detections read under
#: 0.17 and real plates over 0.22 (first views of plates with a double-row view,
#: whose layout only the vote decides, always get their other views).
NOT_A_PLATE = 0.1


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
    #: geometric mean of the characters' probabilities in the winning view: how
    #: cleanly the plate read (under NOT_A_PLATE: not a plate at all)
    clarity: float = 1.0
    #: per character: (character, probability) for the read one and its rivals the
    #: grammar allows there, best first (see edged.lpr.identify)
    char_alternatives: tuple[tuple[tuple[str, float], ...], ...] = ()
    #: what found the plate: "detector", "text_lines" (the fallback) or "crop"
    proposal: str = "detector"
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
            "proposal": self.proposal,
            "alternatives": [
                [[ch, round(p, 4)] for ch, p in position] for position in self.char_alternatives
            ],
        }


class PlateRecognizer:
    """Both models loaded once; ``read`` is thread-safe for one caller at a time per instance."""

    def __init__(self, config: LprConfig | None = None) -> None:
        self.config = config or LprConfig()
        cfg = self.config
        wanted = [cfg.detector_model, cfg.recognizer_model]
        if cfg.text_line_fallback != "off":
            wanted.append(cfg.text_line_model)
        problems = check_models(cfg.model_dir, tuple(wanted))
        if problems:
            for p in problems:
                log.error("lpr_model_problem", problem=p)
            raise ModelError("; ".join(problems))
        # OpenCV spreads each resize and warp over a pool of one thread per core by
        # default. These are a millisecond at most: on two cores the pool cost 5 % more
        # CPU a 1080p read and saved no time. Process-wide, as OpenCV's setting is.
        cv2.setNumThreads(cfg.threads)
        folder = Path(cfg.model_dir)
        self.detector = PlateDetector(folder / cfg.detector_model, cfg.threads, cfg.dark_frame_gain)
        self.recognizer = TextRecognizer(folder / cfg.recognizer_model, cfg.threads)
        self.text_lines = (
            TextLineProposer(folder / cfg.text_line_model, cfg.threads)
            if cfg.text_line_fallback != "off"
            else None
        )
        self._top_sets = {"top": self.recognizer.row_sets((PROVINCES, LETTERS))}
        self._bottom_sets = {
            "standard": self.recognizer.row_sets((ALNUM,) * 5),
            "special": self.recognizer.row_sets((ALNUM,) * 4 + ("挂学警",)),
        }

    # -- stages -------------------------------------------------------------
    def _candidates(self, image: np.ndarray) -> tuple[list[Detection], FramePass]:
        """Plates of the frame pass (weak ones confirmed by a zoomed look), and the pass,
        which says where the second pass should look if there are none."""
        cfg = self.config
        low = min(cfg.candidate_score, cfg.det_score) if cfg.refine_plate_px else cfg.det_score
        cands, frame_pass = self.detector.scan(
            image, cfg.det_max_side, low, cfg.nms_iou, cfg.small_frame_enlarge
        )
        out: list[Detection] = []
        for d in cands[: 2 * cfg.max_plates]:
            if cfg.refine_plate_px and (cfg.refine_all or d.score < cfg.det_score):
                r = self.detector.refine(image, d, cfg.refine_plate_px, cfg.det_score, cfg.nms_iou)
                if r is None:
                    continue
                d = r
            if d.box[2] - d.box[0] >= cfg.min_plate_width:
                out.append(d)
        out.sort(key=lambda d: -d.score)
        return out, frame_pass

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
        dets, frame_pass = self._candidates(image)
        # the second pass looks at twice (second_pass_max_side / det_max_side) the
        # frame pass's scale, a small frame enlarged as much as its frame pass was
        enlarge = cfg.small_frame_enlarge * cfg.second_pass_max_side / cfg.det_max_side
        if not dets and cfg.second_pass_max_side:
            if cfg.second_pass_windows:
                dets = self.detector.zoom_in(
                    image,
                    frame_pass.hints(cfg.second_pass_windows),
                    cfg.second_pass_max_side,
                    cfg.second_pass_score,
                    cfg.nms_iou,
                    enlarge,
                )
            else:
                dets = self.detector.detect_tiled(
                    image,
                    cfg.second_pass_max_side,
                    cfg.det_max_side,
                    cfg.second_pass_score,
                    cfg.nms_iou,
                    enlarge,
                )
            if cfg.refine_plate_px:  # small plates: corners at full detail, as for weak ones
                dets = [
                    self.detector.refine(
                        image, d, cfg.refine_plate_px, cfg.second_pass_score, cfg.nms_iou
                    )
                    or d
                    for d in dets[: cfg.max_plates]
                ]
            dets = [d for d in dets if d.box[2] - d.box[0] >= cfg.min_plate_width]
        if not dets and cfg.text_line_fallback != "off" and self.text_lines is not None:
            dets = self._text_line_proposals(image)
        dets = dets[: cfg.max_plates]
        if x0 or y0:
            off = np.array([x0, y0], dtype=np.float32)
            dets = [
                Detection(
                    d.score,
                    (d.box[0] + x0, d.box[1] + y0, d.box[2] + x0, d.box[3] + y0),
                    d.corners + off,
                    d.source,
                )
                for d in dets
            ]
        return dets

    def _text_line_proposals(self, image: np.ndarray) -> list[Detection]:
        """Plates the text-line detector proposes where the plate detector found none."""
        assert self.text_lines is not None
        cfg = self.config
        out = []
        for corners, score, _double in self.text_lines.propose(
            image, cfg.text_line_fallback, cfg.text_line_max_side, cfg.max_plates
        ):
            box = (
                float(corners[:, 0].min()),
                float(corners[:, 1].min()),
                float(corners[:, 0].max()),
                float(corners[:, 1].max()),
            )
            if box[2] - box[0] >= cfg.min_plate_width:
                out.append(Detection(score, box, corners.astype(np.float32), "text_lines"))
        return out

    def views(self, frame: np.ndarray, det: Detection) -> tuple[Views, str]:
        """Rectified crops of one detection with their row layout, and the plate's colour.

        A plate whose corners give a short aspect may be a double-row plate
        (440x220 mm) or a single-row one seen at an angle or boxed with its
        frame; the shape alone gets this wrong often enough (a third of the
        real-scene misses once came from it) that both readings are made and
        the more confident one wins in :meth:`read`. Only yellow and white
        plates come in two rows (trucks, trailers, motorcycles, police), so a
        blue, green or black plate is never read as one. A view is warped when
        it is first read (only the first, for its colour, here).
        """
        aspect = plate_aspect(det.corners)
        n = self.config.read_views
        if det.source == "crop":  # the image is the plate: vary the stretch only
            shapes = [(det.corners, wf) for wf in CROP_VIEWS[:n]]
        else:
            shapes = [(expand(det.corners, mx, my), wf) for mx, my, wf in SCENE_VIEWS[:n]]
        out: list[tuple[np.ndarray | None, int, int, bool]] = [
            (
                corners,
                int(np.clip(round(HEIGHT * aspect * wf), 2 * HEIGHT, MAX_REC_WIDTH)),
                HEIGHT,
                False,
            )
            for corners, wf in shapes
        ]
        views = Views(frame, out)
        colour = plate_colour(views[0][0])
        if aspect < DOUBLE_ROW_ASPECT and colour in DOUBLE_ROW_COLOURS:
            double_corners = (
                det.corners if det.source == "crop" else expand(det.corners, 0.03, 0.05)
            )
            views.add(double_corners, 2 * 3 * HEIGHT, 3 * HEIGHT, True)
        return views, colour

    @staticmethod
    def pieces(views: list[tuple[np.ndarray, bool]]) -> list[np.ndarray]:
        """The recogniser's inputs for these views: a double-row view gives its two rows."""
        out: list[np.ndarray] = []
        for crop, double in views:
            out += list(split_rows(crop)) if double else [crop]
        return out

    def recognise(self, views: list[tuple[np.ndarray, bool]]) -> list[TextRead | None]:
        """Read all views of a frame in one model call (rows of double-row views too)."""
        pieces = self.pieces(views)
        if not pieces:
            return []
        probs = [
            p
            for i in range(0, len(pieces), REC_BATCH)
            for p in self.recognizer.run(self.recognizer.prepare(pieces[i : i + REC_BATCH]))
        ]
        out: list[TextRead | None] = []
        i = 0
        for _, double in views:
            if not double:
                out.append(self.recognizer.decode(probs[i]))
                i += 1
                continue
            top = self.recognizer.decode(probs[i], ("top",), self._top_sets)
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
                        top.char_probs + bottom.char_probs,
                        top.char_alternatives + bottom.char_alternatives,
                    )
                )
        return out

    def _read_views(self, per_det: list[tuple[Views, str]]) -> list[list[TextRead | None]]:
        """Readings of each plate's views (None where a view was not needed), read in
        rounds, each round one batch for all plates.

        1. Every plate's first view. Most plates are read beyond doubt here.
        2. For a plate whose weakest character is under ``vote_below``: its
           second view, and its double-row view if it has one (only the vote
           decides the layout).
        3. Its remaining views, only where the first two readings disagree.

        Two views that agree are what the vote rewards: a wrong reading rarely
        repeats across views, and a third view read after two agreeing ones
        changed the winner only where all the readings were near coin flips.
        Reading it only on disagreement saves a third of the time of the
        plates in doubt.
        """
        texts: list[list[TextRead | None]] = [[None] * len(views) for views, _ in per_det]
        done: set[tuple[int, int]] = set()

        def read(wanted: list[tuple[int, int]]) -> None:
            crops = [per_det[i][0][k] for i, k in wanted]
            for (i, k), tr in zip(wanted, self.recognise(crops), strict=True):
                texts[i][k] = tr
                done.add((i, k))

        read([(i, 0) for i in range(len(per_det))])
        unsure = [
            i
            for i, (views, _) in enumerate(per_det)
            if len(views) > 1 and (views.double(-1) or self._unsure(texts[i][0]))
        ]
        read(
            [(i, 1) for i in unsure]
            + [
                (i, k)
                for i in unsure
                for k in range(2, len(per_det[i][0]))
                if per_det[i][0].double(k)
            ]
        )
        read(
            [
                (i, k)
                for i in unsure
                if not _agree(texts[i][0], texts[i][1])
                for k in range(2, len(per_det[i][0]))
                if (i, k) not in done
            ]
        )
        return texts

    def _unsure(self, first: TextRead | None) -> bool:
        """Worth more views: in doubt, but not so garbled that it is no plate at all."""
        if first is None or not first.char_confidences:
            return True
        if first.clarity < NOT_A_PLATE:
            return False
        return min(first.char_probs or first.char_confidences) < self.config.vote_below

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
        reads = self._read_crop(frame_bgr) if self._looks_like_crop(frame_bgr) else []
        if not reads or reads[0].clarity < NOT_A_PLATE:
            # a scene, or a small image that reads as no plate when taken for one
            dets = self.detect(frame_bgr)
            if dets or not reads:  # with no plate found, the crop's reading stands
                reads = self._read_detections(frame_bgr, dets)
        log.debug("lpr_frame", plates=len(reads), ms=round((time.perf_counter() - t0) * 1e3, 1))
        return reads

    def _read_crop(self, image: np.ndarray) -> list[PlateRead]:
        """The whole image read as one cut-out plate."""
        h, w = image.shape[:2]
        corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float32)
        return self._read_detections(
            image, [Detection(0.0, (0.0, 0.0, float(w), float(h)), corners, "crop")]
        )

    def _read_detections(self, frame_bgr: np.ndarray, dets: list[Detection]) -> list[PlateRead]:
        """Views, readings and the vote for each detected plate."""
        per_det = [self.views(frame_bgr, d) for d in dets]
        reads: list[PlateRead] = []
        for det, (views, colour), texts in zip(
            dets, per_det, self._read_views(per_det), strict=True
        ):
            chosen = vote_views(views, texts)
            if chosen is None:
                continue
            crop, double, tr = chosen
            if det.source == "text_lines" and (
                tr.clarity < NOT_A_PLATE or min(tr.char_probs, default=0.0) < NOT_A_PLATE
            ):
                # a line of text that is no plate (a sign, lettering on a lorry): some
                # character, the province most often, is one the model never saw there
                continue
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
                    clarity=tr.clarity,
                    char_alternatives=tr.char_alternatives,
                    proposal=det.source,
                    crop=crop,
                )
            )
        return reads


def vote_views(
    views: Sequence[tuple[np.ndarray, bool]], texts: list[TextRead | None]
) -> tuple[np.ndarray, bool, TextRead] | None:
    """Vote over the views of one plate: each reading scores the geometric mean of its
    character confidences, equal readings add up, and the winner's most confident
    view is kept, its characters' confidences scaled by how much of the vote agreed
    on each of them.

    A wrong reading rarely repeats across views, a right one does. The
    geometric mean lets one unreadable character sink a reading: a
    double-row plate read as one row repeats the same forced guess in each
    view, and only its one confident two-row reading should win. A
    character the views disputed is reported as unsure even when the
    winning view was sure of it: a confident wrong plate is the worst
    error at a gate, so disagreement must show in the confidence.
    """
    votes: dict[str, float] = {}
    keep: dict[str, tuple[float, int, TextRead]] = {}
    for k, tr in enumerate(texts):
        if tr is None or not tr.char_confidences:
            continue
        votes[tr.text] = votes.get(tr.text, 0.0) + tr.clarity
        weakest = min(tr.char_confidences)
        if tr.text not in keep or weakest > keep[tr.text][0]:
            keep[tr.text] = (weakest, k, tr)
    if not votes:
        return None
    winner = max(votes, key=votes.__getitem__)
    _, k, tr = keep[winner]
    crop, double = views[k]  # a view read is a view made: no new warp
    if len(votes) > 1:
        total = sum(votes.values())
        agree = [
            sum(w for text, w in votes.items() if len(text) == len(winner) and text[i] == c) / total
            for i, c in enumerate(winner)
        ]
        tr = replace(
            tr,
            char_confidences=tuple(c * a for c, a in zip(tr.char_confidences, agree, strict=True)),
        )
    read = [(t.text, t.char_alternatives) for t in texts if t is not None]
    if len(read) > 1:
        tr = replace(tr, char_alternatives=merge_alternatives(read, tr.text))
    return crop, double, tr


def merge_alternatives(
    reads: list[tuple[str, tuple[tuple[tuple[str, float], ...], ...]]], text: str
) -> tuple[tuple[tuple[str, float], ...], ...]:
    """Per position of ``text``: every character the ``reads`` (text, alternatives) of
    its length saw there, read or as an alternative, at its best probability; ``text``'s
    own character first.

    A character another view (or frame) read where this one read something else is
    as much an alternative as one the model ranked second.
    """
    out = []
    for i, own in enumerate(text):
        best: dict[str, float] = {}
        for other, alternatives in reads:
            if len(other) != len(text):
                continue
            for ch, prob in alternatives[i] if i < len(alternatives) else ((other[i], 0.0),):
                best[ch] = max(best.get(ch, 0.0), prob)
            best.setdefault(other[i], 0.0)
        mine = best.pop(own, 0.0)
        rest = sorted(best.items(), key=lambda kv: -kv[1])[: ALTERNATIVES - 1]
        out.append(((own, mine), *rest))
    return tuple(out)


def _agree(a: TextRead | None, b: TextRead | None) -> bool:
    return a is not None and b is not None and a.text == b.text
