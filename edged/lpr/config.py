"""The ``[lpr]`` config section: models, threads, detector scale, thresholds, ROI."""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.config import raise_all
from edged.config.schema import doc


@dataclass(frozen=True)
class LprConfig:
    """Plate recognition (车牌识别) for one camera."""

    model_dir: str = field(
        default="models/onnx",
        metadata=doc(
            "Folder with the ONNX models (install with: python models/fetch.py --dest DIR)"
        ),
    )
    detector_model: str = field(
        default="clp_det.onnx",
        metadata=doc("Plate detector with 4 corner points (车牌检测), file name in model_dir"),
    )
    recognizer_model: str = field(
        default="ch_PP-OCRv4_rec_plate.onnx",
        metadata=doc(
            "Text recogniser (字符识别), file name in model_dir: PP-OCRv4 rewritten at "
            'set-up for speed (same output); "ch_PP-OCRv4_rec_infer.onnx", the file as '
            "shipped, also works"
        ),
    )
    threads: int = field(
        default=1,
        metadata=doc(
            "ONNX Runtime intra-op threads per model, and OpenCV's threads for the image"
            " work around them (1 keeps the other cores free)"
        ),
    )
    det_max_side: int = field(
        default=640,
        metadata=doc(
            "Longest side, in pixels, the frame (or ROI) is scaled down to for the detector"
        ),
    )
    small_frame_enlarge: float = field(
        default=4.0,
        metadata=doc(
            "A frame (or ROI) smaller than det_max_side is enlarged up to this factor for "
            "the detector, whose smallest plates are about 24 pixels wide at its scale "
            "(low-resolution or distant cameras); 1 = never enlarge"
        ),
    )
    dark_frame_gain: float = field(
        default=3.0,
        metadata=doc(
            "A dark frame (its brightest 2 % under half of full scale: dusk, backlight) is "
            "brightened up to this factor for the detector, which misses plates in them "
            "otherwise; 1 = never"
        ),
    )
    read_views: int = field(
        default=3,
        metadata=doc(
            "Rectified views of each plate read and voted, 1..3: each adds about a sixth "
            "to the time per plate and removes misreads from corners a few pixels off"
        ),
    )
    vote_below: float = field(
        default=0.95,
        metadata=doc(
            "The other views are read and voted only when the first view's weakest "
            "character is below this confidence; 1.0 = always"
        ),
    )
    candidate_score: float = field(
        default=0.3,
        metadata=doc(
            "Frame-pass score from which a plate is looked at again, zoomed, to confirm it"
        ),
    )
    refine_plate_px: int = field(
        default=128,
        metadata=doc("Plate width, in pixels, of the zoomed second look at a candidate; 0 = off"),
    )
    refine_all: bool = field(
        default=False,
        metadata=doc("Zoom in on every plate, not only weak candidates (better corners, slower)"),
    )
    second_pass_max_side: int = field(
        default=1280,
        metadata=doc(
            "Second detector pass at this size when the first finds nothing (small plates); 0 = off"
        ),
    )
    second_pass_windows: int = field(
        default=4,
        metadata=doc(
            "Most places the second pass zooms in on, where the frame pass saw faint signs "
            "of a plate (each costs about a quarter of the frame pass); 0 = search the "
            "whole enlarged frame in tiles (about six times the frame pass)"
        ),
    )
    text_line_fallback: str = field(
        default="yellow",
        metadata=doc(
            "Where the text-line detector looks for plates when the plate detector found "
            'none (yellow double-row plates it misses): "yellow" = around the yellow '
            'regions of the frame, "frame" = the whole frame (reads follow a vehicle '
            'trigger), "off"'
        ),
    )
    release_above_mb: int = field(
        default=180,
        metadata=doc(
            "After a passage, when the daemon's resident memory is above this many MB, the"
            " models' unused working memory goes back to the system (the next passage's"
            " first frame pays up to about 10 ms to take it again); 0 = never",
            min=0,
            max=65536,
        ),
    )
    text_line_model: str = field(
        default="ch_PP-OCRv4_det_lines.onnx",
        metadata=doc(
            "Text-line detector (文本检测) of the fallback, file name in model_dir: PP-OCRv4's "
            'rewritten at set-up for speed and memory (same output); "ch_PP-OCRv4_det_infer.onnx", '
            "the file as shipped, also works"
        ),
    )
    text_line_max_side: int = field(
        default=480,
        metadata=doc(
            'Longest side the frame is scaled to for the text-line detector ("frame"); '
            "yellow regions are scaled to at most half of it"
        ),
    )
    det_score: float = field(default=0.6, metadata=doc("Minimum detector score for a plate"))
    second_pass_score: float = field(
        default=0.4, metadata=doc("Minimum detector score in the second, larger pass")
    )
    nms_iou: float = field(
        default=0.4, metadata=doc("Overlap above which two detections are the same plate")
    )
    max_plates: int = field(
        default=4, metadata=doc("Most plates read per frame (highest detector scores first)")
    )
    roi: list[int] = field(
        default_factory=list,
        metadata=doc(
            "Region of interest [x, y, width, height] in pixels (识别区域); empty = whole frame"
        ),
    )
    min_plate_width: int = field(
        default=24,
        metadata=doc(
            "Plates narrower than this many frame pixels are ignored (too small to read; "
            "plates 24 to 40 pixels wide are still read, if unsure, at times)"
        ),
    )
    min_confidence: float = field(
        default=0.0,
        metadata=doc("Reads whose confidence (lowest character) is below this are dropped"),
    )

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not 1 <= self.threads <= 16:
            problems.append(f"threads: expected 1..16, found {self.threads}")
        if not 160 <= self.det_max_side <= 4096:
            problems.append(f"det_max_side: expected 160..4096 pixels, found {self.det_max_side}")
        if not 1.0 <= self.small_frame_enlarge <= 8.0:
            problems.append(f"small_frame_enlarge: expected 1..8, found {self.small_frame_enlarge}")
        if not 1.0 <= self.dark_frame_gain <= 8.0:
            problems.append(f"dark_frame_gain: expected 1..8, found {self.dark_frame_gain}")
        if self.second_pass_max_side and not (
            self.det_max_side < self.second_pass_max_side <= 4096
        ):
            problems.append(
                f"second_pass_max_side: expected 0 or det_max_side..4096, "
                f"found {self.second_pass_max_side}"
            )
        for name in (
            "det_score",
            "vote_below",
            "candidate_score",
            "second_pass_score",
            "nms_iou",
            "min_confidence",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"{name}: expected 0..1, found {value}")
        if self.roi and (
            len(self.roi) != 4
            or self.roi[2] <= 0
            or self.roi[3] <= 0
            or self.roi[0] < 0
            or self.roi[1] < 0
        ):
            problems.append(
                f"roi: expected [] or [x, y, width, height] with positive size, found {self.roi}"
            )
        if self.min_plate_width < 0:
            problems.append(f"min_plate_width: expected >= 0, found {self.min_plate_width}")
        if not 1 <= self.read_views <= 3:
            problems.append(f"read_views: expected 1..3, found {self.read_views}")
        if self.refine_plate_px and not 48 <= self.refine_plate_px <= 512:
            problems.append(
                f"refine_plate_px: expected 0 or 48..512 pixels, found {self.refine_plate_px}"
            )
        if not 0 <= self.second_pass_windows <= 16:
            problems.append(
                f"second_pass_windows: expected 0..16, found {self.second_pass_windows}"
            )
        if self.text_line_fallback not in ("off", "yellow", "frame"):
            problems.append(
                'text_line_fallback: expected "off", "yellow" or "frame", '
                f"found {self.text_line_fallback!r}"
            )
        if not 128 <= self.text_line_max_side <= 2048:
            problems.append(
                f"text_line_max_side: expected 128..2048 pixels, found {self.text_line_max_side}"
            )
        if self.max_plates < 1:
            problems.append(f"max_plates: expected >= 1, found {self.max_plates}")
        raise_all(problems)
