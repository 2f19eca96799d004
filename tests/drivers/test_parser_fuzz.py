"""Random bytes never crash a parser, and never grow its buffer without bound."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.rfid.asciihex import AsciiHexParser
from drivers.rfid.r2000 import R2000Parser, R2000Variant, decode, tag_frame
from drivers.rfid.wiegand import WiegandError, decode_wiegand
from drivers.scale import AsciiWeightParser, Xk3190Parser, encode_xk3190

chunks = st.lists(st.binary(max_size=300), max_size=20)


@settings(max_examples=200, deadline=None)
@given(chunks, st.sampled_from(["twos_complement_sum", "sum", "xor"]))
def test_r2000_parser_random_bytes(parts: list[bytes], kind: str) -> None:
    v = R2000Variant(checksum=kind)  # type: ignore[arg-type]
    p = R2000Parser(v)
    for part in parts:
        for frame in p.feed(part):
            decode(frame, v)
        assert len(p._buf) <= 257
    # after any garbage, a good frame still comes through
    out = p.feed(b"\x00" * 300 + tag_frame("E2003412B8020115", variant=v))
    assert any(getattr(decode(f, v), "epc", None) == "E2003412B8020115" for f in out)


@settings(max_examples=200, deadline=None)
@given(chunks)
def test_xk3190_parser_random_bytes(parts: list[bytes]) -> None:
    p = Xk3190Parser()
    for part in parts:
        p.feed(part)
        assert len(p._buf) < 12 + 300
    assert p.feed(b"\x00" * 12 + encode_xk3190(1234))[-1] == 1234.0


@settings(max_examples=200, deadline=None)
@given(chunks)
def test_line_parsers_random_bytes(parts: list[bytes]) -> None:
    a, w = AsciiHexParser(), AsciiWeightParser()
    for part in parts:
        for epc in a.feed(part):
            assert all(c in "0123456789ABCDEF" for c in epc)
        for kg in w.feed(part):
            assert isinstance(kg, float)
        assert len(a._lines._buf) <= a.max_line and len(w._lines._buf) <= w.max_line


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 1), max_size=40))
def test_wiegand_random_bits(bits: list[int]) -> None:
    try:
        card = decode_wiegand(bits)
    except WiegandError:
        return
    assert card.bits == len(bits)
