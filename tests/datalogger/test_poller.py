"""The poller against pymodbus's own servers (TCP, and RTU over a pty pair)."""

from __future__ import annotations

import struct
import threading
import time
import tomllib
from pathlib import Path

import pytest

from drivers.simulators import Meter, RtuMeters, TcpMeters
from edged.config.load import schema
from edged.datalogger.poller import Poller
from edged.datalogger.registers import ModbusConfig, ModbusDevice, PollGroup, RegisterPoint
from edged.datalogger.store import DataStore, rules_from_points

METERS = Path(__file__).resolve().parents[2] / "config" / "meters"
FMT = {
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "float32": "f",
    "int64": "q",
    "uint64": "Q",
}


def wire(type_: str, order: str, value: float) -> list[int]:
    """Words as a meter sends them, built independently of the code under test."""
    big = struct.pack(">" + FMT[type_], value)
    if len(big) == 2:
        return [int.from_bytes(big if order in ("ABCD", "CDAB") else big[::-1], "big")]
    words = [big[i : i + 2] for i in range(0, len(big), 2)]
    if order in ("CDAB", "DCBA"):
        words.reverse()
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, str, str, dict]] = []

    def __call__(self, kind, severity, message, **details):
        self.items.append((kind, severity, message, details))

    def kinds(self) -> list[str]:
        return [k for k, *_ in self.items]


@pytest.fixture
def meter():
    m = Meter(unit=3)
    srv = TcpMeters([m])
    yield m, srv.port
    srv.stop()


def tcp_device(port: int, points, **kw) -> ModbusDevice:
    args = {"name": "m1", "timeout_s": 0.3, "retries": 1, "unit": 3} | kw
    return ModbusDevice(transport="tcp", host="127.0.0.1", port=port, points=points, **args)


def test_every_type_and_order_decoded_from_the_server(meter):
    m, port = meter
    cases = {
        "int16": -1234,
        "uint16": 54321,
        "int32": -7654321,
        "uint32": 3_000_000_000,
        "float32": -273.25,
        "int64": -(2**40) - 5,
        "uint64": 2**50 + 3,
    }
    points, expected, addr = [], {}, 0
    for type_, value in cases.items():
        for order in ("ABCD", "CDAB", "BADC", "DCBA"):
            p = RegisterPoint(
                name=f"{type_}_{order}",
                function=4 if addr % 3 else 3,
                address=addr,
                type=type_,
                order=order,
            )
            m.set_words("input" if p.function == 4 else "holding", addr, wire(type_, order, value))
            points.append(p)
            expected[p.name] = value
            addr += p.width + 1  # a hole between points: separate reads
    points.append(RegisterPoint(name="scaled", address=900, type="uint16", scale=0.1, offset=-40))
    m.holding[900] = 655
    points.append(RegisterPoint(name="di", function=2, address=7, type="bool"))
    m.discrete[7] = True
    points.append(RegisterPoint(name="coil", function=1, address=2, type="bool"))
    got = []
    poller = Poller(ModbusConfig(devices=[tcp_device(port, points)]), got.extend)
    try:
        samples = poller.poll_device(poller.config.devices[0])
    finally:
        poller.stop()
    values = {s.key.split(".", 1)[1]: s.value for s in samples}
    for name, value in expected.items():
        assert values[name] == pytest.approx(value, rel=1e-6), name
    assert values["scaled"] == pytest.approx(25.5)
    assert (values["di"], values["coil"]) == (1.0, 0.0)
    assert {s.flag for s in samples} == {"N"}
    assert got == samples


def test_silent_device_gets_flag_b_success_rate_drops_and_recovers(meter):
    m, port = meter
    points = [
        RegisterPoint(name="i", address=0, type="uint16", factor="i13001"),
        RegisterPoint(name="j", address=10, type="uint16"),
    ]
    m.holding[0] = 42
    events = Events()
    poller = Poller(ModbusConfig(devices=[tcp_device(port, points)]), lambda s: None, events)
    dev = poller.config.devices[0]
    try:
        for _ in range(3):
            assert [s.flag for s in poller.poll_device(dev)] == ["N", "N"]
        m.silent = True
        reads_before = m.reads
        bad = poller.poll_device(dev)
        assert [(s.flag, s.value) for s in bad] == [("B", None), ("B", None)]
        assert (
            m.reads - reads_before == 2
        )  # 1 + 1 retry on the first block; the second was not tried
        poller.poll_device(dev)
        st = poller.stats()["m1"]
        assert (st["polls"], st["ok"], st["success_rate"], st["state"]) == (5, 3, 0.6, "comm_fault")
        assert "No response" in st["last_error"] or "tries" in st["last_error"]
        m.silent = False
        assert [s.value for s in poller.poll_device(dev)] == [42.0, 0.0]
    finally:
        poller.stop()
    assert events.kinds() == ["comm_fault", "recovered"]
    assert events.items[0][3]["device"] == "m1"
    assert poller.stats()["m1"]["state"] == "ok"


