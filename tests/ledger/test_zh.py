"""Chinese names of the ledger's values: what every report and table shows."""

from __future__ import annotations

from edged.ledger import zh


def test_codes_read_as_chinese_and_unknown_codes_stay_visible() -> None:
    assert zh.name(zh.DIRECTION, "in") == "进厂" and zh.name(zh.DECISION, "hold") == "待人工"
    assert zh.name(zh.FUEL, "electric") == "纯电动" and zh.name(zh.COLOUR, "yellow") == "黄色"
    assert zh.name(zh.REASON, "some_new_reason") == "some_new_reason"
    assert zh.name(zh.FUEL, None) == ""
    assert zh.flags(("hazardous", "tag_plate_mismatch")) == "危险货物运输，电子标签与车牌不符"


def test_stages_and_their_national_codes() -> None:
    assert zh.stage("国5") == "国五" and zh.stage("国6b") == "国六b" and zh.stage(None) == ""
    assert zh.stage_code(None, "国6a", "diesel") == "6"
    assert zh.stage_code(None, "国五", "diesel") == "5"
    assert zh.stage_code(None, None, "electric") == "d"
    assert zh.stage_code("x", None, None) == "x" and zh.stage_code(None, None, None) == ""
    assert [zh.stage_class(c) for c in ("0", "6", "d", "x", "")] == [
        "国零",
        "国六",
        "新能源",
        "无排放阶段",
        "未知",
    ]


def test_a_row_says_why_a_national_field_is_empty_in_chinese() -> None:
    note = zh.missing(
        {
            "engine_no": "not in the registry entry",
            "weight_kg": "weight did not settle within 8 s",
            "cargo": "something new",
        },
        {"engine_no": "发动机号码", "weight_kg": "总重(kg)"},
    )
    assert note == "发动机号码：台账未登记；总重(kg)：称重未稳定；cargo：something new"
