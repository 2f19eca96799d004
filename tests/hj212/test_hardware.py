"""The board's hardware identity for HJ 212-2025, read from prepared /proc and /sys files."""

from __future__ import annotations

from pathlib import Path

from edged.hj212.config import Hj212Config
from edged.hj212.hardware import board_macs, cpu_serial, read_identity


def make_net(root: Path, name: str, mac: str, physical: bool) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "address").write_text(mac + "\n")
    if physical:
        (root / name / "device").mkdir()


def test_pi_serial_and_physical_macs_are_read(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nHardware\t: BCM2835\nSerial\t\t: 10000000abcdef01\n")
    net = tmp_path / "net"
    make_net(net, "lo", "00:00:00:00:00:00", False)
    make_net(net, "docker0", "02:42:ac:11:00:01", False)
    make_net(net, "wlan0", "b8:27:eb:65:43:21", True)
    make_net(net, "eth0", "b8:27:eb:12:34:56", True)
    make_net(net, "usb0", "aa:bb:cc:dd:ee:ff", False)
    assert cpu_serial(cpuinfo, tmp_path / "none") == "10000000ABCDEF01"
    assert board_macs(net) == ("B8:27:EB:12:34:56", "B8:27:EB:65:43:21")
    ident = read_identity(Hj212Config(), cpuinfo, tmp_path / "none", net)
    assert ident.logger_id == ident.cpu_id == "10000000ABCDEF01"
    assert ident.cp_factors()["i23008"] == {"Info": "B8:27:EB:65:43:21"}


def test_machine_id_when_no_serial_and_config_overrides(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: x86\n")
    machine = tmp_path / "machine-id"
    machine.write_text("0123456789abcdef0123456789abcdef\n")
    assert cpu_serial(cpuinfo, machine) == "0123456789ABCDEF0123456789ABCDEF"
    assert cpu_serial(tmp_path / "missing", tmp_path / "missing") == ""
    assert board_macs(tmp_path / "missing") == ()
    cfg = Hj212Config(logger_id="GATE-7", cpu_id="ABC", macs=["b8:27:eb:00:00:01"])
    ident = read_identity(cfg, cpuinfo, machine, tmp_path / "missing")
    assert (ident.logger_id, ident.cpu_id, ident.macs) == ("GATE-7", "ABC", ("B8:27:EB:00:00:01",))
