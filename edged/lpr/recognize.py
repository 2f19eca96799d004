"""Text recogniser (PP-OCRv4, CTC) decoded under the plate grammar.

The model knows 6,600 characters; a plate uses ~70. Its output is cut down to
the plate alphabet, and each plate form (see :data:`syntax.TEMPLATES`) is
aligned to the frames with a CTC Viterbi pass whose label at each position
may be any character of that position's set. The best-scoring form wins.
Forcing position 1 to a province this way recovers the province character
that free decoding often drops. Each character's confidence is its
probability's margin over the best rival character its position allows,
which is what the read's confidence and the multi-frame vote use: a wrong
but confident plate is the worst error at a gate, and the margin is where
confusable characters (0/D/Q, 8/B) show their doubt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edged.lpr.models import open_session
from edged.lpr.syntax import ALPHABET, TEMPLATES

HEIGHT = 48
_FLOOR = 1e-8
#: Most characters kept per position as its alternatives (the read's own included).
ALTERNATIVES = 4
#: A rival character is an alternative from this probability (at its best frame).
ALTERNATIVE_FLOOR = 0.01


@dataclass(frozen=True)
class TextRead:
    text: str
    char_confidences: tuple[float, ...]
    score: float  # path log-probability, comparable between forms of one crop
    form: str
    #: each character's own probability (the confidences are margins over rivals);
    #: what the views vote with, as a measure of how cleanly a view was read
    char_probs: tuple[float, ...] = ()
    #: per position, the characters the grammar allows there that the model saw with
    #: some probability, best first, as (character, probability): what a registry
    #: match may put in place of an unsure character (edged.lpr.identify)
    char_alternatives: tuple[tuple[tuple[str, float], ...], ...] = ()

    @property
    def clarity(self) -> float:
        """Geometric mean of the characters' probabilities: how cleanly the crop read.
        One unreadable character pulls it down, as it should sink the reading."""
        probs = self.char_probs or self.char_confidences
        if not probs:
            return 0.0
        return float(np.exp(np.log(np.maximum(np.asarray(probs), 1e-4)).mean()))


@dataclass(frozen=True)
class Forms:
    """Plate forms laid out for :func:`viterbi_forms`, once per form table.

    Forms share most of their character sets (every form starts with the
    provinces, most continue with letters and ALNUM), so each distinct set
    is scored once per crop and the forms' labels index into those scores.
    """

    sets: tuple[np.ndarray, ...]  # the distinct character sets
    #: (forms, longest form): which distinct set each label takes; padding points
    #: one past the last set, a column that never wins
    index: np.ndarray
    lengths: tuple[int, ...]


def compile_forms(forms: list[list[np.ndarray]]) -> Forms:
    """Lay out ``forms`` (each a list of character sets, column indices) for decoding."""
    distinct: dict[bytes, int] = {}
    sets: list[np.ndarray] = []
    nmax = max(len(f) for f in forms)
    index = np.full((len(forms), nmax), -1, dtype=np.int64)
    for f, form in enumerate(forms):
        for k, cols in enumerate(form):
            cols = np.asarray(cols, dtype=np.int64)
            key = cols.tobytes()
            if key not in distinct:
                distinct[key] = len(sets)
                sets.append(cols)
            index[f, k] = distinct[key]
    index[index < 0] = len(sets)
    return Forms(tuple(sets), index, tuple(len(f) for f in forms))


def viterbi_forms(
    logp: np.ndarray,
    logblank: np.ndarray,
    forms: list[list[np.ndarray]] | Forms,
) -> Alignments:
    """Best CTC alignment of each form's labels (see :class:`Alignments`).

    Each label may be any character of its set. All forms run in one pass over
    the frames, stacked and padded to the longest (padding states never win).

    The per-frame work is four small numpy calls whatever the number of
    forms, so decoding every form of a crop costs about what one used to.
    """
    layout = forms if isinstance(forms, Forms) else compile_forms(forms)
    steps, nf = logp.shape[0], len(layout.lengths)
    nmax = layout.index.shape[1]
    neg = np.float32(-1e30)
    rows = np.arange(steps)
    # the best character of each distinct set at each frame, and its score
    best_val = np.full((steps, len(layout.sets) + 1), neg, dtype=np.float32)
    best_arg = np.full((steps, len(layout.sets) + 1), -1, dtype=np.int64)
    for u, cols in enumerate(layout.sets):
        sub = logp[:, cols]
        a = sub.argmax(1)
        best_arg[:, u] = cols[a]
        best_val[:, u] = sub[rows, a]
    emis = best_val[:, layout.index]  # (steps, forms, labels)
    arg = best_arg[:, layout.index]
    n_states = 2 * nmax + 1
    # what each state earns at each frame: blank (even states) or its label (odd)
    gain = np.empty((steps, nf, n_states), dtype=np.float32)
    gain[:, :, 0::2] = logblank[:, None, None]
    gain[:, :, 1::2] = emis
    # skipping the blank between two labels is only allowed when they differ
    skip = np.zeros((steps, nf, nmax - 1), dtype=np.float32)
    skip[1:][arg[1:, :, 1:] == arg[:-1, :, :-1]] = neg
    # ways[t]: the three ways into each state at frame t (rows: stay, come from the
    # state before, skip a blank); its row 0 is the score at frame t - 1. Only their
    # best is needed to go on; which one it was only to spell out the winner, so it
    # is found for all frames at once at the end.
    ways = np.full((steps + 1, 3, nf, n_states), neg, dtype=np.float32)
    ways[1, 0, :, 0] = logblank[0]
    ways[1, 0, :, 1] = emis[0, :, 0]
    best = np.empty((nf, n_states), dtype=np.float32)
    for t in range(1, steps):
        w = ways[t]
        prev = w[0]
        w[1, :, 1:] = prev[:, :-1]
        np.add(prev[:, 1:-2:2], skip[t], out=w[2, :, 3::2])
        w.max(0, out=best)
        np.add(best, gain[t], out=ways[t + 1, 0])
    score = ways[steps, 0]
    back = ways[:steps].argmax(1)  # frame 0: all rows equal, "stay"
    scores: list[float | None] = []
    ends: list[int] = []
    for f, length in enumerate(layout.lengths):
        last = 2 * length
        end = last if score[f, last] >= score[f, last - 1] else last - 1
        total = float(score[f, end])
        scores.append(None if steps < length or total < -1e29 else total)
        ends.append(end)
    return Alignments(scores, back, ends, list(layout.lengths))


@dataclass(frozen=True)
class Alignments:
    """The best CTC alignment of each form: its path score (None where the form does
    not fit), and its frames per label on request. Only the winning form is ever
    spelt out, so the others' backtracking is never paid for."""

    scores: list[float | None]
    back: np.ndarray = field(repr=False)
    ends: list[int] = field(repr=False)
    lengths: list[int] = field(repr=False)

    def frames(self, f: int) -> list[np.ndarray]:
        """The frames aligned to each label of form ``f``."""
        steps = self.back.shape[0]
        path = np.empty(steps, dtype=np.int64)
        st = self.ends[f]
        back = self.back[:, f, :]
        for t in range(steps - 1, -1, -1):
            path[t] = st
            st -= int(back[t, st])
        return [np.nonzero(path == 2 * k + 1)[0] for k in range(self.lengths[f])]


