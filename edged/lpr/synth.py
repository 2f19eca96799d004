"""Synthetic plates and gate scenes, for unit tests and the demo camera.

No labelled white, black or double-row plates exist in the dev set, so these
are drawn: plate geometry after GA 36 (440x140 mm single row, 440x220 mm
double row, 480x140 mm new-energy), characters in a CJK font from the OS
(fonts-wqy-microhei), pasted onto a plain vehicle front with optional
perspective.
"""

from __future__ import annotations

import glob
import shutil
import subprocess
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# background RGB, text RGB
STYLES = {
    "blue": ((10, 60, 190), (245, 245, 245)),
    "yellow": ((245, 190, 10), (15, 15, 15)),
    "green": ((90, 200, 110), (15, 15, 15)),
    "yellow-green": ((245, 190, 10), (15, 15, 15)),
    "white": ((240, 240, 240), (15, 15, 15)),
    "black": ((15, 15, 15), (245, 245, 245)),
}
FONT_GLOBS = (
    "/usr/share/fonts/**/wqy-microhei.ttc",
    "/usr/share/fonts/**/wqy-zenhei.ttc",
    "/usr/share/fonts/**/NotoSansCJK*.tt*",
)


@lru_cache(maxsize=1)
def find_cjk_font() -> str:
    """A font file with Chinese glyphs, via fontconfig first, then well-known folders."""
    if shutil.which("fc-match"):
        try:
            out = subprocess.run(
                ["fc-match", "-f", "%{file}", "sans-serif:lang=zh-cn"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
            if out and ("wqy" in out.lower() or "cjk" in out.lower()):
                return out
        except (OSError, subprocess.SubprocessError):
            pass
    for pattern in FONT_GLOBS:
        hits = sorted(glob.glob(pattern, recursive=True))
        if hits:
            return hits[0]
    raise FileNotFoundError("no CJK font found: install the OS package fonts-wqy-microhei")


def _char(
    ch: str, w: int, h: int, colour: tuple[int, int, int], bg: tuple[int, int, int]
) -> Image.Image:
    font = ImageFont.truetype(find_cjk_font(), 200)
    box = font.getbbox(ch)
    img = Image.new("RGB", (box[2] - box[0] + 4, box[3] - box[1] + 4), bg)
    ImageDraw.Draw(img).text((2 - box[0], 2 - box[1]), ch, font=font, fill=colour)
    return img.resize((w, h), Image.Resampling.LANCZOS)


def render_plate(
    text: str, colour: str = "blue", double_row: bool = False, scale: float = 1.0
) -> np.ndarray:
    """Plate image (BGR) of ``text`` at ``scale`` pixels per millimetre."""
    if colour not in STYLES:
        raise ValueError(f"colour: expected one of {sorted(STYLES)}, found {colour!r}")
    bg, fg = STYLES[colour]
    n = len(text)
    width = 480 if n == 8 else 440
    height = 220 if double_row else 140
    img = Image.new("RGB", (width, height), bg)
    draw = ImageDraw.Draw(img)
    if colour == "green":  # small NEV: white at the top fading to green
        for y in range(height):
            t = y / height
            draw.line([(0, y), (width, y)], fill=tuple(int(240 * (1 - t) + c * t) for c in bg))
    elif colour == "yellow-green":  # large NEV: green band on the left
        draw.rectangle([0, 0, int(width * 0.3), height], fill=(90, 200, 110))
    draw.rectangle([4, 4, width - 5, height - 5], outline=fg, width=3)
    if double_row:
        top, bottom = text[:2], text[2:]
        for i, ch in enumerate(top):
            x = 110 + i * 140
            img.paste(_char(ch, 80, 60, fg, bg), (x, 15))
        step = (width - 30) / len(bottom)
        for i, ch in enumerate(bottom):
            img.paste(
                _char(ch, int(step * 0.8), 110, fg, bg), (int(15 + i * step + step * 0.1), 95)
            )
    else:
        cw, gap = (43, 9) if n == 8 else (45, 12)
        x = 15.0
        for i, ch in enumerate(text):
            img.paste(
                _char(ch, cw, 90, fg, bg if colour != "green" else (200, 230, 200)), (int(x), 25)
            )
            x += cw + gap + (20 if i == 1 else 0)  # wider space after the issuing-office letter
    plate = cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)
    if scale != 1.0:
        plate = cv2.resize(
            plate, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
        )
    return plate


def render_scene(
    text: str,
    colour: str = "blue",
    size: tuple[int, int] = (1280, 720),
    seed: int = 0,
    double_row: bool = False,
    plate_width: int | None = None,
    tilt: float = 0.0,
) -> np.ndarray:
    """A vehicle front at a gate with the plate on its bumper (BGR, ``size`` = (w, h))."""
    rng = np.random.default_rng(seed)
    w, h = size
    ys = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky = np.array([200, 190, 170], np.float32)
    road = np.array([90, 90, 95], np.float32)
    scene = (sky * (1 - ys) + road * ys) * np.ones((h, w, 3), np.float32)
    body = rng.integers(40, 220, 3).astype(np.float32)
    x0, x1, y0, y1 = int(w * 0.2), int(w * 0.8), int(h * 0.15), int(h * 0.95)
    scene[y0:y1, x0:x1] = body
    scene[y0 + int(h * 0.05) : y0 + int(h * 0.3), x0 + 30 : x1 - 30] = (60, 55, 50)  # windscreen
    scene[int(h * 0.7) : int(h * 0.78), x0:x1] = body * 0.6  # bumper
    scene += rng.normal(0, 4, scene.shape).astype(np.float32)
    scene = np.clip(scene, 0, 255).astype(np.uint8)
    plate = render_plate(text, colour, double_row)
    pw = plate_width or int(w * 0.16)
    ph = round(plate.shape[0] * pw / plate.shape[1])
    plate = cv2.resize(plate, (pw, ph), interpolation=cv2.INTER_AREA)
    cx = w / 2 + rng.uniform(-0.05, 0.05) * w
    cy = h * 0.72 + rng.uniform(-0.03, 0.03) * h
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    skew = tilt * ph
    dst = np.float32(
        [
            [cx - pw / 2, cy - ph / 2 - skew],
            [cx + pw / 2, cy - ph / 2 + skew],
            [cx + pw / 2, cy + ph / 2 + skew],
            [cx - pw / 2, cy + ph / 2 - skew],
        ]
    )
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(plate, m, (w, h))
    mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), m, (w, h))
    scene[mask > 127] = warped[mask > 127]
    return cv2.GaussianBlur(scene, (3, 3), 0)
