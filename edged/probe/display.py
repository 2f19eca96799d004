"""``edged probe display``: write a test screen on a lane's board (and speak), PASS or FAIL.

A board that acknowledges frames (the LED/voice controllers) proves the
cable, address and baud rate by answering each one; a board that cannot
answer (plain text boards, ``expect_ack = false``) is written to and the
technician is told what it should now read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TextIO

from drivers import config as driver_config
from drivers.display import DisplayError
from drivers.display.speaker import WavPrompts
from edged import sitetime
from edged.probe.output import ProbeOutput

TEST_SPEECH = "显示屏测试"


def test_lines(now: datetime) -> list[str]:
    return ["edged 显示测试", "冀B12345 国6a", "禁止通行 测试", now.strftime("%H:%M:%S")]


def probe_display(cfg: Any, out: TextIO, speak: bool = True) -> int:
    """Show the test screen, speak (or play a prompt), and say whether the board took it."""
    v = ProbeOutput(out)
    if cfg is None:
        return v.failed("no [display] in the config for this lane", "add one, or give --type")
    where = getattr(cfg, "port", None) or cfg.prompts_dir
    v.line(f"display: {cfg.type} on {where}")
    lines = test_lines(sitetime.now())
    board = driver_config.build(cfg, name="probe")
    said = ""
    try:
        board.open()
        board.show(lines, refusal=True)
        v.line("shown: " + " / ".join(lines))
        if speak and cfg.speech == "controller":
            board.speak(TEST_SPEECH)
            said = f", spoke {TEST_SPEECH!r}"
        elif speak and cfg.speech == "wav":
            played = WavPrompts(cfg.prompts_dir, cfg.alsa_device).play(["test", "deny", "hold"])
            said = f", played {played.name}"
    except DisplayError as exc:
        return v.failed(str(exc))
    finally:
        board.close()
    if getattr(cfg, "expect_ack", False):
        return v.passed(f"the board answered every frame{said}")
    return v.passed(
        f"test screen written{said}; this board cannot answer, so look at it: it should read"
        f" {lines[0]!r}"
    )
