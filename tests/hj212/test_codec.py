"""HJ 212 codec against real packets from other implementations, plus properties and fuzzing."""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edged.hj212.codec import (
    FLAG_SPLIT,
    MAX_DATA_LEN,
    Cp,
    Hj212Error,
    Packet,
    Reassembler,
    decode,
    encode,
    encode_all,
    make_qn,
    merge,
    parse_qn,
    split,
)
from edged.hj212.crc import crc16, crc16_hex
from tests.conftest import shared_data


def lines(name: str) -> list[bytes]:
    return (shared_data("hj212") / name).read_bytes().splitlines(keepends=True)


def test_crc_is_not_modbus() -> None:
    # CRC-16/MODBUS of b"123456789" is 0x4B37; the HJ 212 variant differs.
    assert crc16(b"123456789") != 0x4B37
    assert crc16(b"") == 0xFFFF


def test_real_valid_packets_decode_verify_and_reencode_byte_for_byte() -> None:
    packets = lines("valid.txt")
    assert len(packets) == 3
    for raw in packets:
        p = decode(raw)
        assert p.warnings == ()
        assert encode(p) == raw
    old, new, big = (decode(r) for r in packets)
    assert old.qn is None and old.flag is None and old.st == "101"
    assert old.cp.number("a34010", "Rtd") == 2.017
    assert old.cp.data_time == datetime(2020, 9, 22, 11, 0, 0)
    assert new.qn == "20190925181031464" and new.flag == 5 and new.reply_wanted
    assert new.version == 1 and new.cn == "2061" and new.mn == "Z13401000010301"
    assert new.cp.factors["a34006"] == {"Avg": "2.69700", "Flag": "N"}
    assert parse_qn(new.qn) == datetime(2019, 9, 25, 18, 10, 31, 464000)
    assert len(big.cp.factors) == 31 and big.cp.factors["a99948"]["Rtd"] == "452.341"


def test_bad_crc_packets_refused_strict_accepted_lenient() -> None:
    packets = lines("bad-crc-as-logged.txt")
    assert len(packets) == 3
    for raw in packets:
        with pytest.raises(Hj212Error) as info:
            decode(raw)
        assert info.value.field == "CRC" and info.value.qn_rtn == 9
        assert "does not match" in info.value.reason
        p = decode(raw, strict=False)
        assert any("CRC" in w for w in p.warnings)
        assert p.cp.data_time is not None and p.cp.factors
    minute = decode(packets[2], strict=False)
    assert minute.cn == "2051" and minute.qn == "20200924101500117" and minute.flag is None
    assert any("over the standard's 1024" in w for w in minute.warnings)
    # our own encoder splits what the sender wrote as one over-long packet
    parts = encode_all(minute)
    assert len(parts) == 2 and all(len(x) <= MAX_DATA_LEN + 12 for x in parts)
    assert merge([decode(x) for x in parts]).cp == minute.cp


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (b"#0010QN=1", "header", "start with '##'"),
        (b"##00x1abc", "length", "4 digits"),
        (b"##0100ST=31;CP=&&&&1234\r\n", "length", "says 100"),
        (b"##0018ST=31;CN=1;CP=&&&&ZZZZ", "CRC", "hex"),
    ],
)
def test_framing_errors_name_field_and_offset(raw: bytes, field: str, words: str) -> None:
    with pytest.raises(Hj212Error) as info:
        decode(raw)
    assert info.value.field == field and words in str(info.value)
    assert info.value.offset is not None


def seg(segment: str) -> bytes:
    data = segment.encode()
    return b"##%04d%s%s\r\n" % (len(data), data, crc16_hex(data).encode())


GOOD = "QN=20240501100000123;ST=31;CN=2011;PW=123456;MN=66330300010100001001;Flag=5;"


