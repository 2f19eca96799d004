"""Every packet other HJ 212 implementations publish (shared/data/hj212/peers.tsv).

Each one whose CRC and length are right decodes -- strictly, or with
``lenient`` where the row says so -- with the fields asserted below; each
broken one is refused in strict mode with its reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from edged.hj212.codec import Hj212Error, Packet, decode, encode
from tests.conftest import shared_data


def rows() -> list[tuple[str, str, str]]:
    lines = (shared_data("hj212") / "peers.tsv").read_text(encoding="utf-8").splitlines()
    out = [tuple(line.split("\t")) for line in lines[1:] if line.strip()]
    assert len(out) == 50
    return out  # type: ignore[return-value]


def value(p: Packet, key: str) -> Any:
    """A header attribute (lower-case name), a CP param, or a factor field ``code-Name``."""
    if key in ("cn", "mn", "pw", "st", "qn", "flag", "pnum", "pno", "standard", "rf"):
        return getattr(p, key)
    if key in p.cp.params:
        return p.cp.params[key]
    code, _, name = key.rpartition("-")
    return p.cp.factors[code][name]


# index: (lenient needed, expected fields)
GOOD: dict[int, tuple[bool, dict[str, Any]]] = {
    0: (False, {"cn": "2011", "standard": "2025", "st": "21", "w21003-Rtd": "0.09055002"}),
    1: (False, {"cn": "2051", "mn": "JLYP01_AIR01_0001", "a21005-Avg": "0.427"}),
    2: (False, {"standard": "2017", "l01001-Rtd": "119.90287", "l01001-Flag": "N"}),
    3: (False, {"cn": "9011", "QnRtn": "1", "flag": 4}),
    4: (False, {"w01008-SampleTime": "20231008132300", "w01008-Rtd": "123.456"}),
    5: (False, {"standard": "2005", "qn": None, "DataTime": "20160824003817000"}),
    7: (True, {"cn": "5015", "DataTime": ""}),
    8: (True, {"cn": "5012", "mn": "00000000000001"}),
    9: (True, {"cn": "5011", "st": "32"}),
    10: (True, {"cn": "5016", "pw": "123456"}),
    11: (True, {"cn": "5021", "DataTime": ""}),
    12: (False, {"S08-Rtd": "-271.755", "Nh3-scr-Rtd": "4.12656", "01-ZsRtd": "0"}),
    14: (True, {"cn": "5025", "standard": "2005"}),
    17: (False, {"a213-Rtd": "101.94", "mn": "Y80110010000010"}),
    18: (False, {"cn": "1062", "RtdInterval": "30", "pw": "100000"}),
    19: (False, {"cn": "2061", "standard": "2025", "w20120-Avg": "0.00011"}),
    20: (False, {"cn": "2031", "LAMPBLACK-Max": "9.66", "NMHC-Min": "3.11"}),
    21: (False, {"cn": "9014", "st": "91", "standard": "2025", "flag": 8}),
    22: (False, {"a01013-Rtd": "-0.052", "mn": "81733553216103"}),
    23: (False, {"w01018-SampleTime": "20240123110306", "w00000-Rtd": "3.41"}),
    24: (False, {"B01-Rtd": "0.000", "standard": "2005"}),
    25: (False, {"cn": "2051", "B01-Cou": "54.59", "060-Max": "30.18"}),
    26: (False, {"cn": "2021", "SB1-RS": "0", "SB8-RS": "0"}),
    27: (False, {"flag": 0, "standard": "2005", "B02-Cou": "11010.8437"}),
    33: (False, {"VOC-Rtd": "0.5", "O3-Flag": "N"}),
    36: (False, {"a00000-ZsRtd": "3434", "a24088-Rtd": "37.55"}),
    37: (True, {"mn": "88888881234567", "flag": 0, "B00-Rtd": "156720160.000"}),
    38: (False, {"pnum": 2, "pno": 2, "a21018-Flag": "D", "w01018-Max": "0.0000"}),
    39: (False, {"cn": "9011", "flag": 5, "QnRtn": "1"}),
    41: (False, {"cn": "1062", "RtdInterval": "30"}),
    42: (False, {"cn": "2011", "flag": 3, "standard": "2005", "pnum": None}),
    43: (False, {"cn": "3023", "pw": "100000"}),
    44: (True, {"cn": "3020", "PolId": "w01018", "DT": "0"}),
    45: (False, {"cn": "3020", "InfoId": "i11001", "EndTime": "20240601085857"}),
    46: (False, {"cn": "2011", "standard": "2025", "flag": 9}),
    47: (False, {"cn": "1012", "SystemTime": "20240601085857"}),
    48: (False, {"cn": "1000", "OverTime": "5", "ReCount": "3"}),
    49: (False, {"st": "44", "BeginTime": "20240601064500", "EndTime": "20240601084500"}),
}

# index: field the strict refusal names
BAD: dict[int, str] = {
    6: "CRC",
    13: "length",
    15: "CRC",
    16: "CRC",
    28: "CRC",
    29: "CRC",
    30: "CRC",
    31: "length",
    32: "length",
    34: "CRC",
    35: "length",
    40: "CRC",
}


def test_the_table_covers_every_row() -> None:
    table = rows()
    assert set(GOOD) | set(BAD) == set(range(len(table)))
    assert {i for i, r in enumerate(table) if r[1] == "yes"} == set(GOOD)


@pytest.mark.parametrize("index", sorted(GOOD))
def test_good_peer_packet_decodes_with_its_fields(index: int) -> None:
    raw, _, source = rows()[index]
    lenient, expected = GOOD[index]
    if lenient:
        with pytest.raises(Hj212Error):
            decode(raw)
    packet = decode(raw, strict=not lenient)
    for key, want in expected.items():
        assert value(packet, key) == want, f"{key} of row {index} ({source})"
    if not lenient:
        # what we decoded strictly we can write back: same data, our upper-case CRC
        wire = encode(packet)
        assert wire[:-6] == raw.encode()[:-4], source
        assert decode(wire) == packet


@pytest.mark.parametrize("index", sorted(BAD))
def test_broken_peer_packet_is_refused_with_its_reason(index: int) -> None:
    raw, kind, source = rows()[index]
    with pytest.raises(Hj212Error) as info:
        decode(raw)
    assert info.value.field == BAD[index], f"{source}: {info.value}"
    if BAD[index] == "CRC":
        assert kind == "no" and "does not match" in info.value.reason
        assert info.value.qn_rtn == 9
    else:
        assert "length field says" in info.value.reason


def test_milliseconds_in_datatime_are_kept() -> None:
    packet = decode(rows()[5][0])
    assert packet.cp.params["DataTime"] == "20160824003817000"  # text byte for byte
    assert packet.cp.data_time == datetime(2016, 8, 24, 0, 38, 17, 0)
    p = decode(rows()[5][0].replace("003817000", "003817123").replace("4980", "0000"), False)
    assert p.cp.data_time == datetime(2016, 8, 24, 0, 38, 17, 123000)


def test_free_text_is_one_value_whatever_it_holds() -> None:
    packet = decode(rows()[44][0], strict=False)
    info = packet.cp.factors["i11001"]["Info"]
    assert info.startswith("//R:4e 26 26 45") and info.endswith(" 01 //")
    assert set(packet.cp.factors) == {"i11001"}
    assert list(packet.cp.params) == ["DataTime", "DT", "PolId"]


def test_comma_joined_pairs_go_back_out_comma_joined() -> None:
    raw = rows()[45][0]
    packet = decode(raw)
    assert "BeginTime=20240601010522,EndTime=20240601085857" in packet.cp.text()
    assert encode(packet) == (raw + "\r\n").encode()


def test_flag_3_without_packet_numbers_is_one_2005_packet() -> None:
    packet = decode(rows()[42][0])
    assert not packet.is_split and packet.reply_wanted
    assert any("2005-style request" in w for w in packet.warnings)
    with pytest.raises(Hj212Error, match="PNUM/PNO missing"):
        decode(rows()[42][0].replace("Flag=3", "Flag=7").replace("7bc0", "0000"), strict=False)
