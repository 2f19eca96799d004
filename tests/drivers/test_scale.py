from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from drivers import config as driver_config
from drivers.scale import ScaleConfig, StableWeight
from drivers.scale.ascii import AsciiWeightParser
from drivers.scale.stable import StableDetector
from drivers.scale.taregross import TareGross
from drivers.scale.xk3190 import Xk3190Config, Xk3190Parser, encode_xk3190, xk3190_check
from drivers.simulators import ScaleSimulator
from edged.config.schema import SchemaError, build
from tests.ptys import PtyCable, wait_for


def test_xk3190_frame_matches_documented_example() -> None:
    # +20.00 shown with 2 decimals: 02 '+' '002000' '2' XOR=0x1B -> '1' 'B' 03
    frame = encode_xk3190(20.0, decimals=2)
    assert frame == b"\x02+0020002" + b"1B" + b"\x03"
    assert xk3190_check(b"+0020002") == b"1B"
    assert Xk3190Parser().feed(frame) == [20.0]


def test_xk3190_values_sign_decimals_and_unit() -> None:
    p = Xk3190Parser()
    stream = encode_xk3190(49860) + encode_xk3190(-15.5, 1) + encode_xk3190(0)
    assert p.feed(stream) == [49860.0, -15.5, 0.0]
    t = Xk3190Parser(to_kg=1000.0)  # indicator showing tonnes
    assert t.feed(encode_xk3190(49.86, 2)) == [49860.0]


def test_xk3190_garbage_partial_and_bad_check_resync() -> None:
    p = Xk3190Parser()
    good = encode_xk3190(31240)
    bad = bytearray(encode_xk3190(99999))
    bad[5] = ord("7")  # digit changed on the wire: check no longer matches
    wrong_mode = b"\x02=000.3000\x03\x03"
    stream = b"\xff\x00noise" + good[:4] + bytes(bad) + wrong_mode + good + good
    out = []
    for i in range(0, len(stream), 3):
        out += p.feed(stream[i : i + 3])
    assert out == [31240.0, 31240.0]
    assert p.stats.bad_checksums == 1
    assert p.stats.bad_frames >= 1
    assert p.stats.garbage_bytes > 0


def test_ascii_weight_lines() -> None:
    p = AsciiWeightParser()
    assert p.feed(b"ST,GS,+  31240 kg\r\nWT: 31.25 t\r\n-120\r\n") == [31240.0, 31250.0, -120.0]
    custom = AsciiWeightParser(r"G=(?P<weight>\d+)", unit="t")
    assert custom.feed(b"N=5 G=31\r\nnothing here\r\n") == [31000.0]
    assert custom.stats.rejected_lines == 1
    assert custom.feed(b"9" * 500 + b"\nG=2\n") == [2000.0]
    assert custom.stats.overlong_lines == 1


def test_stable_detector() -> None:
    d = StableDetector(tolerance_kg=20, stable_s=3.0)
    events = []
    t = 0.0
    for w in [0, 5000, 20000, 31000, 31240, 31250, 31230, 31240, 31245, 31240, 31235, 31240]:
        ev = d.feed(t, w)
        if ev:
            events.append(ev)
        t += 0.5
    assert len(events) == 1
    ev = events[0]
    assert isinstance(ev, StableWeight) and 31230 <= ev.kg <= 31250
    assert d.stable is not None
    for _ in range(1000):  # truck stands for a long time: still stable, bounded memory
        assert d.feed(t, 31240) is None
        t += 0.5
    assert d.stable is not None and d.stable.since == ev.since
    assert len(d._samples) <= 8
    assert d.feed(t, 25000) is None and d.stable is None  # truck drives off


def test_stable_detector_never_stable_while_moving() -> None:
    d = StableDetector(tolerance_kg=10, stable_s=1.0)
    assert all(d.feed(i * 0.1, 1000 + 15 * (i % 2)) is None for i in range(100))


