"""Who is this vehicle? Fusing the plate read with the RFID tag reads.

The camera can misread or miss a plate (mud, night, double-row yellow
plates); a windscreen UHF tag is reliable but can be moved to another truck,
which is exactly the evasion inspectors look for (a compliant truck's tag on
a non-compliant one). So:

* plate and a tag agree -> ``plate+rfid``, confidence raised;
* no plate but a known tag -> identify by tag, ``source="rfid"`` so the
  ledger says the plate was not read;
* a tag registered to *another* plate -> keep the camera's plate and flag
  ``tag_mismatch`` for review.

Pure: the registry lookup is passed in as a function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Source = Literal["plate", "rfid", "plate+rfid", "none"]


class TagLike(Protocol):
    """A TagRead or a de-duplicated TagSighting (``best_rssi``) both fit."""

    epc: str


@dataclass(frozen=True)
class Identity:
    plate: str | None
    source: Source
    confidence: float
    tag: str | None = None
    flags: tuple[str, ...] = field(default_factory=tuple)
    tag_plate: str | None = None
    """The plate the registry has for ``tag`` (differs from ``plate`` on tag_mismatch)."""


def normalize_plate(plate: str) -> str:
    """Compare plates as the registry stores them: no spaces/dots/dashes, upper case."""
    return "".join(ch for ch in plate.upper() if ch not in " ·.-_•")


def _rssi(tag: object) -> float:
    for name in ("best_rssi", "rssi"):
        value = getattr(tag, name, None)
        if value is not None:
            return float(value)
    return float("-inf")


def fuse(
    plate: str | None,
    plate_confidence: float | None,
    tags: Sequence[TagLike],
    lookup: Callable[[str], str | None],
    *,
    min_plate_confidence: float = 0.5,
    rfid_confidence: float = 0.9,
    agree_bonus: float = 0.5,
) -> Identity:
    """Decide the vehicle identity from one passage's evidence.

    ``lookup`` maps a tag id (EPC or TID) to the registered plate or None.
    A plate read below ``min_plate_confidence`` is treated as unread when a
    known tag is present (but still used when nothing better exists). With
    several known tags the strongest (best RSSI) wins; ``multiple_tags`` flags it.
    """
    plate_n = normalize_plate(plate) if plate else None
    conf = (
        float(plate_confidence)
        if plate_confidence is not None
        else (0.0 if plate_n is None else 0.5)
    )
    flags: list[str] = []

    known: list[tuple[TagLike, str]] = []
    unknown: list[TagLike] = []
    for t in sorted(tags, key=_rssi, reverse=True):
        try:
            reg = lookup(t.epc)
            if reg is None and getattr(t, "tid", None):
                reg = lookup(t.tid)  # type: ignore[arg-type]
        except Exception:
            reg = None
            flags.append("lookup_failed")
        if reg:
            known.append((t, normalize_plate(reg)))
        else:
            unknown.append(t)
    if unknown:
        flags.append("unknown_tag")
    if len({p for _, p in known}) > 1:
        flags.append("multiple_tags")

    if plate_n is not None:
        match = next(((t, p) for t, p in known if p == plate_n), None)
        if match is not None:
            # the plate and an independent tag name the same vehicle
            boosted = conf + (1.0 - conf) * agree_bonus
            return Identity(
                plate_n,
                "plate+rfid",
                max(boosted, rfid_confidence),
                match[0].epc,
                tuple(flags),
                match[1],
            )
        if known:
            tag, tag_plate = known[0]
            if conf >= min_plate_confidence:
                flags.append("tag_mismatch")
                return Identity(plate_n, "plate", conf, tag.epc, tuple(flags), tag_plate)
            flags.extend(["plate_low_confidence", "tag_mismatch"])
            return Identity(
                tag_plate, "rfid", rfid_confidence * 0.8, tag.epc, tuple(flags), tag_plate
            )
        first = unknown[0].epc if unknown else None
        return Identity(plate_n, "plate", conf, first, tuple(flags), None)

    if known:
        tag, tag_plate = known[0]
        flags.append("plate_unread")
        return Identity(tag_plate, "rfid", rfid_confidence, tag.epc, tuple(flags), tag_plate)
    flags.append("plate_unread")
    first = unknown[0].epc if unknown else None
    return Identity(None, "none", 0.0, first, tuple(flags), None)
