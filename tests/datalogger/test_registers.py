"""Register codec, read planner and config checks (pure)."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edged.config.schema import SchemaError, build
from edged.datalogger.registers import (
    DecodeError,
    ModbusConfig,
    ModbusDevice,
    RegisterPoint,
    decode,
    decode_raw,
    encode,
    plan_reads,
)

# 123.456 as float32 is 0x42F6E979: the four orders as meters put it on the wire
FLOAT_WORDS = {
    "ABCD": [0x42F6, 0xE979],
    "CDAB": [0xE979, 0x42F6],
    "BADC": [0xF642, 0x79E9],
    "DCBA": [0x79E9, 0xF642],
}


@pytest.mark.parametrize("order,words", FLOAT_WORDS.items())
def test_float32_each_order_known_words(order, words):
    p = RegisterPoint(name="x", type="float32", order=order)
    assert decode(p, words) == pytest.approx(123.456, rel=1e-6)
    assert encode(p, 123.456) == words


@pytest.mark.parametrize(
    "type_,order,words,expected",
    [
        ("int16", "ABCD", [0xFF85], -123),
        ("int16", "BADC", [0x85FF], -123),
        ("uint16", "ABCD", [0xFF85], 65413),
        ("int32", "ABCD", [0xFFFE, 0x1DC0], -123456),
        ("int32", "CDAB", [0x1DC0, 0xFFFE], -123456),
        ("uint32", "ABCD", [0x0001, 0xE240], 123456),
        ("uint32", "CDAB", [0xE240, 0x0001], 123456),
        ("uint32", "BADC", [0x0100, 0x40E2], 123456),
        ("uint32", "DCBA", [0x40E2, 0x0100], 123456),
        ("int64", "ABCD", [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE], -2),
        ("uint64", "CDAB", [0x0005, 0x0000, 0x0000, 0x0000], 5),
        ("float64", "ABCD", list(struct.unpack(">4H", struct.pack(">d", -1.5))), -1.5),
    ],
)
def test_integer_and_wide_types(type_, order, words, expected):
    p = RegisterPoint(name="x", type=type_, order=order)
    assert decode(p, words) == expected


def test_scale_offset_and_bits():
    p = RegisterPoint(name="u", type="uint16", scale=0.1, offset=-40)
    assert decode(p, [650]) == pytest.approx(25.0)
    bit = RegisterPoint(name="b", type="bool", function=3, bit=9)
    assert decode(bit, [1 << 9]) == 1.0
    assert decode(bit, [1 << 8]) == 0.0
    coil = RegisterPoint(name="c", type="bool", function=1)
    assert decode(coil, [True]) == 1.0


def test_nan_and_wrong_length_are_decode_errors():
    p = RegisterPoint(name="x", type="float32")
    with pytest.raises(DecodeError, match="nan"):
        decode(p, [0x7FC0, 0x0000])
    with pytest.raises(DecodeError, match="expected 2 words"):
        decode(p, [1])


@given(
    st.sampled_from(["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32"]),
    st.sampled_from(["ABCD", "CDAB", "BADC", "DCBA"]),
    st.integers(min_value=0, max_value=2**64 - 1),
)
def test_encode_decode_round_trip(type_, order, seed):
    p = RegisterPoint(name="x", type=type_, order=order)
    bits = {"int16": 16, "uint16": 16, "int32": 32, "uint32": 32, "int64": 64, "uint64": 64}
    if type_ == "float32":
        raw = struct.unpack(">f", struct.pack(">I", seed & 0xFFFFFFFF))[0]
        if not math.isfinite(raw):
            return
    else:
        n = bits[type_]
        raw = seed % (2**n)
        if type_.startswith("int") and raw >= 2 ** (n - 1):
            raw -= 2**n
    words = encode(p, raw)
    assert all(0 <= w <= 0xFFFF for w in words)
    assert decode_raw(p, words) == raw  # exact, 64-bit integers included
    assert decode(p, words) == pytest.approx(raw)


def test_plan_groups_contiguous_points_and_splits_by_function_gap_and_size():
    pts = [
        RegisterPoint(name="a", address=0, type="float32"),
        RegisterPoint(name="b", address=2, type="float32"),
        RegisterPoint(name="c", address=4, type="uint16"),
        RegisterPoint(name="d", address=10, type="uint16"),
        RegisterPoint(name="e", function=4, address=0, type="uint16"),
        RegisterPoint(name="f", function=2, address=3, type="bool"),
        RegisterPoint(name="g", function=2, address=4, type="bool"),
    ]
    blocks = plan_reads(pts)
    shape = [(b.function, b.address, b.count, [p.name for p in b.points]) for b in blocks]
    assert shape == [
        (2, 3, 2, ["f", "g"]),
        (3, 0, 5, ["a", "b", "c"]),
        (3, 10, 1, ["d"]),
        (4, 0, 1, ["e"]),
    ]
    assert [(b.address, b.count) for b in plan_reads(pts[:4], max_gap=5) if b.function == 3] == [
        (0, 11)
    ]
    many = [RegisterPoint(name=f"p{i}", address=2 * i, type="float32") for i in range(100)]
    blocks = plan_reads(many)
    assert [b.count for b in blocks] == [124, 76]
    assert sum(len(b.points) for b in blocks) == 100


def test_overlapping_points_share_a_read():
    pts = [
        RegisterPoint(name="word", address=5, type="uint16"),
        RegisterPoint(name="bit3", address=5, type="bool", bit=3),
    ]
    (block,) = plan_reads(pts)
    assert (block.address, block.count, len(block.points)) == (5, 1, 2)


def _device(**kw: object) -> dict[str, object]:
    return {"name": "m"} | kw


def _point(**kw: object) -> dict[str, object]:
    return {"devices": [_device(points=[{"name": "x"} | kw])]}


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        (
            {"poll_groups": [{"name": "slow", "interval_s": 600}]},
            "poll_groups[0].interval_s",
            "1..300",
        ),
        (_point(function=5), "devices[0].points[0].function", "1..4"),
        (_point(function=1, type="uint16"), "devices[0].points[0].type", "must be bool"),
        (_point(factor="i1200"), "devices[0].points[0].factor", "6 letters"),
        (_point(low=5, high=1), "devices[0].points[0].low", "low <= high"),
        (_point(address=65535, type="float32"), "devices[0].points[0].address", "runs past"),
        (_point(bit=16, type="bool"), "devices[0].points[0].bit", "0..15"),
        ({"devices": [_device(transport="tcp")]}, "devices[0].host", "transport tcp"),
        ({"devices": [_device(timeout_s=60)]}, "devices[0].timeout_s", "0.05..30"),
        ({"devices": [_device(poll_group="fast")]}, "devices", "poll_group 'fast'"),
    ],
)
def test_config_refuses_bad_values_naming_the_key(data, path, words):
    with pytest.raises(SchemaError) as info:
        build(ModbusConfig, data)
    (problem,) = info.value.problems
    assert problem.path == path and words in problem.message


def test_every_problem_of_the_modbus_section_is_reported_at_once():
    data = {
        "devices": [
            _device(port=0, unit=300, timeout_s=0, points=[{"name": "x", "function": 9}]),
            _device(name="m2", transport="tcp", retries=99),
        ]
    }
    with pytest.raises(SchemaError) as info:
        build(ModbusConfig, data)
    assert sorted(p.path for p in info.value.problems) == [
        "devices[0].points[0].function",
        "devices[0].port",
        "devices[0].timeout_s",
        "devices[0].unit",
        "devices[1].host",
        "devices[1].retries",
    ]


@pytest.mark.parametrize(
    ("data", "path", "new"),
    [
        ({"devices": [_device(timeout_seconds=1.0)]}, "devices[0].timeout_seconds", "timeout_s"),
        (
            {"poll_groups": [{"interval_seconds": 60}]},
            "poll_groups[0].interval_seconds",
            "interval_s",
        ),
        (_point(cou_per_seconds=60), "devices[0].points[0].cou_per_seconds", "cou_unit_s"),
    ],
)
def test_keys_in_seconds_were_renamed_with_a_clear_error(data, path, new):
    with pytest.raises(SchemaError) as info:
        build(ModbusConfig, data)
    (problem,) = info.value.problems
    assert problem.path == path and f"renamed: write {new!r} instead" in problem.message


def test_config_refuses_duplicate_factor_codes():
    d1 = ModbusDevice(name="a", points=[RegisterPoint(name="x", factor="i12001")])
    d2 = ModbusDevice(
        name="b", serial_port="/dev/ttyS1", points=[RegisterPoint(name="y", factor="i12001")]
    )
    with pytest.raises(ValueError, match=r"^devices: factor 'i12001'"):
        ModbusConfig(devices=[d1, d2])


def test_default_interval_is_five_minutes():
    cfg = ModbusConfig(devices=[ModbusDevice(name="m")])
    assert cfg.interval(cfg.devices[0]) == 300.0


def test_meters_on_one_rs485_line_must_share_line_settings():
    a = ModbusDevice(name="a", serial_port="/dev/ttyS1", baudrate=9600, unit=1)
    b = ModbusDevice(name="b", serial_port="/dev/ttyS1", baudrate=19200, unit=2)
    with pytest.raises(ValueError, match=r"^devices: 'b' and 'a' share /dev/ttyS1"):
        ModbusConfig(devices=[a, b])
    ok = ModbusConfig(devices=[a, ModbusDevice(name="c", serial_port="/dev/ttyS1", unit=3)])
    assert {d.bus for d in ok.devices} == {"rtu:/dev/ttyS1"}


def test_the_section_switch_that_nothing_read_is_refused_with_what_to_write():
    with pytest.raises(SchemaError) as info:
        build(ModbusConfig, {"enabled": True})
    (problem,) = info.value.problems
    assert problem.path == "enabled" and "no longer a key" in problem.message
    assert "in a device's own table" in problem.message
