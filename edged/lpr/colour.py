"""Plate colour from the rectified crop, and the vehicle class it implies.

Colour decides the vehicle class at a gate (yellow = large vehicle, the ones
the emission rules target), so it is read from the plate's own pixels:
every pixel is binned into a colour by HSV and the background is the
dominant bin. Thresholds are wide on purpose: plates are photographed under
sodium lamps, IR and low sun.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

Colour = Literal["blue", "yellow", "green", "yellow-green", "white", "black", "unknown"]
VehicleClass = Literal[
    "small", "large", "small_nev", "large_nev", "police_military", "foreign_hkmo", "unknown"
]

VEHICLE_CLASS: dict[str, VehicleClass] = {
    "blue": "small",  # 小型汽车
    "yellow": "large",  # 大型汽车
    "green": "small_nev",  # 小型新能源
    "yellow-green": "large_nev",  # 大型新能源
    "white": "police_military",  # 警用 / 军用
    "black": "foreign_hkmo",  # 外籍 / 港澳
    "unknown": "unknown",
}


def colour_fractions(crop_bgr: np.ndarray) -> dict[str, float]:
    """Share of the plate's inner pixels in each colour bin."""
    h, w = crop_bgr.shape[:2]
    inner = crop_bgr[int(h * 0.1) : max(int(h * 0.9), 1), int(w * 0.04) : max(int(w * 0.96), 1)]
    hsv = cv2.cvtColor(inner, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int16)
    hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    chroma = (sat > 45) & (val > 35)
    n = max(len(hue), 1)
    return {
        "blue": float(np.count_nonzero(chroma & (hue >= 95) & (hue <= 130))) / n,
        "yellow": float(np.count_nonzero(chroma & (hue >= 11) & (hue <= 34))) / n,
        "green": float(np.count_nonzero(chroma & (hue >= 35) & (hue <= 90))) / n,
        "white": float(np.count_nonzero((sat <= 70) & (val >= 150))) / n,
        "black": float(np.count_nonzero(val < 80)) / n,
    }


def plate_colour(crop_bgr: np.ndarray) -> Colour:
    if crop_bgr.size == 0:
        return "unknown"
    f = colour_fractions(crop_bgr)
    if f["blue"] >= 0.25 and f["blue"] >= max(f["yellow"], f["green"]):
        return "blue"
    if f["green"] >= 0.12 and f["yellow"] >= 0.12:
        return "yellow-green"
    if f["green"] >= 0.15 and f["green"] > f["yellow"]:
        return "green"
    if f["yellow"] >= 0.2:
        return "yellow"
    if f["white"] >= 0.35 and f["white"] > f["black"]:
        return "white"
    if f["black"] >= 0.35:
        return "black"
    return "unknown"


def vehicle_class(colour: str, text: str = "") -> VehicleClass:
    """Class implied by the colour, refined by the text for new-energy plates."""
    if len(text) == 8 and colour in ("green", "yellow-green", "unknown"):
        return "large_nev" if text[-1] in "DF" else "small_nev"
    if text.endswith(("港", "澳")) or text.startswith("使") or text.endswith("领"):
        return "foreign_hkmo"
    if text.endswith("警"):
        return "police_military"
    return VEHICLE_CLASS.get(colour, "unknown")