@pytest.mark.parametrize(
    ("segment", "field", "words"),
    [
        ("ST=31;CN=2011;PW=1;MN=1;Flag=5", "CP", "no 'CP=&&'"),
        ("ST=31;CN=2011;MN=1;CP=&&&&", "PW", "required"),
        ("ST=31;CN=2011;CN=2011;PW=1;MN=1;CP=&&&&", "CN", "twice"),
        ("ST=31;CN=2011;PW=1;MN=1;Foo=1;CP=&&&&", "Foo", "unknown header"),
        ("QN=2024;ST=31;CN=2011;PW=1;MN=1;CP=&&&&", "QN", "17 digits"),
        ("QN=20241301100000123;ST=31;CN=2011;PW=1;MN=1;CP=&&&&", "QN", "not a valid time"),
        ("ST=31;CN=2011;PW=1;MN=1;Flag=999;CP=&&&&", "Flag", "0..255"),
        ("ST=31;CN=2011;PW=1;MN=1;Flag=7;CP=&&&&", "Flag", "PNUM/PNO missing"),
        ("ST=31;CN=2011;PW=1;MN=1;Flag=6;PNUM=2;PNO=3;CP=&&&&", "PNO", "PNO <= PNUM"),
        ("ST=31;CN=2011;PW=1;MN=1;CP=&&DataTime=20241399000000&&", "DataTime", "valid"),
        ("ST=31;CN=2011;PW=1;MN=1;CP=&&a-Rtd=1,a-Flag=X&&", "a-Flag", "data flag"),
        ("ST=31;CN=2011;PW=1;MN=1;CP=&&a-Rtd=1,a-Rtd=2&&", "a-Rtd", "twice"),
        ("ST=31;CN=2011;PW=1;MN=1;CP=&&a-Rtd&&", "CP", "KEY=VALUE"),
        ("ST=31;CN=2011;PW=1;MN=1;CP=&&a=1&&x", "CP", "after the closing"),
    ],
)
def test_field_errors_are_specific(segment: str, field: str, words: str) -> None:
    with pytest.raises(Hj212Error) as info:
        decode(seg(segment))
    assert info.value.field == field, str(info.value)
    assert words in str(info.value)


def test_lenient_keeps_unknown_flags_and_header_fields_with_warnings() -> None:
    p = decode(seg("ST=31;CN=2011;PW=1;MN=1;Foo=1;CP=&&a-Rtd=1,a-Flag=P&&"), strict=False)
    assert p.cp.factors["a"]["Flag"] == "P" and len(p.warnings) == 2


def test_all_data_flags_accepted() -> None:
    cp = ";".join(f"f{i}-Rtd=1,f{i}-Flag={f}" for i, f in enumerate("NFMSDCTB"))
    p = decode(seg(f"ST=31;CN=2011;PW=1;MN=1;CP=&&{cp}&&"))
    assert [v["Flag"] for v in p.cp.factors.values()] == list("NFMSDCTB")


def test_command_params_parse() -> None:
    p = decode(seg(GOOD + "CP=&&BeginTime=20240501000000;EndTime=20240501100000&&"))
    assert p.cp.params == {"BeginTime": "20240501000000", "EndTime": "20240501100000"}
    q = decode(seg(GOOD.replace("CN=2011", "CN=9011") + "CP=&&QnRtn=1&&"))
    assert q.cp.params["QnRtn"] == "1"


def test_encode_refuses_bad_values_and_too_long() -> None:
    with pytest.raises(Hj212Error, match="separator"):
        Cp.build({"PolId": "a;b"})
    with pytest.raises(Hj212Error):
        encode(Packet("2011", "bad mn!", cp=Cp()))
    big = Cp.build({}, {f"a{i:05d}": {"Rtd": 1.5, "Flag": "N"} for i in range(60)})
    with pytest.raises(Hj212Error, match="use split"):
        encode(Packet("2011", "MN1", qn=make_qn(datetime(2024, 1, 1)), flag=5, cp=big))


def test_split_and_reassemble_with_timeout() -> None:
    factors = {f"a{i:05d}": {"Avg": f"{i}.125", "Max": "9.5", "Flag": "N"} for i in range(80)}
    cp = Cp.build({"DataTime": datetime(2024, 5, 1, 10)}, factors)
    packet = Packet("2051", "MN1", qn="20240501100000001", flag=5, cp=cp)
    parts = split(packet)
    assert len(parts) >= 3
    for i, part in enumerate(parts, 1):
        raw = encode(part)
        assert int(raw[2:6]) <= MAX_DATA_LEN
        assert part.pno == i and part.pnum == len(parts) and part.flag & FLAG_SPLIT
        assert part.cp.params == {"DataTime": "20240501100000"}
    r = Reassembler(timeout_s=10)
    decoded = [decode(encode(p)) for p in parts]
    for p in reversed(decoded[1:]):
        assert r.feed(p, now=0.0) is None
    whole = r.feed(decoded[0], now=1.0)
    assert whole == packet and len(r) == 0
    # a lost part: the group expires, later ones start fresh
    assert r.feed(decoded[0], now=2.0) is None
    assert r.expire(now=5.0) == []
    assert r.expire(now=13.0) == [("MN1", "20240501100000001", "2051", [1])]
    assert len(r) == 0