def test_tare_gross_pairs_in_and_out() -> None:
    tg = TareGross(max_open_s=3600)
    first = tg.weigh("冀A12345", 49860, 100.0)
    assert first.kind == "first" and first.net_kg is None
    done = tg.weigh("冀A12345", 15120, 900.0)
    assert (done.kind, done.gross_kg, done.tare_kg, done.net_kg) == (
        "complete",
        49860,
        15120,
        34740,
    )
    assert done.first_time == 100.0
    # shipment: empty in, loaded out gives the same gross/tare roles
    tg.weigh("晋B0001", 14000, 0)
    assert tg.weigh("晋B0001", 40000, 10).net_kg == 26000
    # stale ticket expires: a new first weighing
    tg.weigh("鲁C1", 30000, 0)
    assert tg.weigh("鲁C1", 12000, 7200).kind == "first"
    assert tg.weigh("鲁D2", 40000, 0, preset_tare_kg=15000).net_kg == 25000
    assert "鲁C1" in tg.open_tickets()


@dataclass(frozen=True)
class Holder:
    scale: ScaleConfig | None = None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"type": "ascii", "regex": r"(\d+)"}, "regex"),
        ({"type": "ascii", "regex": r"(?P<weight>"}, "regex"),
        ({"stable_s": 0}, "stable_s"),
        ({"stable_tolerance_kg": -1}, "stable_tolerance_kg"),
        ({"stable_seconds": 3}, "stable_seconds"),  # renamed: says to what
        ({"tare_gross": True}, "tare_gross"),  # gone: says why
        ({"type": "xk3191"}, "type"),
    ],
)
def test_scale_config_errors_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(SchemaError) as exc:
        build(Holder, {"scale": kwargs})
    assert [p.path for p in exc.value.problems] == [f"scale.{field}"], exc.value.problems


def _reader(cfg: ScaleConfig, **kwargs: object) -> object:
    return driver_config.build(cfg, **kwargs)


def test_a_weight_under_min_load_is_the_empty_bridge(cable: PtyCable) -> None:
    stables: list[StableWeight] = []
    cfg = Xk3190Config(port=cable.port, stable_s=0.2, min_load_kg=500)
    reader = _reader(cfg, on_stable=stables.append).start()
    sim = ScaleSimulator(cable.master, 180, rate_hz=50).start()  # a person on the bridge
    try:
        assert wait_for(lambda: reader.latest is not None and reader.latest.kg == 180)
        time_enough = wait_for(lambda: reader.detector.stable is not None)
        assert time_enough and reader.stable is None and stables == []
        sim.kg = 32000
        assert wait_for(lambda: reader.stable is not None and reader.stable.kg == 32000)
        # the callback runs on the reader's thread just after the state it reports
        assert wait_for(lambda: [s.kg for s in stables] == [32000]), stables
    finally:
        sim.close()
        assert reader.close()


def test_scale_reader_over_pty_with_simulator(cable: PtyCable) -> None:
    stables: list[StableWeight] = []
    cfg = Xk3190Config(port=cable.port, stable_tolerance_kg=20, stable_s=0.3)
    reader = _reader(cfg, on_stable=stables.append).start()
    sim = ScaleSimulator(cable.master, 0, rate_hz=50, profile=[(0.1, 18000), (0.3, 31240)]).start()
    try:
        assert wait_for(lambda: len(stables) == 1)
        assert stables[0].kg == 31240
        assert reader.latest is not None and reader.stable is not None
        cable.write(b"\x02+99\x03garbage")
        sim.kg = 0
        assert wait_for(lambda: reader.latest is not None and reader.latest.kg == 0)
        assert reader.stats()["bad_frames"] + reader.stats()["garbage_bytes"] > 0
    finally:
        sim.close()
        assert reader.close()


def test_scale_reader_goes_stale_when_indicator_silent(cable: PtyCable) -> None:
    now = [1000.0]
    cfg = Xk3190Config(port=cable.port, stale_s=2.0)
    reader = _reader(cfg, clock=lambda: now[0]).start()
    try:
        assert wait_for(lambda: reader.line.connected)
        os.write(cable.master, encode_xk3190(5000))
        assert wait_for(lambda: reader.latest is not None)
        now[0] += 5
        assert reader.latest is None and reader.stable is None
    finally:
        reader.close()