def test_modbus_exception_is_flag_d_and_bad_float_is_d(meter):
    m, port = meter
    events = Events()
    points = [RegisterPoint(name="f", address=0, type="float32")]
    poller = Poller(ModbusConfig(devices=[tcp_device(port, points)]), lambda s: None, events)
    dev = poller.config.devices[0]
    try:
        m.exception = 2
        (s,) = poller.poll_device(dev)
        assert (s.flag, s.value) == ("D", None)
        assert poller.stats()["m1"]["state"] == "device_fault"
        m.exception = None
        m.set_words("holding", 0, [0x7FC0, 0x0000])  # NaN: the meter has no valid value
        (s,) = poller.poll_device(dev)
        assert (s.flag, s.value) == ("D", None)
    finally:
        poller.stop()
    assert events.kinds() == ["device_fault"]
    assert "illegal data address" in events.items[0][2]


def test_over_limit_flag_t_and_one_event_per_crossing(meter):
    m, port = meter
    events = Events()
    points = [
        RegisterPoint(
            name="amps",
            address=0,
            type="uint16",
            scale=0.1,
            low=2.0,
            high=50.0,
            factor="i13001",
            unit="A",
        )
    ]
    poller = Poller(ModbusConfig(devices=[tcp_device(port, points)]), lambda s: None, events)
    dev = poller.config.devices[0]
    flags = []
    try:
        for raw in (100, 600, 650, 300, 10):
            m.holding[0] = raw
            flags.append(poller.poll_device(dev)[0].flag)
    finally:
        poller.stop()
    assert flags == ["N", "T", "T", "N", "T"]
    assert events.kinds() == ["over_limit", "limit_cleared", "over_limit"]
    _kind, severity, message, details = events.items[0]
    assert severity == "alarm" and details["value"] == 60.0 and details["factor"] == "i13001"
    assert "60A" in message


def test_broken_event_consumer_does_not_stop_polling(meter):
    m, port = meter

    def explode(*_a, **_k):
        raise RuntimeError("ledger down")

    points = [RegisterPoint(name="v", address=0, type="uint16", high=1)]
    m.holding[0] = 5
    poller = Poller(ModbusConfig(devices=[tcp_device(port, points)]), lambda s: None, explode)
    try:
        assert poller.poll_device(poller.config.devices[0])[0].flag == "T"
    finally:
        poller.stop()


def test_rtu_over_pty_pair():
    m = Meter(unit=7)
    m.set_words("holding", 100, wire("float32", "CDAB", 229.5))
    m.discrete[1] = True
    srv = RtuMeters([m], baudrate=19200)
    dev = ModbusDevice(
        name="rtu1",
        transport="rtu",
        serial_port=srv.port,
        baudrate=19200,
        unit=7,
        timeout_s=0.5,
        retries=1,
        points=[
            RegisterPoint(name="u", address=100, type="float32", order="CDAB"),
            RegisterPoint(name="di", function=2, address=1, type="bool"),
        ],
    )
    poller = Poller(ModbusConfig(devices=[dev]), lambda s: None)
    try:
        samples = poller.poll_device(dev)
    finally:
        poller.stop()
        srv.stop()
    assert [(s.value, s.flag) for s in samples] == [(1.0, "N"), (229.5, "N")]


def test_dead_rs485_bus_does_not_delay_tcp_devices(meter):
    m, port = meter
    m.holding[0] = 1
    dead = Meter(unit=9, silent=True)
    rtu = RtuMeters([dead])
    groups = [PollGroup(name="fast", interval_s=1)]
    slow_dev = ModbusDevice(
        name="dead",
        transport="rtu",
        serial_port=rtu.port,
        baudrate=19200,
        unit=9,
        timeout_s=1.0,
        retries=2,
        poll_group="fast",
        points=[RegisterPoint(name="x", address=0, type="uint16")],
    )
    fast_dev = tcp_device(
        port, [RegisterPoint(name="y", address=0, type="uint16")], name="alive", poll_group="fast"
    )
    times: dict[str, list[float]] = {"alive": [], "dead": []}
    lock = threading.Lock()

    def sink(samples):
        with lock:
            times[samples[0].key.split(".")[0]].append(time.monotonic())

    poller = Poller(ModbusConfig(poll_groups=groups, devices=[slow_dev, fast_dev]), sink)
    poller.start()
    time.sleep(3.4)
    poller.stop()
    rtu.stop()
    assert len(times["alive"]) >= 3  # 1 s cadence kept while each dead poll takes 3 s
    assert len(times["dead"]) <= 2
    stats = poller.stats()
    assert stats["alive"]["success_rate"] == 1.0
    assert stats["dead"]["success_rate"] == 0.0


