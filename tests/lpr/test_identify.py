"""The identification rule: a read matched against the registry and the lane's RFID plates."""

from __future__ import annotations

import argparse
import json

import cv2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edged.lpr import cli
from edged.lpr.identify import identify, identify_read
from edged.lpr.pipeline import PlateRead, merge_alternatives
from edged.lpr.syntax import ALNUM
from edged.lpr.vote import vote
from tests.conftest import shared_data

SURE7 = (0.99,) * 7


def _alts(text: str, **rivals: list[tuple[str, float]]) -> tuple:
    """Alternatives of ``text``: its own characters, plus ``p<i>=[(ch, prob)]`` rivals."""
    return tuple(((ch, 0.99), *rivals.get(f"p{i}", [])) for i, ch in enumerate(text))


def _unsure_at(i: int, conf: float = 0.3) -> tuple[float, ...]:
    return tuple(conf if k == i else 0.99 for k in range(7))


def test_a_confident_registered_read_is_identified_exactly() -> None:
    got = identify("皖AD028K", SURE7, _alts("皖AD028K"), {"皖AD028K", "皖A0028K"})
    assert (got.identified, got.identified_by, got.raw) == ("皖AD028K", "exact", "皖AD028K")


def test_a_confident_read_is_never_replaced_by_a_registered_plate() -> None:
    # one character from a registered plate, the rival even among the alternatives:
    # a sure read of an unregistered plate stays unregistered
    got = identify("浙GR0L16", SURE7, _alts("浙GR0L16", p0=[("湘", 0.5)]), {"湘GR0L16"})
    assert got.identified is None and got.identified_by == "none"
    assert "never replaced" in got.reason


def test_an_unsure_character_is_resolved_by_its_alternatives() -> None:
    alts = _alts("浙D3350Z", p5=[("D", 0.31), ("Q", 0.05)])
    got = identify("浙D3350Z", _unsure_at(5, 0.63), alts, {"浙D335DZ", "皖A12345"})
    assert (got.identified, got.identified_by, got.raw) == ("浙D335DZ", "registry", "浙D3350Z")
    assert got.unsure == (5,) and got.candidates == ("浙D335DZ",)


def test_an_unsure_read_that_is_itself_registered_is_exact() -> None:
    alts = _alts("浙D3350Z", p5=[("D", 0.31)])
    got = identify("浙D3350Z", _unsure_at(5), alts, {"浙D3350Z"})
    assert (got.identified, got.identified_by) == ("浙D3350Z", "exact")


def test_two_registered_plates_that_fit_are_refused() -> None:
    alts = _alts("浙D3350Z", p5=[("D", 0.31)])
    got = identify("浙D3350Z", _unsure_at(5), alts, {"浙D335DZ", "浙D3350Z"})
    assert got.identified is None and got.identified_by == "none"
    assert set(got.candidates) == {"浙D335DZ", "浙D3350Z"}
    assert "two or more" in got.reason


def test_only_unsure_characters_may_differ() -> None:
    # the registered plate differs at a sure position: no match, whatever the rivals
    alts = _alts("浙D3350Z", p5=[("D", 0.31)], p6=[("2", 0.2)])
    got = identify("浙D3350Z", _unsure_at(5), alts, {"浙D335D2"})
    assert got.identified is None and got.candidates == ()


def test_a_character_the_model_did_not_see_is_no_alternative() -> None:
    alts = _alts("浙D3350Z", p5=[("D", 0.01)])  # under MIN_ALTERNATIVE
    got = identify("浙D3350Z", _unsure_at(5), alts, {"浙D335DZ"})
    assert got.identified is None


def test_a_read_in_doubt_at_too_many_characters_is_not_matched() -> None:
    confs = (0.3, 0.3, 0.3, 0.3, 0.99, 0.99, 0.99)
    rivals = {f"p{i}": [(c, 0.3)] for i, c in enumerate("京B89")}
    got = identify("皖A12345", confs, _alts("皖A12345", **rivals), {"皖A12345"}, {"皖A12345"})
    assert got.identified is None and "4 characters in doubt" in got.reason


def test_unsure_characters_without_a_rival_can_only_be_themselves() -> None:
    # every character under the bar, none with a rival the model saw: only the read fits
    confs = (0.7,) * 8
    got = identify("皖AD11166", confs, _alts("皖AD11166"), {"皖AD11166", "皖AD11168"})
    assert (got.identified, got.identified_by) == ("皖AD11166", "exact")
    assert got.unsure == tuple(range(8))


def test_rfid_plate_agreeing_with_a_partial_read_identifies() -> None:
    # the unsure province's true character is not even among the alternatives
    got = identify("鄂E269JY", _unsure_at(0, 0.1), _alts("鄂E269JY"), {"湘E269JY"}, {"湘E269JY"})
    assert (got.identified, got.identified_by, got.raw) == ("湘E269JY", "rfid", "鄂E269JY")


def test_rfid_plate_disagreeing_at_a_sure_character_is_refused() -> None:
    got = identify("鄂E269JY", _unsure_at(0, 0.1), _alts("鄂E269JY"), {"湘E269JX"}, {"湘E269JX"})
    assert got.identified is None and got.identified_by == "none"
    assert "no RFID plate agrees" in got.reason


def test_rfid_never_overrides_a_confident_read() -> None:
    got = identify("鄂E269JY", SURE7, _alts("鄂E269JY"), {"湘E269JY"}, {"湘E269JY"})
    assert got.identified is None


