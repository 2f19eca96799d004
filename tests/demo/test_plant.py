"""The demo's plant: its meter read by the real poller, its platform decoding what a box sends.

Real parts: the demo config as ``edged demo`` fills it in, pymodbus's own
server on loopback, the data logger's poller, an SM4-encrypted HJ 212-2025
packet over TCP. The whole demo (the daemon polling and reporting) is
``tests/app/test_daemon.py``.
"""

from __future__ import annotations

import math
import socket
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from structlog.testing import capture_logs

from drivers.simulators import self_signed_certificate
from edged.config.load import parse
from edged.datalogger.poller import Poller
from edged.datalogger.registers import point_key
from edged.demo.plant import DemoPlant, describe, fan_supply
from edged.hj212.codec import Cp, Packet, decode, encode_all, version_flag

REPO = Path(__file__).resolve().parents[2]


def demo_config(plant: DemoPlant, data_dir: Path) -> Any:
    """config/demo.toml with its placeholders filled in as ``edged demo`` does."""
    text = (REPO / "config" / "demo.toml").read_text(encoding="utf-8")
    for key, value in {
        "@DATA_DIR@": str(data_dir),
        "@MODEL_DIR@": str(REPO / "models" / "onnx"),
        "@MQTT_PORT@": "1883",
        "@REPO@": str(REPO),
        "@RFID_PORT@": "/dev/rfid",
        "@SCALE_PORT@": "/dev/scale",
        "@DISPLAY_PORT@": "/dev/display",
        "@SNAPSHOT_URL@": "https://127.0.0.1/ISAPI/Streaming/channels/101/picture",
        "@SNAPSHOT_CA@": self_signed_certificate(data_dir, "exit-camera")[0],
        "@MODBUS_PORT@": str(plant.modbus_port),
        "@HJ212_PORT@": str(plant.hj212_port),
        "@RECEIVER_PORT@": "8088",
    }.items():
        text = text.replace(key, value)
    return parse(text, str(data_dir / "edged.toml"))


def test_fan_supply_stays_plausible_and_moves() -> None:
    day = [fan_supply(t) for t in range(0, 24 * 3600, 7)]
    for r in day:
        assert 220 < r["ua"] < 236 and 220 < r["ub"] < 236 and 220 < r["uc"] < 236
        assert 70 < r["ia"] < 110 and 0.85 < r["pf_total"] < 0.89
        assert abs(r["freq"] - 50) <= 0.03
        watts = r["pf_total"] * sum(
            r[u] * r[i] for u, i in (("ua", "ia"), ("ub", "ib"), ("uc", "ic"))
        )
        assert math.isclose(r["p_total"], watts / 1000)
    currents = [r["ia"] for r in day[:50]]  # the first six minutes
    assert max(currents) - min(currents) > 5  # the load drifts, it is not a constant


def test_meter_answers_the_register_map_and_counts_energy(tmp_path: Path) -> None:
    plant = DemoPlant()
    cfg = demo_config(plant, tmp_path)
    device = cfg.modbus.devices[0]
    plant.start(cfg, SimpleNamespace(box=None))
    poller = Poller(cfg.modbus, lambda samples: None)
    try:
        first = {s.key: s for s in poller.poll_device(device)}
        time.sleep(1.0)
        second = {s.key: s for s in poller.poll_device(device)}
    finally:
        poller.stop()
        plant.close()
    assert {s.flag for s in [*first.values(), *second.values()]} == {"N"}
    assert len(first) == len(device.points) == 10
    for p in device.points:  # every value inside the limits the map gives it
        value = first[point_key(device.name, p)].value
        assert (p.low or -math.inf) <= value <= (p.high or math.inf)
    volts, amps = first["i12001"].value, first["i12004"].value
    assert 220 < volts < 236 and 70 < amps < 110  # scaled back from the meter's 0.1 V and mA
    rise = second["i12009"].value - first["i12009"].value
    assert 0 < rise < 60 * 2 / 3600  # a 60 kW fan uses under 0.04 kWh in about 2 s
    assert plant.meters[0].meter.reads >= 2 * 4  # the map takes four reads a poll


def test_platform_decodes_encrypted_data_and_prints_it_on_one_line(tmp_path: Path) -> None:
    plant = DemoPlant()
    cfg = demo_config(plant, tmp_path)
    city = cfg.hj212.platforms[0]
    assert (city.version, city.port) == ("2025", plant.hj212_port) and city.sm4_key
    factors = {f"i12{n:03d}": {"Rtd": "228.6", "Flag": "N"} for n in range(1, 10)}
    packet = Packet(
        "2011",
        city.mn,
        city.pw,
        "31",
        "20260101080000000",
        version_flag("2025") | 1,
        cp=Cp({"DataTime": "20260101080000"}, factors),
    )
    chunks = encode_all(packet, sm4_key=bytes.fromhex(city.sm4_key))
    assert len(chunks) > 1  # encrypted, nine factors go out in parts
    with capture_logs() as logs:
        plant.start(cfg, SimpleNamespace(box=None))
        try:
            with socket.create_connection(("127.0.0.1", plant.hj212_port), timeout=5) as sock:
                sock.sendall(b"".join(chunks))
                answer = decode(sock.recv(4096))
        finally:
            plant.close()
    assert (answer.cn, answer.qn) == ("9014", packet.qn)
    got = [e for e in logs if e["event"] == "demo_platform_received"]
    assert len(got) == 1, logs
    assert got[0]["cn"] == "2011" and got[0]["encrypted"] and got[0]["parts"] == len(chunks)
    assert got[0]["factors"] == describe(packet.cp)
    assert got[0]["factors"].startswith("i12001 228.6 N, i12002 228.6 N")
    closed = next(e for e in logs if e["event"] == "demo_platform_closed")
    assert closed["by_cn"] == "2011:1"


def test_describe_shows_minute_data_as_average_range_and_total() -> None:
    cp = Cp(
        {"DataTime": "20260101080000"},
        {
            "i12004": {"Min": "88.01", "Avg": "90.08", "Max": "91.23", "Flag": "N"},
            "i12009": {"Min": "1.0", "Avg": "1.2", "Max": "1.4", "Cou": "0.45", "Flag": "T"},
            "i23005": {"Info": "3D1219C7"},
        },
    )
    assert describe(cp) == (
        "i12004 90.08 (88.01..91.23) N, i12009 1.2 (1.0..1.4) Cou 0.45 T, i23005 Info=3D1219C7"
    )
