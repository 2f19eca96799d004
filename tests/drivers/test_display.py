"""Display boards: the LED/voice protocol byte for byte, the text board on a pty and TCP, WAV."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers import config as driver_config
from drivers.config import Invalid
from drivers.display import DisplayError
from drivers.display.led_voice import LedVoiceConfig, LedVoiceDisplay
from drivers.display.ledproto import (
    CMD_STOP_SPEAKING,
    SPEAK_PLAY,
    SPEAK_QUEUE,
    FrameError,
    FrameParser,
    crc16,
    decode_text,
    encode,
    speech_frame,
    text_frame,
)
from drivers.display.speaker import WavPrompts
from drivers.display.text import TextDisplay, TextDisplayConfig
from drivers.simulators import LedVoiceSimulator
from tests.ptys import PtyCable, wait_for

# The worked examples of the controllers' protocol description ("显示屏通信协议"),
# host to board, byte for byte.
EXAMPLES = {
    "connect 159753": "00 64 FF FF 00 06 31 35 39 37 35 33 FB 06",
    "volume 50%": "00 64 FF FF 0D 01 32 26 A2",
    "brightness 50%": "00 64 FF FF 0C 01 32 77 62",
    "stop speaking": "00 64 FF FF 31 00 64 67",
    "row 1 欢迎光临": "00 64 FF FF 62 1B 00 00 01 00 05 00 01 03 00 FF 00 00 00 00 00 00 00 08 00"
    " BB B6 D3 AD B9 E2 C1 D9 58 96",
    "speak 欢迎光临,请入场停车": "00 64 FF FF 30 14 01 BB B6 D3 AD B9 E2 C1 D9 2C C7 EB C8 EB"
    " B3 A1 CD A3 B3 B5 A9 36",
    "queue 欢迎光临,请入场停车": "00 64 FF FF 30 14 00 BB B6 D3 AD B9 E2 C1 D9 2C C7 EB C8 EB"
    " B3 A1 CD A3 B3 B5 94 E7",
    "speak 请交费10元": "00 64 FF FF 30 0B 01 C7 EB BD BB B7 D1 31 30 D4 AA 43 1E",
}


def _hex(name: str) -> bytes:
    return bytes.fromhex(EXAMPLES[name])


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_crc_of_each_worked_example(name: str) -> None:
    frame = _hex(name)
    assert crc16(frame[:-2]).to_bytes(2, "little") == frame[-2:]


def test_frames_are_the_worked_examples_byte_for_byte() -> None:
    assert text_frame(0, 0, "欢迎光临", colour=(0xFF, 0, 0)) == _hex("row 1 欢迎光临")
    assert speech_frame(0, "欢迎光临,请入场停车", SPEAK_PLAY) == _hex("speak 欢迎光临,请入场停车")
    assert speech_frame(0, "欢迎光临,请入场停车", SPEAK_QUEUE) == _hex("queue 欢迎光临,请入场停车")
    assert speech_frame(0, "请交费10元", SPEAK_PLAY) == _hex("speak 请交费10元")
    assert encode(0, CMD_STOP_SPEAKING) == _hex("stop speaking")
    assert encode(0, 0x0D, b"\x32") == _hex("volume 50%")


def test_text_too_long_is_cut_on_a_character_boundary() -> None:
    frame = text_frame(3, 1, "车" * 200)  # 400 bytes of GBK; a window holds 236
    parsed = FrameParser().feed(frame)
    assert len(parsed) == 1 and parsed[0].address == 3
    window, text = decode_text(parsed[0].data)
    assert window == 1 and text == "车" * 118
    with pytest.raises(FrameError, match="address"):
        encode(256, 0x62)


def test_parser_resyncs_after_garbage_and_a_bad_crc() -> None:
    good = _hex("row 1 欢迎光临")
    bad = bytearray(good)
    bad[10] ^= 0x01
    parser = FrameParser()
    frames = parser.feed(b"\x13\x37" + bytes(bad) + good[:5])
    frames += parser.feed(good[5:])
    assert [f.cmd for f in frames] == [0x62]
    assert parser.bad_crc >= 1 and parser.garbage >= 2


@pytest.fixture
def board() -> Iterator[tuple[LedVoiceSimulator, str]]:
    master, slave = os.openpty()
    sim = LedVoiceSimulator(master).start()
    yield sim, os.ttyname(slave)
    sim.close()
    for fd in (master, slave):
        os.close(fd)


def test_led_voice_board_shows_rows_and_speaks_checked_by_the_simulator(
    board: tuple[LedVoiceSimulator, str],
) -> None:
    sim, port = board
    display = LedVoiceDisplay(LedVoiceConfig(port=port, rows=4))
    display.open()
    try:
        display.show(["冀A8K302", "国四 禁止通行", "排放阶段不达标"], refusal=True)
        display.speak("冀A8K302,排放阶段不达标,禁止入厂")
    finally:
        display.close()
    assert sim.screen() == ["冀A8K302", "国四 禁止通行", "排放阶段不达标", " "]
    assert sim.spoken == ["冀A8K302,排放阶段不达标,禁止入厂"]
    assert sim.bad_frames == 0
    red = (0xFF, 0, 0)
    assert sim.raw[0] == text_frame(0, 0, "冀A8K302", colour=red)
    assert sim.raw[-1] == speech_frame(0, "冀A8K302,排放阶段不达标,禁止入厂")


def test_a_silent_board_is_an_error_within_the_ack_timeout(
    board: tuple[LedVoiceSimulator, str],
) -> None:
    sim, port = board
    sim.answer = False
    display = LedVoiceDisplay(LedVoiceConfig(port=port, ack_timeout_s=0.2))
    started = time.monotonic()
    with pytest.raises(DisplayError, match="no answer from the board"):
        display.show(["x"])
    assert time.monotonic() - started < 1.0
    display.close()
    quiet = LedVoiceDisplay(LedVoiceConfig(port=port, expect_ack=False))
    quiet.show(["不回复"])
    quiet.close()
    assert wait_for(lambda: sim.screen()[:1] == ["不回复"], 2)


def test_a_missing_port_says_what_to_check(tmp_path: Path) -> None:
    display = LedVoiceDisplay(LedVoiceConfig(port=str(tmp_path / "ttyUSB9")))
    with pytest.raises(DisplayError, match="cannot open"):
        display.show(["x"])


def test_text_board_on_a_pty_gets_gbk_rows(cable: PtyCable) -> None:
    display = driver_config.build(TextDisplayConfig(port=cable.port, rows=2))
    assert isinstance(display, TextDisplay)
    display.show(["冀B12345", "允许通行", "not shown: the board has two rows"])
    display.close()
    assert cable.read(1.0) == "\f冀B12345\r\n允许通行\r\n".encode("gbk")


def test_text_board_over_tcp_gets_utf8_with_its_own_framing() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    got = bytearray()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(2)
            while chunk := conn.recv(4096):
                got.extend(chunk)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    port = server.getsockname()[1]
    cfg = TextDisplayConfig(
        port=f"socket://127.0.0.1:{port}",
        encoding="utf-8",
        prefix="\x02",
        line_end="|",
        suffix="\x03",
    )
    display = TextDisplay(cfg)
    display.show(["皖AD028K", "禁止通行"])
    display.close()
    t.join(3)
    server.close()
    assert bytes(got) == "\x02皖AD028K|禁止通行|\x03".encode()


def test_text_board_that_refuses_the_connection_is_an_error() -> None:
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(DisplayError, match="cannot open"):
        TextDisplay(TextDisplayConfig(port=f"socket://127.0.0.1:{port}")).show(["x"])


def test_config_refuses_controller_speech_on_a_board_without_it() -> None:
    with pytest.raises(Invalid) as exc:
        TextDisplayConfig(speech="controller", passage_lines=["{plat}"])
    keys = [k for k, _ in exc.value.problems]
    assert keys == ["speech", "passage_lines[0]"]


def _wav(path: Path, seconds: float = 0.05) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * int(8000 * seconds))
    return path


def test_wav_prompt_by_reason_code_then_by_decision(tmp_path: Path) -> None:
    if shutil.which("aplay") is None:
        pytest.skip("aplay (alsa-utils) is not installed: scripts/setup.sh --test installs it")
    _wav(tmp_path / "deny.wav")
    _wav(tmp_path / "blacklisted.wav")
    prompts = WavPrompts(tmp_path, device="null")
    assert prompts.play(["blacklisted", "deny"]).name == "blacklisted.wav"
    assert prompts.play(["stage_below_minimum", "deny"]).name == "deny.wav"
    with pytest.raises(DisplayError, match="no prompt"):
        prompts.play(["allow"])
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    with pytest.raises(DisplayError, match="not a playable WAV"):
        prompts.play(["broken"])
    with pytest.raises(DisplayError, match="failed"):
        WavPrompts(tmp_path, device="no-such-device").play(["deny"])


def test_the_frames_in_the_display_doc_are_what_the_code_sends() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "DISPLAY.md").read_text("utf-8")
    assert text_frame(0, 0, "欢迎光临", colour=(255, 0, 0)).hex(" ").upper() in doc
    assert speech_frame(0, "欢迎光临,请入场停车", SPEAK_PLAY).hex(" ").upper() in doc
    assert encode(0, 0x62, b"\x00").hex(" ").upper() in doc
