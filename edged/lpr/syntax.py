"""What a mainland Chinese plate may look like (GA 36 in short), as pure functions.

A read that does not fit is reported as not a plate rather than passed on as
fact: at a gate a wrong plate that looks right is worse than no plate.
"""

from __future__ import annotations

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # I and O are never issued
DIGITS = "0123456789"
ALNUM = LETTERS + DIGITS
SUFFIXES = "挂学警领港澳使"
NEV_MARKS = "DF"
#: Every character a plate can contain; the recogniser's output is restricted to it.
ALPHABET = PROVINCES + ALNUM + SUFFIXES


def check_plate(text: str) -> str | None:
    """Return why ``text`` is not a valid plate, or None when it is."""
    n = len(text)
    if n not in (7, 8):
        return f"length: a plate has 7 characters (8 for new-energy), found {n}"
    for i, c in enumerate(text):
        if c not in ALPHABET and c not in "IO":
            return f"position {i + 1}: {c!r} is not a plate character"
        if c in "IO":
            return f"position {i + 1}: letters I and O are not used on plates"
    if text[0] == "使":
        if n == 7 and text[1:].isdigit():
            return None
        return "embassy plate: 使 must be followed by 6 digits"
    if text[0] not in PROVINCES:
        return f"position 1: {text[0]!r} is not a province character"
    if text[1] not in LETTERS:
        return f"position 2: expected a letter (issuing office), found {text[1]!r}"
    body = text[2:]
    if n == 7:
        for i, c in enumerate(body[:4], start=3):
            if c not in ALNUM:
                return f"position {i}: expected a letter or digit, found {c!r}"
        if body[4] not in ALNUM and body[4] not in SUFFIXES:
            return f"position 7: expected a letter, digit or one of {SUFFIXES}, found {body[4]!r}"
        return None
    # 8 characters: new-energy plates only, D/F marks the vehicle type.
    if any(c in SUFFIXES for c in body):
        return "new-energy plates have no special suffix (挂/学/警/使/领)"
    if body[0] in NEV_MARKS:  # small NEV: D/F, letter or digit, then 4 digits
        if body[1] not in ALNUM:
            return f"position 4: expected a letter or digit, found {body[1]!r}"
        if not body[2:].isdigit():
            return "new-energy plate (small): positions 5-8 must be digits"
        return None
    if body[5] in NEV_MARKS:  # large NEV: 5 digits, then D/F
        if not body[:5].isdigit():
            return "new-energy plate (large): positions 3-7 must be digits"
        return None
    return "8-character plates are new-energy: D or F must be at position 3 (small) or 8 (large)"


def is_valid_plate(text: str) -> bool:
    return check_plate(text) is None


#: Plate grammar as per-position character sets, one template per plate form.
#: The recogniser decodes under each and keeps the most likely.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "standard": (PROVINCES, LETTERS, ALNUM, ALNUM, ALNUM, ALNUM, ALNUM),
    "special": (PROVINCES, LETTERS, ALNUM, ALNUM, ALNUM, ALNUM, "挂学警领港澳"),
    "nev_small": (PROVINCES, LETTERS, NEV_MARKS, ALNUM, DIGITS, DIGITS, DIGITS, DIGITS),
    "nev_large": (PROVINCES, LETTERS, DIGITS, DIGITS, DIGITS, DIGITS, DIGITS, NEV_MARKS),
    "embassy": ("使", DIGITS, DIGITS, DIGITS, DIGITS, DIGITS, DIGITS),
}
