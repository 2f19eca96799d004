from __future__ import annotations

import argparse
import io
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from drivers.simulators import R2000Simulator, ScaleSimulator
from edged.probe.cli import register
from edged.probe.serial import probe_rfid, probe_scale, with_flags
from tests.ptys import PtyCable

EPC = "E2003412B802011512345678"


def _rfid(kind: str, port: str, baudrate: int) -> object:
    return with_flags("rfid", None, kind, port=port, baudrate=baudrate)


def _scale(kind: str, port: str, baudrate: int) -> object:
    return with_flags("scale", None, kind, port=port, baudrate=baudrate)


def test_probe_rfid_pass(cable: PtyCable) -> None:
    sim = R2000Simulator(cable.master, {EPC: -50}).start()
    out = io.StringIO()
    try:
        rc = probe_rfid(_rfid("r2000", cable.port, 115200), False, 0.6, out)
    finally:
        sim.close()
    text = out.getvalue()
    assert rc == 0, text
    assert f"tag {EPC} rssi=-50dBm ant=1" in text
    assert text.strip().splitlines()[-1].startswith("PASS: ")
    assert "from 1 tags" in text


def test_probe_rfid_fail_no_bytes(cable: PtyCable) -> None:
    out = io.StringIO()
    assert probe_rfid(_rfid("r2000", cable.port, 115200), False, 0.3, out) == 1
    last = out.getvalue().strip().splitlines()[-1]
    assert last.startswith(f"FAIL: no bytes received on {cable.port} at 115200 baud")


@contextmanager
def chatter(cable: PtyCable, data: bytes) -> Iterator[None]:
    """A device that sends ``data`` over and over: opening the port flushes its
    input, so a single write could land before the probe listens."""
    done = threading.Event()

    def run() -> None:
        while not done.wait(0.05):
            with suppress(OSError):  # unplugged
                cable.write(data)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join(2)


def test_probe_rfid_fail_wrong_protocol_raw(cable: PtyCable) -> None:
    out = io.StringIO()
    with chatter(cable, b"\x11\x22\x33"):
        assert probe_rfid(_rfid("asciihex", cable.port, 9600), True, 0.3, out) == 1
    text = out.getvalue()
    assert "rx 11 22 33" in text
    assert "bytes received" in text and "no tag decoded" in text


def test_probe_scale_pass_and_raw(cable: PtyCable) -> None:
    sim = ScaleSimulator(cable.master, 31240, rate_hz=40).start()
    try:
        out = io.StringIO()
        assert probe_scale(_scale("xk3190", cable.port, 9600), False, 0.4, out) == 0
        assert "weight 31240 kg" in out.getvalue()
        assert out.getvalue().strip().splitlines()[-1].startswith("PASS: ")
        raw = io.StringIO()
        assert probe_scale(_scale("xk3190", cable.port, 9600), True, 0.3, raw) == 0
        assert "rx 02 2B 30 33 31 32 34 30" in raw.getvalue()
    finally:
        sim.close()


def test_probe_scale_fail_missing_port(tmp_path) -> None:
    out = io.StringIO()
    assert probe_scale(_scale("xk3190", str(tmp_path / "nope"), 9600), False, 0.2, out) == 1
    assert "FAIL: no bytes received" in out.getvalue()


def test_register_builds_cli(cable: PtyCable, capsys) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    register(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(
        ["probe", "scale", "--port", cable.port, "--seconds", "0.2", "--type", "ascii"]
    )
    with chatter(cable, b"+ 1200 kg\r\n"):
        assert args.func(args) == 0
    assert re.search(r"PASS: \d+ weights", capsys.readouterr().out)


def test_probe_window_counts_from_the_open_port(cable: PtyCable) -> None:
    # the adapter shows up 0.3 s late: the 0.5 s asked for are all spent listening
    cable.unplug()
    threading.Timer(0.3, cable.plug).start()
    out = io.StringIO()
    t0 = time.monotonic()
    with chatter(cable, b"+ 1200 kg\r\n"):
        rc = probe_scale(
            _scale("ascii", cable.port, 9600),
            False,
            0.5,
            out,
            line_kwargs={"backoff_initial": 0.02},
        )
    assert rc == 0, out.getvalue()
    assert time.monotonic() - t0 >= 0.8, "the window began before the port was open"
