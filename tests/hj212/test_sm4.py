"""SM4 on the CP area (HJ 212-2025 §6.4.2, Appendix A.2) and refusals of wrong (un)encryption."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edged.hj212 import sm4
from edged.hj212.codec import Cp, Hj212Error, Packet, decode, encode, encode_all, make_qn, merge
from edged.hj212.crc import crc16_hex

KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")
OTHER = bytes.fromhex("00112233445566778899aabbccddeeff")
QN = make_qn(datetime(2024, 6, 1, 8, 58, 57, 223000))


def test_cipher_is_sm4_ecb_of_gb_t_32907() -> None:
    # GB/T 32907-2016 Appendix A, example 1: key = plain text = 0123...3210
    body, tail = sm4.encrypt(KEY, KEY)
    assert body.hex() == "681edf34d206965e86b3e94f536e4246" and tail == b""


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 31, 32, 47, 100])
def test_whole_groups_are_encrypted_and_the_short_tail_stays_plain(length: int) -> None:
    plain = bytes(ord("a") + i % 26 for i in range(length))
    wire = sm4.encrypt_region(plain, KEY)
    whole = length - length % 16
    assert wire.endswith(plain[whole:])  # the part shorter than 16 in plain text
    if whole:
        assert wire.startswith(b"{0x") and wire.count(b",") == whole - 1
        assert plain[:whole] not in wire
    else:
        assert wire == plain
    assert len(wire) == sm4.wire_length(length)
    assert sm4.decrypt_region(wire, KEY) == plain


@pytest.mark.parametrize(
    ("wire", "words"),
    [
        (b"{0x01,0x02}", "not a multiple of 16"),
        (b"{0x01,0xZZ}", "0xNN"),
        (b"{0x" + b",0x".join(b"%02X" % i for i in range(16)) + b"}" + b"x" * 16, "plain bytes"),
    ],
)
def test_malformed_cipher_text_is_refused(wire: bytes, words: str) -> None:
    with pytest.raises(sm4.Sm4Error, match=words):
        sm4.decrypt_region(wire, KEY)


def test_keys_are_32_hex_digits() -> None:
    assert sm4.parse_key(KEY.hex().upper()) == KEY
    with pytest.raises(sm4.Sm4Error, match="32 hex digits"):
        sm4.parse_key("0123")
    with pytest.raises(sm4.Sm4Error, match="non-hex"):
        sm4.parse_key("z" * 32)


def test_which_commands_are_encrypted() -> None:
    assert all(sm4.applies(cn) for cn in ("2011", "2051", "2999", "1014", "3020"))
    assert not any(sm4.applies(cn) for cn in ("1001", "1002", "1012", "9011", "9014", "9015"))


def minute_packet(cn: str = "2051", factors: int = 3) -> Packet:
    cp = Cp.build(
        {"DataTime": datetime(2024, 6, 1, 8, 58)},
        {f"a{34000 + i}": {"Avg": 1.5 + i, "Flag": "N"} for i in range(factors)},
    )
    return Packet(cn, "010000A8900016F000169DC0", st="31", qn=QN, flag=9, cp=cp)


def test_packet_round_trip_with_crc_over_the_plain_segment() -> None:
    packet = minute_packet()
    wire = encode(packet, KEY)
    plain = encode(packet)
    assert wire[-6:] == plain[-6:]  # the CRC is the plain packet's (Appendix A.2)
    assert b"a34000" not in wire and b"CP=&&{0x" in wire
    assert int(wire[2:6]) == len(wire) - 12  # the length counts what is on the wire
    back = decode(wire, sm4_keys=[OTHER, KEY])
    assert back == packet and back.encrypted and back.key_index == 1
    assert encode(minute_packet("9014"), KEY) == encode(minute_packet("9014"))  # not encrypted


def test_wrong_key_no_key_and_wrong_encryption_are_refused_with_a_reason() -> None:
    wire = encode(minute_packet(), KEY)
    with pytest.raises(Hj212Error, match="no SM4 key") as info:
        decode(wire, sm4_keys=[OTHER])
    assert info.value.qn_rtn == 9 and info.value.qn == QN
    with pytest.raises(Hj212Error, match="no key was given"):
        decode(wire)
    with pytest.raises(Hj212Error, match="set up without encryption") as info:
        decode(wire, sm4_keys=[KEY], encrypted=False)
    assert info.value.qn_rtn == 2
    with pytest.raises(Hj212Error, match="arrived in plain text") as info:
        decode(encode(minute_packet()), sm4_keys=[KEY], encrypted=True)
    assert info.value.field == "CP" and info.value.qn == QN
    # a CP shorter than one group is plain on both sides: nothing to refuse
    short = Packet("2011", "MN1", qn=QN, flag=9, cp=Cp({"a": "1"}))
    assert decode(encode(short, KEY), sm4_keys=[KEY], encrypted=True) == short


def test_a_crc_over_the_cipher_text_is_taken_with_a_warning() -> None:
    wire = encode(minute_packet(), KEY)
    data = wire[6:-6]
    other_order = b"##%04d%s%s\r\n" % (len(data), data, crc16_hex(data).encode())
    packet = decode(other_order, sm4_keys=[KEY])
    assert packet == minute_packet() and any("encrypted data" in w for w in packet.warnings)


def test_encrypted_packets_are_split_within_1024_bytes() -> None:
    packet = minute_packet(factors=60)
    wires = encode_all(packet, sm4_key=KEY)
    assert len(wires) > 1 and all(int(w[2:6]) <= 1024 for w in wires)
    assert merge([decode(w, sm4_keys=[KEY]) for w in wires]).cp == packet.cp


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=0, max_size=30).filter(lambda t: "//" not in t and "&&" not in t))
def test_chinese_free_text_survives_encryption(text: str) -> None:
    clean = "".join(c for c in text if c.isprintable() and c not in "\r\n/&")
    cp = Cp({"DataTime": "20240601085800"}, {"i11001": {"Info": f"//{clean}设备重启//"}})
    packet = Packet("3020", "MN1", qn=QN, flag=9, cp=cp)
    assert decode(encode(packet, KEY), sm4_keys=[KEY], encrypted=True) == packet