@pytest.mark.parametrize("path", sorted(METERS.glob("*.toml")), ids=lambda p: p.name)
def test_example_meter_maps_load_and_poll(path, meter):
    m, port = meter
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    cfg = schema.build(ModbusConfig, data["modbus"])
    (dev,) = cfg.devices
    assert dev.points, "a meter map without points"
    # point the map at the simulator and give every point a known value
    sim_dev = ModbusDevice(
        **{
            **{f: getattr(dev, f) for f in dev.__dataclass_fields__},
            "transport": "tcp",
            "host": "127.0.0.1",
            "port": port,
            "unit": 3,
        }
    )
    want = {}
    for i, p in enumerate(dev.points):
        if p.type == "bool":
            (m.discrete if p.function == 2 else m.coils)[p.address] = True
            if p.function in (3, 4):
                m.set_words(
                    "holding" if p.function == 3 else "input", p.address, [1 << (p.bit or 0)]
                )
            want[p.name] = 1.0
        else:
            raw = 1000 + i
            m.set_words(
                "holding" if p.function == 3 else "input", p.address, wire(p.type, p.order, raw)
            )
            want[p.name] = raw * p.scale + p.offset
    poller = Poller(ModbusConfig(devices=[sim_dev]), lambda s: None)
    try:
        samples = poller.poll_device(sim_dev)
    finally:
        poller.stop()
    by_name = {
        next(p.name for p in dev.points if (p.factor or f"{dev.name}.{p.name}") == s.key): s
        for s in samples
    }
    for name, value in want.items():
        assert by_name[name].value == pytest.approx(value), name
    assert all(s.flag in "NT" for s in samples)


def test_poller_into_store_end_to_end(meter, tmp_path):
    from datetime import datetime, timedelta

    m, port = meter
    points = [RegisterPoint(name="kwh", address=0, type="uint32", factor="e01001", cou="delta")]
    cfg = ModbusConfig(devices=[tcp_device(port, points)])
    store = DataStore(tmp_path / "d.sqlite3", rules_from_points(cfg.points_by_key()))
    clock = iter(datetime(2026, 3, 1, 10, 0, 0) + timedelta(seconds=20 * i) for i in range(100))
    poller = Poller(cfg, store.add_samples, wall_clock=lambda: next(clock))
    try:
        for i in range(6):  # two minutes at 20 s
            m.set_words("holding", 0, wire("uint32", "ABCD", 5000 + 3 * i))
            poller.poll_device(cfg.devices[0])
    finally:
        poller.stop()
    store.close_periods(datetime(2026, 3, 1, 10, 2, 1))
    rows = store.records("2051", datetime(2026, 3, 1, 10, 0), datetime(2026, 3, 1, 10, 1))
    assert [r[1]["e01001"]["Cou"] for r in rows] == [6.0, 9.0]
    assert rows[0][1]["e01001"] | {} == {
        "Avg": 5003.0,
        "Min": 5000.0,
        "Max": 5006.0,
        "Cou": 6.0,
        "Flag": "N",
    }


def test_two_meters_on_one_rtu_line_one_dead():
    good, dead = Meter(unit=1), Meter(unit=2, silent=True)
    good.holding[0] = 77
    srv = RtuMeters([good, dead])
    pts = [RegisterPoint(name="v", address=0, type="uint16")]
    devs = [
        ModbusDevice(
            name=f"u{u}",
            serial_port=srv.port,
            baudrate=19200,
            unit=u,
            timeout_s=0.3,
            retries=r,
            points=pts,
        )
        for u, r in ((1, 1), (2, 0))
    ]
    events = Events()
    poller = Poller(ModbusConfig(devices=devs), lambda s: None, events)
    try:
        results = [poller.poll_device(d)[0] for d in devs for _ in range(2)]
    finally:
        poller.stop()
        srv.stop()
    assert [(s.key, s.value, s.flag) for s in results] == [
        ("u1.v", 77.0, "N"),
        ("u1.v", 77.0, "N"),
        ("u2.v", None, "B"),
        ("u2.v", None, "B"),
    ]
    assert dead.reads == 2  # retries=0 for this meter: one try per poll
    assert events.kinds() == ["comm_fault"]
