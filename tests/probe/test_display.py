"""``edged probe display``: a test screen on the board, PASS when it answers, FAIL saying why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drivers.simulators import LedVoiceSimulator
from edged.cli.main import main
from edged.probe.display import TEST_SPEECH
from tests.box_rig import base_toml
from tests.ptys import PtyCable


def _config(tmp_path: Path, display: str) -> Path:
    path = tmp_path / "edged.toml"
    path.write_text(
        base_toml(tmp_path)
        + f'[camera]\ntype = "none"\n[gpio.ground_loop]\npin = 22\n[display]\n{display}\n',
        encoding="utf-8",
    )
    return path


def _run(capsys: pytest.CaptureFixture[str], cfg: Path, *args: str) -> tuple[int, str]:
    rc = main(["--config", str(cfg), "probe", "display", *args])
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    assert sum(ln.startswith(("PASS", "FAIL")) for ln in out.splitlines()) == 1, out
    return rc, last


def test_probe_display_passes_when_the_board_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    master, slave = os.openpty()
    sim = LedVoiceSimulator(master).start()
    try:
        cfg = _config(tmp_path, f'type = "led_voice"\nport = "{os.ttyname(slave)}"')
        rc, last = _run(capsys, cfg)
    finally:
        sim.close()
        os.close(master)
        os.close(slave)
    assert rc == 0 and last.startswith("PASS: the board answered every frame"), last
    assert sim.screen()[0] == "edged 显示测试" and sim.spoken == [TEST_SPEECH]


def test_probe_display_fails_naming_what_to_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cable: PtyCable
) -> None:
    cfg = _config(tmp_path, f'type = "led_voice"\nport = "{cable.port}"\nack_timeout_s = 0.2')
    rc, last = _run(capsys, cfg)
    assert rc == 1 and last.startswith("FAIL: no answer from the board at address 0"), last
    rc, last = _run(capsys, cfg, "--type", "text", "--no-speech")
    assert rc == 0 and "this board cannot answer, so look at it" in last, last
    assert "\fedged 显示测试\r\n".encode("gbk") in cable.read(0.5)  # after the LED frames
