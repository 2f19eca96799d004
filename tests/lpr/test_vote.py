from edged.lpr.pipeline import PlateRead
from edged.lpr.syntax import check_plate
from edged.lpr.vote import vote


def read(text, confs, colour="blue"):
    err = check_plate(text)
    return PlateRead(
        text,
        min(confs),
        tuple(confs),
        colour,
        "small",
        ((0, 0), (1, 0), (1, 1), (0, 1)),
        err is None,
        err,
        0.9,
    )


def test_vote_per_character_weighted_by_confidence():
    frames = [
        [read("京A12345", [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9])],
        [read("京A12845", [0.9, 0.9, 0.9, 0.9, 0.3, 0.9, 0.9])],
        [read("皖A12845", [0.2, 0.9, 0.9, 0.9, 0.3, 0.9, 0.9])],
        [],
    ]
    res = vote(frames)
    assert res.plate == "京A12345"
    assert res.frames == 4 and res.frames_with_plate == 3
    assert res.valid_syntax
    assert 0 < res.confidence < 1
    assert res.best_frame == 0 and res.best is frames[0][0]


def test_valid_reads_outvote_invalid_and_length_is_voted():
    frames = [
        [read("京A1234", [0.99] * 6)],
        [read("粤BD12345", [0.8] * 8)],
        [read("粤BD12345", [0.7] * 8)],
    ]
    res = vote(frames)
    assert res.plate == "粤BD12345"


def test_vote_nothing():
    res = vote([[], []])
    assert res.plate is None and res.frames == 2 and res.frames_with_plate == 0
    assert res.best is None