class TextRecognizer:
    """PP-OCRv4 recogniser with a plate-grammar decoder."""

    def __init__(self, model_path: str | Path, threads: int = 1) -> None:
        self.session = open_session(model_path, threads)
        self.input_name = self.session.get_inputs()[0].name
        meta = self.session.get_modelmeta().custom_metadata_map
        vocab = ["<blank>", *meta["character"].splitlines(), " "]
        index: dict[str, int] = {}
        for i, c in enumerate(vocab):
            index.setdefault(c, i)
        self.chars = "".join(c for c in ALPHABET if c in index)
        self.columns = np.array([index[c] for c in self.chars], dtype=np.int64)
        pos = {c: i for i, c in enumerate(self.chars)}
        self.template_sets = {
            name: [np.array([pos[c] for c in s if c in pos], dtype=np.int64) for s in sets]
            for name, sets in TEMPLATES.items()
        }
        self._layouts: dict[tuple[int, tuple[str, ...]], tuple[dict, Forms]] = {}

    @staticmethod
    def prepare(crops_bgr: list[np.ndarray]) -> np.ndarray:
        """Batch of crops (already HEIGHT tall) as the model's normalised RGB input."""
        width = max(c.shape[1] for c in crops_bgr)
        batch = np.zeros((len(crops_bgr), 3, HEIGHT, width), dtype=np.float32)
        for i, crop in enumerate(crops_bgr):
            if crop.shape[0] != HEIGHT:
                w = max(8, round(crop.shape[1] * HEIGHT / crop.shape[0]))
                crop = cv2.resize(crop, (w, HEIGHT), interpolation=cv2.INTER_LINEAR)
            rgb = crop[:, :, ::-1].astype(np.float32) * (2.0 / 255.0) - 1.0
            batch[i, :, :, : rgb.shape[1]] = rgb.transpose(2, 0, 1)
        return batch

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]

    def release_memory(self) -> None:
        """Give the shared arena's free memory back to the system (see
        :func:`edged.lpr.models.shrink_options`): one run on the smallest input."""
        from edged.lpr.models import shrink_options

        tiny = np.zeros((1, 3, HEIGHT, 2 * HEIGHT), np.float32)
        self.session.run(None, {self.input_name: tiny}, shrink_options())

    def decode(
        self,
        probs: np.ndarray,
        forms: tuple[str, ...] | None = None,
        sets: dict[str, list[np.ndarray]] | None = None,
    ) -> TextRead | None:
        """Best plate-grammar read of one (T, vocab) probability matrix.

        ``sets`` (form name -> character sets; the plate templates when None)
        should be a table kept for the recogniser's life: its layout is worked
        out once and kept (:func:`compile_forms`).
        """
        p = probs[:, self.columns].astype(np.float32)
        blank = np.clip(1.0 - p.sum(1), _FLOOR, 1.0)
        logp = np.log(np.maximum(p, _FLOOR))
        logblank = np.log(blank)
        table = sets if sets is not None else self.template_sets
        names = forms or tuple(table)
        aligned = viterbi_forms(logp, logblank, self._layout(table, names))
        found = [(s, i) for i, s in enumerate(aligned.scores) if s is not None]
        if not found:
            return None
        total, i = max(found, key=lambda x: x[0])
        name, frames = names[i], aligned.frames(i)  # only the winner is spelt out
        text, confs, char_probs, alts = [], [], [], []
        for cols, fr in zip(table[name], frames, strict=True):
            sub = p[fr[:, None], cols]
            j = int(sub.sum(0).argmax())
            c = int(cols[j])
            best = sub.max(0)  # each character's probability at its best frame
            order = np.argsort(-best)
            prob = float(best[j])
            # confidence = margin over the best rival the grammar allows here:
            # 0/D/Q on a small plate can each be "sure"; only the gap says so
            rival = next((float(best[k]) for k in order[:2] if k != j), 0.0)
            text.append(self.chars[c])
            char_probs.append(prob)
            confs.append(max(0.0, prob - rival))
            alts.append(self._alternatives(best, order, cols, c, prob))
        return TextRead("".join(text), tuple(confs), total, name, tuple(char_probs), tuple(alts))

    def _layout(self, table: dict[str, list[np.ndarray]], names: tuple[str, ...]) -> Forms:
        """``table``'s forms ``names`` laid out for decoding, kept per table (by
        identity: the table is held too, so its id is never reused while kept)."""
        key = (id(table), names)
        kept = self._layouts.get(key)
        if kept is not None and kept[0] is table:
            return kept[1]
        layout = compile_forms([table[n] for n in names])
        if len(self._layouts) < 64:  # a caller passing a new table each time: no growth
            self._layouts[key] = (table, layout)
        return layout

    def _alternatives(
        self, best: np.ndarray, order: np.ndarray, cols: np.ndarray, chosen: int, prob: float
    ) -> tuple[tuple[str, float], ...]:
        """The chosen character and its rivals of at least :data:`ALTERNATIVE_FLOOR`,
        at most :data:`ALTERNATIVES` in all, best first (``order``: ``best`` sorted)."""
        out = [(self.chars[chosen], round(prob, 4))]
        for k in order[:ALTERNATIVES]:
            c = int(cols[k])
            if c != chosen and best[k] >= ALTERNATIVE_FLOOR and len(out) < ALTERNATIVES:
                out.append((self.chars[c], round(float(best[k]), 4)))
        return tuple(out)

    def row_sets(self, chars_per_set: tuple[str, ...]) -> list[np.ndarray]:
        pos = {c: i for i, c in enumerate(self.chars)}
        return [np.array([pos[c] for c in s if c in pos], dtype=np.int64) for s in chars_per_set]
