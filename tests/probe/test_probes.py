"""``edged probe camera|gpio|modbus|mqtt|hj212`` against real parts: a verdict line each.

Every probe ends with exactly one line starting PASS or FAIL and exits 0 or
1; these tests run the real CLI against an image folder, gpiozero mock pins,
pymodbus's own server, mosquitto and an asyncio HJ 212 platform.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from drivers.simulators import Meter, TcpMeters
from edged.cli.main import main
from edged.hj212.codec import FLAG_REPLY
from edged.hj212.platform_sim import PlatformSimulator
from edged.lpr.models import check_models
from tests.box_rig import base_toml
from tests.broker import Mosquitto

REPO = Path(__file__).resolve().parents[2]
MN = "66330300010100001001"


def _config(tmp_path: Path, body: str = "") -> Path:
    path = tmp_path / "edged.toml"
    path.write_text(
        base_toml(tmp_path)
        + f"""
[lpr]
model_dir = "{REPO / "models" / "onnx"}"
{body}
""",
        encoding="utf-8",
    )
    return path


def _verdict(text: str) -> str:
    """The one PASS/FAIL line, which must be the last line."""
    lines = text.strip().splitlines()
    verdicts = [ln for ln in lines if ln.startswith(("PASS", "FAIL"))]
    assert len(verdicts) == 1, text
    assert lines[-1] == verdicts[0], text
    return verdicts[0]


def _probe(capsys: pytest.CaptureFixture[str], cfg: Path, *args: str) -> tuple[int, str, str]:
    rc = main(["--config", str(cfg), "probe", *args])
    out = capsys.readouterr().out
    return rc, _verdict(out), out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- camera --------------------------------------------------------------------


def _frames(tmp_path: Path, image: np.ndarray, n: int = 3) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:02d}.png"), image)
    return folder


def test_camera_pass_reports_size_fps_and_saves_a_frame(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _frames(tmp_path, np.full((360, 640, 3), 90, np.uint8))
    cfg = _config(tmp_path, f'[camera]\ntype = "folder"\nfolder = "{folder}"\nfps = 50\n')
    saved = tmp_path / "aim.jpg"
    rc, verdict, out = _probe(capsys, cfg, "camera", "--frames", "6", "--save", str(saved))
    assert rc == 0, out
    assert verdict.startswith("PASS: folder:frames: 6 frames 640x360 at ")
    assert "fps measured (configured 50)" in out
    assert "decode on_demand: " in out and "frames a second taken" in out
    assert cv2.imread(str(saved)).shape == (360, 640, 3)


def test_camera_read_prints_the_plate_in_view(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if check_models(REPO / "models" / "onnx"):
        pytest.skip("models not fetched: run python models/fetch.py")
    from edged.lpr.synth import render_scene

    folder = _frames(tmp_path, render_scene("京A12345", "blue", size=(1280, 720), seed=1), n=2)
    cfg = _config(tmp_path, f'[camera]\ntype = "folder"\nfolder = "{folder}"\nfps = 50\n')
    rc, verdict, out = _probe(capsys, cfg, "camera", "--frames", "2", "--read")
    assert rc == 0, out
    assert "plate 京A12345 confidence" in out
    assert verdict.endswith("plates read: 京A12345")
    width = float(out.split("plate 京A12345 confidence")[1].split(" width ")[1].split(" px")[0])
    assert 150 < width < 400 and "plate is small" not in out


def test_camera_read_says_when_the_plate_is_small_for_the_recogniser(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if check_models(REPO / "models" / "onnx"):
        pytest.skip("models not fetched: run python models/fetch.py")
    from edged.lpr.synth import render_scene

    frame = render_scene("京A12345", "blue", size=(1280, 720), seed=1, plate_width=100)
    folder = _frames(tmp_path, frame, n=2)
    cfg = _config(tmp_path, f'[camera]\ntype = "folder"\nfolder = "{folder}"\nfps = 50\n')
    rc, verdict, out = _probe(capsys, cfg, "camera", "--frames", "2", "--read")
    assert rc == 0 and verdict.endswith("plates read: 京A12345"), out
    assert "plate is small: under 120 px" in out and "[lpr] roi" in out


def test_camera_probe_of_a_snapshot_camera_says_what_a_picture_costs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from drivers.simulators import SnapshotCameraSimulator

    sim = SnapshotCameraSimulator(size=(640, 360)).start()
    try:
        body = f'[camera]\ntype = "snapshot"\nurl = "{sim.url}"\nusername = "admin"\n'
        cfg = _config(tmp_path, body + 'password = "cam-pass"\n')
        rc, verdict, out = _probe(capsys, cfg, "camera", "--frames", "3")
        assert rc == 0, out
        assert verdict.startswith(f"PASS: snapshot:{sim.url}: 3 frames 640x360 at ")
        assert "decode on_request: a snapshot " in out and "one every 10 s" in out
        cfg = _config(tmp_path, body + 'password = "wrong"\n')
        rc, verdict, _ = _probe(capsys, cfg, "camera")
        assert rc == 1 and "HTTP 401" in verdict and "username and password" in verdict, verdict
    finally:
        sim.stop()


@pytest.fixture
def https_camera(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """An https snapshot camera with its own certificate: (config body, certificate file)."""
    from drivers.simulators import SnapshotCameraSimulator, self_signed_certificate

    cert, key = self_signed_certificate(tmp_path, "camera")
    sim = SnapshotCameraSimulator(size=(640, 360), tls=(cert, key)).start()
    body = f'[camera]\ntype = "snapshot"\nurl = "{sim.url}"\nusername = "admin"\n'
    yield body + 'password = "cam-pass"\n', cert
    sim.stop()


def test_camera_probe_of_an_https_camera_says_how_its_certificate_is_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], https_camera: tuple[str, str]
) -> None:
    body, cert = https_camera
    rc, verdict, out = _probe(capsys, _config(tmp_path, body), "camera", "--frames", "2")
    assert rc == 1 and "certificate not accepted" in verdict and "tls_ca_file" in verdict
    assert "checked against the system's CAs" in out
    assert "device (or folder)" not in verdict  # its own advice, not the generic one
    cfg = _config(tmp_path, body + f'tls_ca_file = "{cert}"\n')
    rc, verdict, out = _probe(capsys, cfg, "camera", "--frames", "2")
    assert rc == 0 and f"checked against {cert}" in out, out


def test_camera_probe_takes_an_https_cameras_certificate_and_pins_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], https_camera: tuple[str, str]
) -> None:
    import hashlib
    import ssl

    body, cert = https_camera
    saved = tmp_path / "entry-camera.pem"
    cfg = _config(tmp_path, body)
    rc, verdict, out = _probe(capsys, cfg, "camera", "--frames", "2", "--save-cert", str(saved))
    assert rc == 0, out  # probed with the certificate it just took
    der = ssl.PEM_cert_to_DER_cert(Path(cert).read_text())
    assert ssl.PEM_cert_to_DER_cert(saved.read_text()) == der
    digest = hashlib.sha256(der).hexdigest().upper()
    assert ":".join(digest[i : i + 2] for i in range(0, 64, 2)) in out
    assert f'set tls_ca_file = "{saved}"' in out and f"checked against {saved}" in out
    folder = _config(tmp_path, f'[camera]\ntype = "folder"\nfolder = "{tmp_path}"\n')
    rc, verdict, _ = _probe(capsys, folder, "camera", "--save-cert", str(saved))
    assert rc == 1 and "not an https:// snapshot URL" in verdict


def test_camera_fail_when_it_cannot_open_or_gives_no_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, f'[camera]\ntype = "folder"\nfolder = "{tmp_path / "gone"}"\n')
    rc, verdict, _ = _probe(capsys, cfg, "camera")
    assert rc == 1
    assert verdict.startswith("FAIL: cannot open folder:gone: replay folder ")
    # a video that opens but holds no frame: the frame read fails
    empty = tmp_path / "empty.avi"
    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48)).release()
    rc, verdict, _ = _probe(capsys, cfg, "camera", "--folder", str(empty), "--timeout", "1")
    assert rc == 1
    assert verdict.startswith("FAIL: frame 1 of 20 from folder:empty.avi did not arrive (")
    cfg = _config(tmp_path, '[camera]\ntype = "picamera2"\n')
    rc, verdict, _ = _probe(capsys, cfg, "camera")
    if rc == 0:
        pytest.skip("picamera2 is installed here")
    assert verdict.startswith("FAIL: cannot open picamera2: ")


# -- GPIO ----------------------------------------------------------------------


def _cli(cfg: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edged", "--config", str(cfg), "probe", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_gpio_without_a_pin_factory_is_a_clear_fail(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
    res = _cli(_config(tmp_path), "gpio", env=env)
    if res.returncode == 0:
        pytest.skip("this machine has real GPIO")
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert _verdict(res.stdout).startswith("FAIL: no GPIO on this machine")
    assert "GPIOZERO_PIN_FACTORY=mock" in res.stdout


def test_gpio_mock_factory_from_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock"}
    res = _cli(_config(tmp_path, "[gpio]\npulse_ms = 50\n"), "gpio", "--pulse", "barrier", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "pin factory: MockFactory" in res.stdout
    assert "input  ground_loop    BCM22  inactive" in res.stdout
    assert _verdict(res.stdout).startswith("PASS: GPIO opened, inputs read; barrier_open pulsed")


@pytest.fixture
def mock_pins() -> Any:
    old = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    yield factory
    factory.close()
    Device.pin_factory = old


def test_gpio_shows_inputs_and_pulses_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mock_pins: MockFactory
) -> None:
    cfg = _config(tmp_path, "[gpio]\npulse_ms = 50\n")
    # a vehicle drives onto the loop while the technician watches the inputs: once the
    # probe has opened the input (its pull-down set), or opening it would undo the drive
    loop = mock_pins.pin(22)

    def vehicle_arrives() -> None:
        deadline = time.monotonic() + 30
        while loop.pull != "down" and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        loop.drive_high()

    threading.Thread(target=vehicle_arrives, daemon=True).start()
    rc, verdict, out = _probe(capsys, cfg, "gpio", "--watch", "1")
    assert rc == 0
    assert "input  ground_loop    BCM22  inactive" in out
    assert "s ground_loop ACTIVE (vehicle on the loop)" in out
    assert "(a vehicle is reported present)" in verdict
    assert [s.state for s in mock_pins.pin(17).states] == [False]  # barrier untouched
    rc, verdict, _ = _probe(capsys, cfg, "gpio", "--pulse", "barrier")
    assert rc == 0 and "barrier_open pulsed 50 ms" in verdict
    assert [s.state for s in mock_pins.pin(17).states][-2:] == [True, False]
    rc, verdict, _ = _probe(capsys, cfg, "gpio", "--pulse", "lamp")
    assert (
        rc == 1
        and verdict == "FAIL: allowed_lamp is not fitted (no pin): set gpio.allowed_lamp.pin"
    )


def test_gpio_pulses_the_alarm_for_its_configured_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mock_pins: MockFactory
) -> None:
    cfg = _config(tmp_path, "[gpio]\nalarm_s = 0.2\n")
    rc, verdict, _ = _probe(capsys, cfg, "gpio", "--pulse", "alarm")
    assert rc == 0 and "alarm on for 0.2 s" in verdict


# -- Modbus --------------------------------------------------------------------

_METER_MAP = """
[[modbus.devices]]
name = "{name}"
transport = "tcp"
host = "127.0.0.1"
port = {port}
unit = {unit}
timeout_s = 0.5
retries = 0
[[modbus.devices.points]]
name = "ua"
address = 0
scale = 0.1
unit = "V"
[[modbus.devices.points]]
name = "power"
function = 4
address = 10
type = "float32"
unit = "kW"
"""


def test_modbus_reads_each_device_and_names_the_failing_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = Meter(unit=1, holding={0: 2301})
    good.set_words("input", 10, [0x4148, 0x0000])  # 12.5 as float32 ABCD
    refusing = Meter(unit=2, exception=2)
    meters = TcpMeters([good, refusing])
    try:
        cfg = _config(
            tmp_path,
            _METER_MAP.format(name="fan1", port=meters.port, unit=1)
            + _METER_MAP.format(name="fan2", port=meters.port, unit=2)
            + _METER_MAP.format(name="pump", port=_closed_port(), unit=1),
        )
        rc, verdict, out = _probe(capsys, cfg, "modbus", "--device", "fan1")
        assert rc == 0, out
        assert "  ua                          230.1 V      N ok" in out
        assert "  power                        12.5 kW     N ok" in out
        assert verdict == "PASS: 1 Modbus devices answered, 2 values read"
        rc, verdict, out = _probe(capsys, cfg, "modbus")
    finally:
        meters.stop()
    assert rc == 1
    assert "device fan2: ANSWERED WITH AN ERROR (" in out
    assert "device pump: NO ANSWER (" in out
    assert verdict.startswith("FAIL: 2 of 3 Modbus devices failed: fan2 (")
    assert "pump (no answer)" in verdict and "RS485 A/B" in verdict
    rc, verdict, _ = _probe(capsys, cfg, "modbus", "--device", "nosuch")
    assert rc == 1 and verdict.startswith("FAIL: no Modbus device named nosuch")


# -- MQTT ----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["auto", "3.1.1"])
def test_mqtt_round_trip_through_the_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mosquitto: Mosquitto, protocol: str
) -> None:
    cfg = _config(
        tmp_path, f'[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto.port}\nprotocol = "{protocol}"\n'
    )
    rc, verdict, out = _probe(capsys, cfg, "mqtt")
    assert rc == 0, out
    version = "5" if protocol == "auto" else "3.1.1"
    assert verdict.startswith(f"PASS: MQTT {version} broker 127.0.0.1:{mosquitto.port}: connected")
    assert "round trip" in verdict and verdict.endswith("on edged/p1/g1/probe")
    assert "client id edged-p1-g1-probe" in out  # never the daemon's own id


def test_mqtt_fail_on_a_closed_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = _closed_port()
    cfg = _config(tmp_path, f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\n')
    rc, verdict, _ = _probe(capsys, cfg, "mqtt", "--timeout", "3")
    assert rc == 1
    assert verdict.startswith(f"FAIL: connection refused by 127.0.0.1:{port}: check mqtt.host")


def test_mqtt_fail_names_the_brokers_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = Mosquitto(workdir=tmp_path / "mosq")
    broker.conf.write_text(
        f"listener {broker.port} 127.0.0.1\nallow_anonymous false\npersistence false\n"
    )
    broker.start()
    try:
        cfg = _config(tmp_path, f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n')
        rc, verdict, _ = _probe(capsys, cfg, "mqtt", "--timeout", "5")
    finally:
        broker.stop()
    assert rc == 1
    assert verdict.startswith(f"FAIL: broker 127.0.0.1:{broker.port} refused the connection: ")
    assert verdict.endswith(
        "check mqtt.username and mqtt.password and the broker's user list and ACL"
    )


# -- HJ 212 --------------------------------------------------------------------


class _Platform:
    """The test platform on its own event loop, so the CLI can talk to it."""

    def __init__(self, mode: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.fake = PlatformSimulator(mode, mn=MN)
        self._run(self.fake.start())
        self.port = self.fake.port

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(5)

    def stop(self) -> None:
        self._run(self.fake.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


def _platform_cfg(tmp_path: Path, port: int, name: str = "city") -> str:
    return (
        f'[[hj212.platforms]]\nname = "{name}"\nhost = "127.0.0.1"\nport = {port}\n'
        f'mn = "{MN}"\ntimeout_s = 2\n'
    )


def test_hj212_pass_on_the_platforms_9014(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    platform = _Platform("ack")
    try:
        rc, verdict, out = _probe(
            capsys, _config(tmp_path, _platform_cfg(tmp_path, platform.port)), "hj212"
        )
        got = list(platform.fake.received)
    finally:
        platform.stop()
    assert rc == 0, out
    assert verdict.startswith("PASS: HJ 212 9014 reply from city ")
    assert len(got) == 1 and got[0].cn == "2011" and got[0].mn == MN
    assert got[0].flag is not None and got[0].flag & FLAG_REPLY
    assert "received CN 9014" in out


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("silent", "FAIL: city: no 9014 reply within 0.5 s: check that mn and pw match"),
        ("refuse", "FAIL: city: the platform closed the connection without a reply"),
    ],
)
def test_hj212_fail_when_the_platform_does_not_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str, expected: str
) -> None:
    platform = _Platform(mode)
    try:
        cfg = _config(tmp_path, _platform_cfg(tmp_path, platform.port))
        rc, verdict, _ = _probe(capsys, cfg, "hj212", "--timeout", "0.5")
    finally:
        platform.stop()
    assert rc == 1
    assert verdict.startswith(expected)


def test_hj212_fail_on_refused_and_bad_replies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = socket.create_server(("127.0.0.1", 0))

    def answer_garbage() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            conn.recv(4096)  # until the probe hangs up

    t = threading.Thread(target=answer_garbage, daemon=True)
    t.start()
    closed = _closed_port()
    cfg = _config(
        tmp_path,
        _platform_cfg(tmp_path, server.getsockname()[1], "web")
        + _platform_cfg(tmp_path, closed, "down"),
    )
    try:
        rc, verdict, out = _probe(capsys, cfg, "hj212", "--timeout", "2")
    finally:
        t.join(5)
        server.close()
    assert rc == 1
    assert "platform web: web: the platform sent" in out and "not HJ 212 packets" in out
    assert verdict.startswith("FAIL: 2 of 2 HJ 212 platforms failed: ")
    assert f"down: connection refused by 127.0.0.1:{closed}" in verdict