def test_one_huge_factor_is_split_field_by_field() -> None:
    fields = {f"F{i}": "1" * 200 for i in range(8)}
    packet = Packet("2051", "MN1", qn="20240501100000001", flag=4, cp=Cp({}, {"a1": fields}))
    parts = split(packet)
    assert len(parts) > 1
    assert merge(parts).cp.factors == {"a1": fields}


# -- properties -----------------------------------------------------------------

_text = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
    min_size=1,
    max_size=8,
)
_value = st.text(alphabet="0123456789.-+eENA_abc中文", min_size=0, max_size=12)
_code = st.text(alphabet="abcw0123456789", min_size=1, max_size=7)
_field = st.sampled_from(["Rtd", "Avg", "Min", "Max", "Cou", "ZsRtd", "SampleTime", "EFlag"])


@st.composite
def packets(draw: st.DrawFn) -> Packet:
    params = draw(st.dictionaries(_text.filter(lambda k: k != "DataTime"), _value, max_size=3))
    if draw(st.booleans()):
        dt = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)))
        params = {"DataTime": dt.strftime("%Y%m%d%H%M%S"), **params}
    factors = draw(
        st.dictionaries(
            _code,
            st.dictionaries(_field, _value, max_size=3).map(
                lambda d: {**d, "Flag": draw(st.sampled_from("NFMSDCTB"))}
            ),
            max_size=30,
        )
    )
    modern = draw(st.booleans())
    qn = None
    if modern:
        qn = make_qn(
            draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)))
        )
    return Packet(
        cn=draw(st.sampled_from(["2011", "2051", "2061", "2031", "9014", "1012"])),
        mn=draw(st.text(alphabet="0123456789ABZ", min_size=1, max_size=24)),
        pw=draw(st.text(alphabet="0123456789abc", min_size=1, max_size=6)),
        st=draw(st.sampled_from(["22", "31", "32", "91"])),
        qn=qn,
        flag=draw(st.sampled_from([4, 5])) if modern else None,
        cp=Cp(params, factors),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packets())
def test_round_trip_including_split(packet: Packet) -> None:
    wires = encode_all(packet)
    decoded = [decode(w) for w in wires]
    if len(wires) == 1:
        assert decoded[0] == packet
        assert encode(decoded[0]) == wires[0]
    else:
        r = Reassembler()
        out = [r.feed(p, 0.0) for p in decoded]
        assert out[:-1] == [None] * (len(out) - 1)
        assert out[-1] == dataclasses.replace(packet, flag=packet.flag if packet.flag else 4)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_only_hj212error(data: bytes) -> None:
    for candidate in (data, b"##" + data, b"##%04d" % max(len(data) - 4, 0) + data):
        for strict in (True, False):
            with contextlib.suppress(Hj212Error):
                decode(candidate, strict=strict)


@settings(max_examples=300, deadline=None)
@given(packets(), st.data())
def test_fuzz_mutated_real_shaped_packets_only_hj212error(
    packet: Packet, data: st.DataObject
) -> None:
    wire = bytearray(encode_all(packet)[0])
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(wire) - 1))
        op = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        byte = data.draw(st.sampled_from(list(b";,=&#-\x00\xff0AZ\r\n")))
        if op == "flip":
            wire[pos] = byte
        elif op == "delete":
            del wire[pos]
        else:
            wire.insert(pos, byte)
    # fix length and CRC so the mutation reaches the field parser, too
    body = bytes(wire[6:-6]) if len(wire) > 12 else b""
    fixed = b"##%04d%s%s\r\n" % (len(body), body, crc16_hex(body).encode())
    for candidate in (bytes(wire), fixed):
        for strict in (True, False):
            with contextlib.suppress(Hj212Error):
                decode(candidate, strict=strict)
