"""Numbers, versions, times and the lenient readings peers need, built like real packets."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edged.hj212.codec import (
    AUTO_DECIMALS,
    Cp,
    Hj212Error,
    Packet,
    Reassembler,
    decode,
    encode,
    format_number,
    format_time,
    free_text,
    make_qn,
    parse_time,
    split,
)
from edged.hj212.crc import crc16_hex
from edged.hj212.precision import resolve, unit_decimals

FIXED = re.compile(r"-?\d+(\.\d+)?")


def seg(segment: str) -> bytes:
    data = segment.encode()
    return b"##%04d%s%s\r\n" % (len(data), data, crc16_hex(data).encode())


# -- numbers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (1e-05, None, "0.00001"),
        (0.1 + 0.2, None, "0.3"),
        (1.5e16, None, "15000000000000000.0"),
        (12.5, None, "12.5"),
        (0.0, None, "0.0"),
        (-0.0, 2, "0.00"),
        (-1e-9, 3, "0.000"),
        (2.675, 2, "2.68"),  # the decimal a person reads, not the binary 2.67499...
        (2.665, 2, "2.66"),  # half to even (GB/T 8170)
        (7, None, "7"),
        (7, 2, "7.00"),
        (1234.5678, 0, "1235"),
    ],
)
def test_numbers_are_fixed_point(value: float, decimals: int | None, text: str) -> None:
    assert format_number(value, decimals) == text


@settings(max_examples=500, deadline=None)
@given(
    st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**20), 10**20),
    st.none() | st.integers(0, 8),
)
def test_no_exponent_and_no_float_noise_for_any_number(value: float, decimals: int | None) -> None:
    text = format_number(value, decimals)
    assert FIXED.fullmatch(text), text  # what -Avg=(\d+(\.\d+)?) style patterns read
    assert "e" not in text.lower()
    places = AUTO_DECIMALS if decimals is None else decimals
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    with localcontext() as ctx:
        ctx.prec = 420
        want = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
        assert Decimal(text) == want  # the value rounded, nothing more, nothing less
    fraction = text.partition(".")[2]
    if decimals is not None:
        assert len(fraction) == (decimals if decimals else 0)
    else:
        assert len(fraction) <= AUTO_DECIMALS
    if isinstance(value, float) and abs(value) < 1e15:
        assert math.isclose(float(text), value, abs_tol=10**-places)


def test_cp_build_uses_per_factor_decimals_and_units() -> None:
    decimals = resolve({"e12001": 1}, {"a34013": "mg/m3", "e12001": "A", "x1": "furlongs"})
    assert decimals == {"a34013": 3, "e12001": 1}
    cp = Cp.build(
        {},
        {"a34013": {"Avg": 0.1 + 0.2}, "e12001": {"Rtd": 52.06}, "x1": {"Rtd": 1e-05}},
        decimals=decimals,
    )
    assert cp.text() == "a34013-Avg=0.300;e12001-Rtd=52.1;x1-Rtd=0.00001"
    assert unit_decimals("℃") == 1 and unit_decimals("KWH") == 2 and unit_decimals("?") is None
    with pytest.raises(Hj212Error, match="finite"):
        Cp.build({}, {"a": {"Rtd": float("nan")}})


# -- versions ------------------------------------------------------------------------


def test_decoder_reports_the_version_and_warns_on_unknown_bits() -> None:
    head = "QN=20240601085857223;ST=32;CN=2011;PW=123456;MN=MN1;"
    for flag, standard in ((4, "2017"), (5, "2017"), (8, "2025"), (9, "2025"), (0, "2005")):
        p = decode(seg(f"{head}Flag={flag};CP=&&&&"))
        assert p.standard == standard and p.warnings == ()
        assert p.to_json()["version"] == standard
    odd = decode(seg(f"{head}Flag=13;CP=&&&&"))
    assert odd.standard is None and odd.reply_wanted
    assert any("version bits 3 name no known" in w for w in odd.warnings)


def test_rf_marks_backfilled_data_and_nothing_else() -> None:
    head = "QN=20240601085857223;ST=32;CN=2051;PW=123456;MN=MN1;Flag=9;"
    p = decode(seg(f"{head}RF=1;CP=&&DataTime=20240601085800&&"))
    assert p.rf and encode(p) == seg(f"{head}RF=1;CP=&&DataTime=20240601085800&&")
    with pytest.raises(Hj212Error, match="RF is 1"):
        decode(seg(f"{head}RF=0;CP=&&&&"))


# -- lenient readings ------------------------------------------------------------


def test_empty_pw_and_mn_only_in_lenient_mode() -> None:
    raw = seg("ST=32;CN=2011;PW=;MN=;CP=&&DataTime=20181225080000;011-Rtd=27.3,011-Flag=N&&")
    with pytest.raises(Hj212Error) as info:
        decode(raw)
    assert info.value.field == "PW"
    p = decode(raw, strict=False)
    assert p.pw == "" and p.mn == "" and p.cp.factors["011"]["Rtd"] == "27.3"
    assert sum("is empty" in w for w in p.warnings) == 2


def test_length_counting_characters_only_in_lenient_mode() -> None:
    data = (
        "QN=20240601085857223;ST=32;CN=3020;PW=123456;MN=MN1;Flag=9;CP=&&i11001-Info=//断电重启//&&"
    )
    crc = crc16_hex(data.encode())
    raw = f"##{len(data):04d}{data}{crc}\r\n".encode()  # characters, not UTF-8 bytes
    with pytest.raises(Hj212Error, match="counts characters; HJ 212 counts UTF-8 bytes"):
        decode(raw)
    p = decode(raw, strict=False)
    assert p.cp.factors["i11001"]["Info"] == "//断电重启//"
    assert any("counts characters" in w for w in p.warnings)
    right = encode(p)
    assert int(right[2:6]) == len(data.encode()) and decode(right) == p


def test_free_text_helper_and_its_limits() -> None:
    cp = Cp.build({"DataTime": datetime(2024, 6, 1)}, {"i11001": {"Info": free_text("a;b,c=d")}})
    assert cp.text() == "DataTime=20240601000000;i11001-Info=//a;b,c=d//"
    assert decode(encode(Packet("3020", "MN1", qn="20240601000000000", flag=9, cp=cp))).cp == cp
    with pytest.raises(Hj212Error, match="free text"):
        free_text("x//y")
    with pytest.raises(Hj212Error, match="not closed"):
        decode(seg("ST=32;CN=3020;PW=1;MN=1;CP=&&i11001-Info=//open&&"))


# -- times ---------------------------------------------------------------------------


def test_times_are_written_in_the_site_zone() -> None:
    shanghai = timezone(timedelta(hours=8))
    utc = datetime(2024, 6, 1, 0, 58, 57, 223000, tzinfo=UTC)
    assert format_time(utc, shanghai) == "20240601085857"
    assert make_qn(utc, shanghai) == "20240601085857223"
    assert parse_time("20240601085857", tz=shanghai) == utc.replace(microsecond=0)
    assert Cp.build({"DataTime": utc}, tz=shanghai).params["DataTime"] == "20240601085857"


# -- reassembly caps -------------------------------------------------------------


def test_reassembly_holds_bounded_groups_and_bytes() -> None:
    factors = {f"a{i:05d}": {"Avg": f"{i}.125", "Flag": "N"} for i in range(80)}
    cp = Cp.build({"DataTime": datetime(2024, 5, 1, 10)}, factors)
    parts = split(Packet("2051", "MN1", qn="20240501100000001", flag=5, cp=cp), 300)
    assert len(parts) > 4
    r = Reassembler(max_groups=3, max_bytes=4096)
    for n in range(10):  # first halves of ten different packets
        qn = f"2024050110000{n:04d}"
        r.feed(Packet("2051", "MN1", qn=qn, flag=7, pnum=2, pno=1, cp=parts[0].cp), float(n))
    assert len(r) == 3 and r.dropped == 7
    big = Cp.build({}, {f"b{i:05d}": {"Avg": f"{i}.125", "Flag": "N"} for i in range(300)})
    pieces = split(Packet("2051", "MN1", qn="20240501100000002", flag=5, cp=big), 300)
    small = Reassembler(max_bytes=4096)
    with pytest.raises(Hj212Error, match="reassembly cap"):
        for piece in pieces:
            small.feed(piece, 0.0)
    assert small.held_bytes == 0 and len(small) == 0
