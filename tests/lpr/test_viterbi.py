"""The stacked multi-form CTC Viterbi against a plain one-form reference."""

from __future__ import annotations

import numpy as np

from edged.lpr.recognize import compile_forms, viterbi_forms


def reference(
    logp: np.ndarray,
    logblank: np.ndarray,
    sets: list[np.ndarray],
) -> tuple[float, list[np.ndarray]] | None:
    """Best CTC alignment of ``len(sets)`` labels; returns (path score, frames per label)."""
    steps, n = logp.shape[0], len(sets)
    if steps < n:
        return None
    emis = np.empty((steps, n), dtype=np.float32)
    arg = np.empty((steps, n), dtype=np.int64)
    for k, cols in enumerate(sets):
        sub = logp[:, cols]
        a = sub.argmax(1)
        arg[:, k] = cols[a]
        emis[:, k] = sub[np.arange(steps), a]
    n_states = 2 * n + 1
    neg = np.float32(-1e30)
    score = np.full(n_states, neg, dtype=np.float32)
    score[0] = logblank[0]
    score[1] = emis[0, 0]
    back = np.zeros((steps, n_states), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    odd = np.arange(1, n_states, 2)
    for t in range(1, steps):
        prev1 = np.concatenate(([neg], score[:-1]))
        prev2 = np.full(n_states, neg, dtype=np.float32)
        # skipping the blank between two labels is only allowed when they differ
        diff = arg[t, 1:] != arg[t - 1, :-1]
        prev2[odd[1:]] = np.where(diff, score[odd[:-1]], neg)
        stacked = np.stack([score, prev1, prev2])
        choice = stacked.argmax(0)
        best = stacked[choice, np.arange(n_states)]
        emit = np.empty(n_states, dtype=np.float32)
        emit[0::2] = logblank[t]
        emit[1::2] = emis[t]
        score = best + emit
        back[t] = choice
    end = n_states - 1 if score[-1] >= score[-2] else n_states - 2
    total = float(score[end])
    if total < -1e29:
        return None
    path = np.empty(steps, dtype=np.int64)
    s = end
    for t in range(steps - 1, -1, -1):
        path[t] = s
        s -= int(back[t, s])
    frames = [np.nonzero(path == 2 * k + 1)[0] for k in range(n)]
    return total, frames


def test_stacked_forms_match_the_one_form_reference_on_random_outputs() -> None:
    rng = np.random.default_rng(0)
    compared = 0
    for _ in range(200):
        steps, vocab = int(rng.integers(4, 45)), 70
        p = rng.dirichlet(np.ones(vocab + 1) * rng.uniform(0.05, 1), size=steps)
        logp = np.log(np.maximum(p[:, 1:], 1e-8)).astype(np.float32)
        logblank = np.log(np.maximum(p[:, 0], 1e-8)).astype(np.float32)
        forms = [
            [
                rng.choice(vocab, size=int(rng.integers(1, 20)), replace=False)
                for _ in range(int(rng.integers(1, 9)))
            ]
            for _ in range(int(rng.integers(1, 6)))
        ]
        aligned = viterbi_forms(logp, logblank, forms)
        for f, sets in enumerate(forms):
            want, got = reference(logp, logblank, sets), aligned.scores[f]
            assert (want is None) == (got is None)
            if want is not None:
                compared += 1
                assert abs(want[0] - got) <= 1e-3 * max(1.0, abs(want[0]))
                for a, b in zip(want[1], aligned.frames(f), strict=True):
                    assert np.array_equal(a, b)
    assert compared > 300


def test_form_longer_than_the_frames_gives_none() -> None:
    logp = np.log(np.full((3, 5), 0.1, np.float32))
    logblank = np.log(np.full(3, 0.5, np.float32))
    forms = [[np.arange(5)] * 4, [np.arange(5)] * 2]
    long_form, short_form = viterbi_forms(logp, logblank, forms).scores
    assert long_form is None and short_form is not None


def test_forms_share_their_character_sets_and_decode_as_laid_out_once() -> None:
    rng = np.random.default_rng(3)
    sets = [rng.choice(70, size=12, replace=False) for _ in range(3)]
    forms = [[sets[0], sets[1], sets[2]], [sets[0], sets[2]], [sets[0], sets[1]] * 2]
    layout = compile_forms(forms)
    assert len(layout.sets) == 3 and layout.lengths == (3, 2, 4)
    assert (layout.index[1, 2:] == 3).all()  # padding: one past the last set
    p = rng.dirichlet(np.ones(71) * 0.3, size=30)
    logp = np.log(np.maximum(p[:, 1:], 1e-8)).astype(np.float32)
    logblank = np.log(np.maximum(p[:, 0], 1e-8)).astype(np.float32)
    a, b = viterbi_forms(logp, logblank, forms), viterbi_forms(logp, logblank, layout)
    assert a.scores == b.scores
    assert all(np.array_equal(x, y) for x, y in zip(a.frames(2), b.frames(2), strict=True))


def test_a_recogniser_keeps_one_layout_per_table(recognizer) -> None:
    rec = recognizer.recognizer
    probs = np.random.default_rng(5).dirichlet(np.ones(6625) * 0.05, size=24).astype(np.float32)
    kept = rec.decode(probs)
    assert kept is not None
    n = len(rec._layouts)
    assert rec.decode(probs) == kept and len(rec._layouts) == n  # laid out once
    for _ in range(100):  # a caller building a new table each time: same read, no growth
        assert rec.decode(probs, None, dict(rec.template_sets)) == kept
    assert len(rec._layouts) <= 64
