"""The perturbations of the plate robustness bench do what their names say."""

from __future__ import annotations

import numpy as np

from bench import lpr_robust_bench as robust
from bench import run_all


def _image() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (60, 200, 3), dtype=np.uint8)


def test_the_bench_is_listed_by_run_all() -> None:
    assert "lpr_robust_bench" in [p.stem for p in run_all.discover()]
    names = [name for name, _ in robust.PERTURBATIONS]
    assert names[0] == "clean" and len(names) == 7


def test_scale_blur_brightness_and_jpeg() -> None:
    img = _image()
    assert robust.scale(0.5)(img).shape == (30, 100, 3)
    blurred = robust.blur(1.5)(img)
    assert blurred.shape == img.shape and blurred.std() < img.std() * 0.6
    dark = robust.brightness(0.4)(img)
    assert abs(float(dark.mean()) - 0.4 * float(img.mean())) < 1.0
    squeezed = robust.jpeg(30)(img)
    assert squeezed.shape == img.shape and not np.array_equal(squeezed, img)


def test_rotation_keeps_the_whole_image() -> None:
    img = np.zeros((60, 200, 3), np.uint8)
    img[:, :4] = 255  # a bright left edge: must survive the turn
    turned = robust.rotate(8.0)(img)
    # the canvas grows to hold the turned rectangle: w cos + h sin, h cos + w sin
    assert turned.shape[:2] == (
        round(60 * 0.9903 + 200 * 0.1392),
        round(200 * 0.9903 + 60 * 0.1392),
    )
    assert int((turned[:, :, 0] > 128).sum()) >= 0.9 * 60 * 4
