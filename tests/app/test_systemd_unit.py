"""The unit files are clean for systemd-analyze and keep the hardening we promise.

``systemd-analyze security --offline`` scores a unit file without a running
systemd: 0 is shut tight, 10 is wide open. The limits are the ones promised
for the field (edged.service 2.5, the USB export 4.0); the device and network
access each unit keeps is asserted line by line, so tightening cannot quietly
take away the serial ports, the GPIO chip, the camera or the network.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
UNIT = SYSTEMD / "edged.service"
EXPORT = SYSTEMD / "edged-usb-export@.service"
LIMITS = {"edged.service": 2.5, "edged-usb-export@.service": 4.0}

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (apt install systemd); scores not checked",
)


def settings(path: Path) -> list[tuple[str, str]]:
    return [
        (k.strip(), v.strip())
        for k, v in (
            line.split("=", 1)
            for line in path.read_text().splitlines()
            if "=" in line and not line.lstrip().startswith("#")
        )
    ]


def test_unit_has_notify_watchdog_and_hardening() -> None:
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "Restart=always",
        "WatchdogSec=",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/edged",
        "User=edged",
        "SyslogIdentifier=edged",
        "WorkingDirectory=/run/edged",
        "Environment=LG_WD=/run/edged",
        "RuntimeDirectory=edged",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
    ):
        assert line in text, line


def test_the_daemon_keeps_the_devices_and_networks_it_needs() -> None:
    s = settings(UNIT)
    allowed = {v for k, v in s if k == "DeviceAllow"}
    for device in (
        "char-ttyUSB rw",  # RS485 / USB serial: RFID reader, weighbridge, meters
        "char-ttyS rw",
        "char-ttyAMA rw",  # the Pi's UARTs
        "char-ttyACM rw",
        "char-gpiochip rw",  # lgpio on a Pi 4 / 5
        "/dev/gpiomem rw",
        "char-video4linux rw",  # USB / CSI cameras
        "char-media rw",
        "char-dma_heap rw",  # picamera2's frame buffers
        "char-alsa rw",  # WAV prompts for the driver (speech = "wav")
    ):
        assert device in allowed, device
    families = dict(s)["RestrictAddressFamilies"].split()
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= set(families)
    keys = {k for k, _ in s}
    assert "PrivateNetwork" not in keys and "IPAddressDeny" not in keys


def test_no_write_access_the_daemon_does_not_use() -> None:
    # The daemon writes its state directory only: never removable media
    # (the export unit does that) and it keeps no log files of its own.
    writable = [v for k, v in settings(UNIT) if k in ("ReadWritePaths", "LogsDirectory")]
    assert writable == ["/var/lib/edged"]
    # Device groups come from the user (set by the installer): a group named here
    # that the machine lacks would stop the start with status=216/GROUP.
    assert "SupplementaryGroups" not in {k for k, _ in settings(UNIT)}


def test_the_export_reaches_no_network_and_writes_only_the_stick_and_the_ledger() -> None:
    s = dict(settings(EXPORT))
    assert s["PrivateNetwork"] == "yes" and s["IPAddressDeny"] == "any"
    assert s["RestrictAddressFamilies"] == "AF_UNIX"
    assert s["PrivateDevices"] == "yes"  # it writes the mounted file system, not /dev/sdX
    assert s["ReadWritePaths"] == "/var/lib/edged /run/edged-usb/%i"
    assert s["SyslogIdentifier"] == "edged-usb-export"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this interpreter.
    for unit, instance in (
        (UNIT, "edged.service"),
        (EXPORT, "edged-usb-export@sda1.service"),
    ):
        (tmp_path / unit.name).write_text(
            unit.read_text().replace("/opt/edged/venv/bin/edged", sys.executable)
        )
        res = subprocess.run(
            ["systemd-analyze", "verify", str(tmp_path / instance)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0 and not res.stderr.strip(), f"{unit.name}: {res.stderr}"


def exposure(unit: Path, tmp_path: Path) -> float:
    """The overall exposure ``systemd-analyze security --offline`` gives a unit file."""
    name = unit.name.replace("@.", "@sda1.")  # a template is scored as an instance
    (tmp_path / unit.name).write_text(unit.read_text())
    res = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", res.stdout)
    assert m, f"no score from systemd-analyze security:\n{res.stdout}\n{res.stderr}"
    return float(m.group(1))


@needs_analyze
@pytest.mark.parametrize("unit", [UNIT, EXPORT], ids=lambda u: u.name)
def test_security_exposure_is_within_the_limit(unit: Path, tmp_path: Path) -> None:
    score = exposure(unit, tmp_path)
    print(f"\n{unit.name}: systemd-analyze security exposure {score} (limit {LIMITS[unit.name]})")
    assert score <= LIMITS[unit.name], f"{unit.name} scores {score}, limit {LIMITS[unit.name]}"


@needs_analyze
def test_the_score_tells_an_open_unit_from_ours(tmp_path: Path) -> None:
    # Guard against a score that cannot fail: the same unit without its sandbox is worse.
    bare = tmp_path / "bare"
    bare.mkdir()
    kept = ("[", "Description", "Type", "User", "Group", "ExecStart")
    text = "\n".join(
        line for line in UNIT.read_text().splitlines() if line.startswith(kept) or not line
    )
    (bare / "edged.service").write_text(text + "\n")
    assert exposure(bare / "edged.service", bare) > 5.0
