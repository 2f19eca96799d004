import pytest

from edged.lpr.syntax import check_plate, is_valid_plate

VALID = [
    "京A12345",
    "皖AD11166",
    "粤B12345D",
    "粤BD1234X".replace("X", "5"),
    "鲁B6789挂",
    "粤A1234学",
    "京A1234警",
    "使014578",
    "沪A1234领",
    "粤Z1234港",
    "苏E88866",
    "浙AF12345",
]
INVALID = [
    ("京A1234", "length"),
    ("京A1234567", "length"),
    ("AB12345", "position 1"),
    ("京112345", "position 2"),
    ("京AI2345", "I and O"),
    ("京A12O45", "I and O"),
    ("京A挂2345", "position 3"),
    ("京A1234X5", "8-character"),
    ("粤BD1234挂", "suffix"),
    ("粤BDX23A5", "positions 5-8"),
    ("粤B1234AD", "positions 3-7"),
    ("使01457A", "embassy"),
    ("京A1234#", "not a plate character"),
    ("", "length"),
]


@pytest.mark.parametrize("text", VALID)
def test_valid_plates(text):
    assert check_plate(text) is None
    assert is_valid_plate(text)


@pytest.mark.parametrize(("text", "fragment"), INVALID)
def test_invalid_plates_say_why(text, fragment):
    err = check_plate(text)
    assert err is not None and fragment in err
