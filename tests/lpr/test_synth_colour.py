import numpy as np
import pytest

from edged.lpr.colour import plate_colour, vehicle_class
from edged.lpr.synth import render_plate, render_scene


@pytest.mark.parametrize(
    ("text", "colour", "double"),
    [
        ("京A12345", "blue", False),
        ("鲁B67890", "yellow", False),
        ("冀E12345", "yellow", True),
        ("粤BD12345", "green", False),
        ("粤B12345D", "yellow-green", False),
        ("京A1234警", "white", False),
        ("粤Z1234港", "black", False),
    ],
)
def test_colour_of_synthetic_plates(text, colour, double):
    plate = render_plate(text, colour, double_row=double, scale=0.4)
    assert plate_colour(plate) == colour


def test_vehicle_class():
    assert vehicle_class("yellow", "鲁B67890") == "large"
    assert vehicle_class("blue", "京A12345") == "small"
    assert vehicle_class("green", "粤BD12345") == "small_nev"
    assert vehicle_class("yellow-green", "粤B12345D") == "large_nev"
    assert vehicle_class("black", "粤Z1234港") == "foreign_hkmo"
    assert vehicle_class("white", "京A1234警") == "police_military"


def test_scene_is_deterministic_and_sized():
    a = render_scene("京A12345", "blue", size=(640, 360), seed=3)
    b = render_scene("京A12345", "blue", size=(640, 360), seed=3)
    assert a.shape == (360, 640, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="colour"):
        render_plate("京A12345", "pink")
