"""Which registered vehicle is this? A plate read matched against the registry and RFID.

At a plant gate most trucks are registered. A read that is unsure of one or
two characters, and only there differs from exactly one registered plate,
names that vehicle as well as a sure read would; so does a read that agrees
with the plate of the truck's RFID tag everywhere it is sure. Today such a
read is a hold for the guard.

The rule is built so that it can never name the wrong vehicle where a sure
read would not have:

* A confident read (every character at or above ``sure``) is taken as it
  is: identified when registered, never replaced by a registered plate it
  does not spell.
* An unsure character may only be replaced by a character the recogniser
  itself saw there (its per-character alternatives, which the grammar
  allows at that position); sure characters must match exactly. An unsure
  character with no rival seen can only be itself; at most ``max_unsure``
  characters may be in doubt between rivals.
* Two registered plates that both fit, two RFID plates that both agree, or
  a registry match and an RFID plate that disagree: nobody is named.

Pure: no I/O. ``known`` is anything answering ``plate in known`` (a set, the
registry snapshot's ``vehicles`` dict); the candidates are spelt out from the
read's alternatives, so a 50,000-vehicle registry costs what a 50-vehicle
one does.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Literal

IdentifiedBy = Literal["exact", "registry", "rfid", "none"]
Alternatives = Sequence[Sequence[tuple[str, float]]]

#: A character whose confidence (margin over its best rival) is under this is unsure.
#: The gate's ``trigger.min_plate_confidence`` (0.8) is the natural value.
SURE = 0.8
#: A rival counts as a possible character from this probability (its best frame).
MIN_ALTERNATIVE = 0.02
#: A read in doubt between rivals at more characters than this is too little to match on.
MAX_UNSURE = 3


@dataclass(frozen=True)
class Identification:
    """What :func:`identify` decided, and why: for the passage record and the log."""

    identified: str | None  # the registered plate, or None
    identified_by: IdentifiedBy
    raw: str | None  # the read as the recogniser gave it
    #: registered (or RFID) plates that fitted the read; more than one means refused
    candidates: tuple[str, ...] = ()
    #: the positions (0-based) the read was unsure of
    unsure: tuple[int, ...] = ()
    reason: str = ""

    def to_dict(self) -> dict:
        return {
            "identified": self.identified,
            "identified_by": self.identified_by,
            "raw": self.raw,
            "candidates": list(self.candidates),
            "unsure": list(self.unsure),
            "reason": self.reason,
        }


def identify(
    text: str | None,
    char_confidences: Sequence[float],
    alternatives: Alternatives,
    known: Container[str],
    rfid_plates: Collection[str] = (),
    *,
    sure: float = SURE,
    min_alternative: float = MIN_ALTERNATIVE,
    max_unsure: int = MAX_UNSURE,
) -> Identification:
    """Identify the vehicle from one read (a frame's or a burst's vote).

    ``text``, ``char_confidences`` and ``alternatives`` are the read's (a
    :class:`~edged.lpr.pipeline.PlateRead`'s ``text``/``char_confidences``/
    ``char_alternatives`` or a :class:`~edged.lpr.vote.VoteResult`'s ``plate``/
    ``char_confidences``/``char_alternatives``); ``known`` answers whether a plate
    is registered; ``rfid_plates`` are the registered plates of the tags the
    lane's reader saw in the passage's window.

    ``identified_by``: ``exact`` (the read itself is registered and nothing else
    fits), ``registry`` (unsure characters replaced by alternatives: exactly one
    registered plate fits), ``rfid`` (an RFID plate agrees with the read wherever
    it is sure), ``none`` (``reason`` says why).
    """
    if not text:
        return Identification(None, "none", None, reason="no plate read")
    if len(char_confidences) != len(text):
        return Identification(
            None, "none", text, reason="read has no per-character confidences to match on"
        )
    unsure = tuple(i for i, c in enumerate(char_confidences) if c < sure)
    if not unsure:
        if text in known:
            return Identification(text, "exact", text, (text,), reason="confident read")
        return Identification(
            None, "none", text, reason="confident read, not registered: never replaced"
        )
    # the unsure positions where the model saw a rival: only there may a plate differ
    options: dict[int, tuple[str, ...]] = {}
    for i in unsure:
        alts = alternatives[i] if i < len(alternatives) else ()
        chars = tuple(dict.fromkeys([text[i], *(ch for ch, p in alts if p >= min_alternative)]))
        if len(chars) > 1:
            options[i] = chars
    if len(options) > max_unsure:
        return Identification(
            None,
            "none",
            text,
            unsure=unsure,
            reason=f"{len(options)} characters in doubt (at most {max_unsure} are matched)",
        )
    fits: list[str] = []
    for combo in product(*options.values()):
        chars = list(text)
        for i, ch in zip(options, combo, strict=True):
            chars[i] = ch
        plate = "".join(chars)
        if plate in known:
            fits.append(plate)
    tagged = sorted({p for p in rfid_plates if len(p) == len(text) and _agrees(p, text, unsure)})
    if tagged:
        if len(tagged) > 1:
            return Identification(
                None,
                "none",
                text,
                tuple(tagged),
                unsure,
                "two RFID plates agree with the read",
            )
        if fits and tagged[0] not in fits:
            return Identification(
                None,
                "none",
                text,
                tuple(fits + tagged),
                unsure,
                "the registry match and the RFID plate disagree",
            )
        if len(fits) != 1:
            return Identification(
                tagged[0],
                "rfid",
                text,
                tuple(tagged),
                unsure,
                "RFID plate agrees with every sure character",
            )
    if len(fits) == 1:
        how: IdentifiedBy = "exact" if fits[0] == text else "registry"
        return Identification(
            fits[0],
            how,
            text,
            tuple(fits),
            unsure,
            "the one registered plate that fits the unsure characters",
        )
    if fits:
        return Identification(
            None, "none", text, tuple(fits), unsure, "two or more registered plates fit"
        )
    return Identification(
        None, "none", text, (), unsure, "no registered plate fits and no RFID plate agrees"
    )


def identify_read(
    read: object,
    known: Container[str],
    rfid_plates: Collection[str] = (),
    **options: float,
) -> Identification:
    """:func:`identify` for a ``PlateRead`` (``text``) or a ``VoteResult`` (``plate``)."""
    text = getattr(read, "text", None) if hasattr(read, "text") else getattr(read, "plate", None)
    return identify(
        text,
        getattr(read, "char_confidences", ()),
        getattr(read, "char_alternatives", ()),
        known,
        rfid_plates,
        **options,  # type: ignore[arg-type]
    )


def _agrees(plate: str, text: str, unsure: tuple[int, ...]) -> bool:
    """``plate`` spells ``text`` wherever the read was sure."""
    return all(a == b for i, (a, b) in enumerate(zip(plate, text, strict=True)) if i not in unsure)