def test_two_agreeing_rfid_plates_are_refused() -> None:
    got = identify(
        "鄂E269JY",
        _unsure_at(0, 0.1),
        _alts("鄂E269JY"),
        {"湘E269JY", "赣E269JY"},
        {"湘E269JY", "赣E269JY"},
    )
    assert got.identified is None and "two RFID plates" in got.reason


def test_registry_match_and_rfid_plate_that_disagree_are_refused() -> None:
    alts = _alts("浙D3350Z", p5=[("D", 0.31)])
    got = identify("浙D3350Z", _unsure_at(5), alts, {"浙D335DZ", "浙D3358Z"}, {"浙D3358Z"})
    assert got.identified is None and "disagree" in got.reason


def test_rfid_settles_between_two_registered_plates_that_fit() -> None:
    alts = _alts("浙D3350Z", p5=[("D", 0.31)])
    got = identify("浙D3350Z", _unsure_at(5), alts, {"浙D335DZ", "浙D3350Z"}, {"浙D335DZ"})
    assert (got.identified, got.identified_by) == ("浙D335DZ", "rfid")


def test_nothing_read_identifies_nothing() -> None:
    assert identify(None, (), (), {"皖A12345"}).identified_by == "none"
    assert identify("皖A12345", (), (), {"皖A12345"}).identified is None


@given(
    text=st.text(alphabet=ALNUM, min_size=5, max_size=5).map(lambda t: "皖A" + t),
    confs=st.lists(st.sampled_from([0.1, 0.5, 0.79, 0.8, 0.95]), min_size=7, max_size=7),
    rivals=st.lists(st.sampled_from(list(ALNUM)), min_size=7, max_size=7),
    flips=st.lists(st.integers(0, 6), max_size=3),
    tags=st.booleans(),
)
def test_identified_plates_are_registered_and_spell_every_sure_character(
    text: str, confs: list[float], rivals: list[str], flips: list[int], tags: bool
) -> None:
    alts = tuple(((c, 0.9), (r, 0.2)) for c, r in zip(text, rivals, strict=True))
    known = set()
    for i in flips:  # registered plates one character away, at any position
        known.add(text[:i] + rivals[i] + text[i + 1 :])
    got = identify(text, confs, alts, known, known if tags else ())
    if got.identified is not None:
        assert got.identified in known
        assert all(a == b for a, b, c in zip(got.identified, text, confs, strict=True) if c >= 0.8)
        assert got.identified_by in ("exact", "registry", "rfid")
    else:
        assert got.identified_by == "none" and got.reason


def test_alternatives_merge_what_other_views_read() -> None:
    merged = merge_alternatives(
        [
            ("浙D3350Z", _alts("浙D3350Z", p5=[("Q", 0.05)])),
            ("浙D335DZ", _alts("浙D335DZ")),
            ("浙D335", ()),  # another length: not merged
        ],
        "浙D3350Z",
    )
    assert merged[5][0] == ("0", 0.99)
    assert {ch for ch, _ in merged[5]} == {"0", "D", "Q"}
    assert merged[0] == (("浙", 0.99),)


def _plate(text: str, confs: tuple[float, ...], alts: tuple) -> PlateRead:
    return PlateRead(
        text, min(confs), confs, "blue", "small", (), True, None, 0.9, False, 1.0, alts
    )


def test_identify_a_burst_vote_and_a_frame_read() -> None:
    a = _plate("浙D3350Z", _unsure_at(5, 0.5), _alts("浙D3350Z"))
    b = _plate("浙D335DZ", _unsure_at(5, 0.4), _alts("浙D335DZ"))
    result = vote([[a], [b], [a]])
    assert result.plate == "浙D3350Z"
    assert {ch for ch, _ in result.char_alternatives[5]} == {"0", "D"}
    got = identify_read(result, {"浙D335DZ"})
    assert (got.identified, got.identified_by) == ("浙D335DZ", "registry")
    assert identify_read(a, {"浙D335DZ"}).identified is None  # one frame never saw a D


def test_cli_prints_the_identified_plate(recognizer, tmp_path, capsys) -> None:
    from tests.lpr.conftest import MODEL_DIR

    crop = shared_data("plates-dev") / "crop" / "lprnet_0011.jpg"  # 浙D335DZ, read 0 for D
    image = tmp_path / "plate.png"
    cv2.imwrite(str(image), cv2.imread(str(crop)))
    known = tmp_path / "known.txt"
    known.write_text("# registry\n浙D335DZ\n\n京A12345\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    argv = ["lpr", "read", "--json", "--model-dir", str(MODEL_DIR), "--known-plates", str(known)]
    args = parser.parse_args([*argv, str(image)])
    assert args.func(args) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    plate = out[0]["plates"][0]
    assert plate["text"] == "浙D3350Z" and plate["confidence"] < 0.8
    assert (plate["identified"], plate["identified_by"]) == ("浙D335DZ", "registry")
    # a registry line that is not a plate stops the command, naming the line
    known.write_text("浙D335DZ\nnot-a-plate\n", encoding="utf-8")
    args = parser.parse_args([*argv, str(image)])
    assert args.func(args) == 2
    assert f"{known}:2" in capsys.readouterr().err


@pytest.mark.parametrize("conf", [0.79, 0.8])
def test_sure_is_the_threshold_for_a_confident_character(conf: float) -> None:
    got = identify(
        "浙D3350Z", _unsure_at(5, conf), _alts("浙D3350Z", p5=[("D", 0.3)]), {"浙D335DZ"}
    )
    assert (got.identified is not None) == (conf < 0.8)
