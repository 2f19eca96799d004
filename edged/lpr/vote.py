"""Multi-frame voting: one passage, one plate, from a burst of frames.

Per character position, every frame's character gets a vote weighted by its
confidence; the plate length is voted first so 7- and 8-character reads do
not mix. Only syntactically valid reads vote when there are any.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from edged.lpr.pipeline import PlateRead, merge_alternatives
from edged.lpr.syntax import check_plate


@dataclass(frozen=True)
class VoteResult:
    plate: str | None  # None: no frame had a plate
    confidence: float  # lowest per-position share of the vote
    char_confidences: tuple[float, ...]
    frames: int  # frames in the burst
    frames_with_plate: int
    colour: str
    valid_syntax: bool
    best: PlateRead | None  # the single read closest to the result (for the snapshot)
    best_frame: int | None  # index of that read's frame in the burst
    #: per character of ``plate``: (character, probability) of the voted one and of
    #: every rival a frame read or saw there, best first (edged.lpr.identify)
    char_alternatives: tuple[tuple[tuple[str, float], ...], ...] = ()


def vote(reads: list[list[PlateRead]]) -> VoteResult:
    """Reduce per-frame reads (frame -> plates) to the passage's plate."""
    cands: list[tuple[int, PlateRead]] = []
    for i, frame in enumerate(reads):
        if frame:
            cands.append((i, max(frame, key=lambda r: (r.valid_syntax, r.confidence))))
    if not cands:
        return VoteResult(None, 0.0, (), len(reads), 0, "unknown", False, None, None)
    valid = [(i, r) for i, r in cands if r.valid_syntax]
    pool = valid or cands
    by_len: dict[int, float] = defaultdict(float)
    for _, r in pool:
        by_len[len(r.text)] += sum(r.char_confidences) / max(len(r.char_confidences), 1)
    length = max(by_len, key=lambda n: by_len[n])
    pool = [(i, r) for i, r in pool if len(r.text) == length]
    chars, confs = [], []
    for pos in range(length):
        weights: dict[str, float] = defaultdict(float)
        for _, r in pool:
            weights[r.text[pos]] += max(r.char_confidences[pos], 1e-6)
        ch = max(weights, key=lambda c: weights[c])
        chars.append(ch)
        confs.append(
            weights[ch]
            / sum(weights.values())
            * max(r.char_confidences[pos] for _, r in pool if r.text[pos] == ch)
        )
    plate = "".join(chars)
    colours: dict[str, float] = defaultdict(float)
    for _, r in pool:
        colours[r.colour] += r.confidence + 1e-6
    best_i, best = max(
        pool,
        key=lambda ir: (
            sum(a == b for a, b in zip(ir[1].text, plate, strict=True)),
            ir[1].confidence,
        ),
    )
    return VoteResult(
        plate,
        min(confs),
        tuple(confs),
        len(reads),
        len(cands),
        max(colours, key=lambda c: colours[c]),
        check_plate(plate) is None,
        best,
        best_i,
        merge_alternatives([(r.text, r.char_alternatives) for _, r in pool], plate),
    )
