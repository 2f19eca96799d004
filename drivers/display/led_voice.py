"""``type = "led_voice"``: an LED board with a speaker on the controllers' serial protocol.

The board is on RS-485 (a USB adapter: ``port = "/dev/ttyUSB0"``) or behind
a serial server or a camera's transparent serial channel reached over TCP
(``port = "socket://10.0.0.9:4001"``). Each screen is one 0x62 frame per
row; speech is one 0x30 frame. A board set to answer (the default) must
acknowledge each frame within ``ack_timeout_s``; one that cannot answer
(half-duplex "no reply" mode, a camera channel that only forwards) is set
``expect_ack = false``. The frames are in :mod:`drivers.display.ledproto`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from drivers.config import doc, driver
from drivers.display import DisplayConfig, DisplayError, open_port, write_all
from drivers.display.ledproto import (
    CMD_SPEAK,
    CMD_TEXT,
    SPEAK_NOW,
    FrameParser,
    speech_frame,
    text_frame,
)
from drivers.log import get_logger

log = get_logger("display")

COLOURS = {"red": (0xFF, 0, 0), "green": (0, 0xFF, 0), "yellow": (0xFF, 0xFF, 0)}


@dataclass(frozen=True)
class LedVoiceConfig(DisplayConfig):
    has_speech: ClassVar[bool] = True

    type: str = field(
        default="led_voice", metadata=doc("Display board; the keys below depend on it")
    )
    speech: Literal["controller", "wav", "off"] = field(
        default="controller",
        metadata=doc(
            "How the driver is told: controller (the board's own speech), wav (prompt files"
            " played through ALSA) or off"
        ),
    )
    port: str = field(
        default="/dev/ttyUSB1",
        metadata=doc(
            "Serial port of the board, socket://HOST:PORT for a serial server or a camera's"
            ' transparent serial channel (透传), or "camera": the RS-485 port of the lane\'s'
            " Zhenshi camera, the frames riding on its replies (expect_ack = false)"
        ),
    )
    baudrate: int = field(default=9600, metadata=doc("Baud rate set on the board", min=1200))
    address: int = field(default=0, metadata=doc("The board's address (DA)", min=0, max=255))
    rows: int = field(default=4, metadata=doc("Rows (windows) the board has", min=1, max=8))
    colour: Literal["red", "green", "yellow"] = field(
        default="green", metadata=doc("Text colour of allowed passages and the idle screen")
    )
    refusal_colour: Literal["red", "green", "yellow"] = field(
        default="red", metadata=doc("Text colour of refused or held passages")
    )
    font: int = field(
        default=3, metadata=doc("Font index on the board (3 = 16-dot Song, 宋体16)", min=0, max=7)
    )
    expect_ack: bool = field(
        default=True,
        metadata=doc(
            "The board answers each frame (off for a board in no-reply mode or behind a camera"
            " channel that only forwards)"
        ),
    )
    ack_timeout_s: float = field(
        default=0.5, metadata=doc("Time the board has to answer a frame", above=0, max=5)
    )

    def own_problems(self) -> list[tuple[str, str]]:
        if self.port == "camera" and self.expect_ack:
            return [
                (
                    "expect_ack",
                    'a board behind the camera (port = "camera") cannot answer through it: set'
                    " expect_ack = false",
                )
            ]
        return []


class LedVoiceDisplay:
    """Rows of text and speech on one board; each frame acknowledged when the board answers."""

    speaks = True

    def __init__(self, cfg: LedVoiceConfig, name: str = "display") -> None:
        self.cfg = cfg
        self.name = name
        self._port: Any = None
        self._parser = FrameParser()
        self.frames_sent = 0
        self.colour = COLOURS[cfg.colour]
        #: for port = "camera": the camera's serial channel (write, close), set by the lane
        self.camera_port: Any = None

    def open(self) -> None:
        self.close()
        c = self.cfg
        if c.port == "camera":
            if self.camera_port is None:
                raise DisplayError(
                    'port = "camera" needs the lane\'s camera to be a Zhenshi camera'
                )
            self._port = self.camera_port
            return
        self._port = open_port(c.port, c.baudrate, c.ack_timeout_s, c.write_timeout_s)

    def close(self) -> None:
        if self._port is not None and self._port is not self.camera_port:
            try:
                self._port.close()
            except Exception as exc:  # a vanished device may raise anything on close
                log.debug("display_close_error", display=self.name, error=repr(exc))
        self._port = None

    def show(self, lines: Sequence[str], refusal: bool = False) -> None:
        colour = COLOURS[self.cfg.refusal_colour] if refusal else COLOURS[self.cfg.colour]
        rows = list(lines)[: self.cfg.rows]
        rows += [" "] * (self.cfg.rows - len(rows))  # clear the rows this screen does not use
        for row, text in enumerate(rows):
            frame = text_frame(
                self.cfg.address, row, text or " ", font=self.cfg.font, colour=colour
            )
            self._send(frame, CMD_TEXT)

    def speak(self, text: str) -> None:
        self._send(speech_frame(self.cfg.address, text, SPEAK_NOW), CMD_SPEAK)

    def _send(self, frame: bytes, cmd: int) -> None:
        if self._port is None:
            self.open()
        port = self._port
        if self.cfg.expect_ack:
            with contextlib.suppress(Exception):  # stale answers; nothing on a fresh socket
                port.reset_input_buffer()
        write_all(port, frame)
        self.frames_sent += 1
        if self.cfg.expect_ack:
            self._await_ack(cmd)

    def _await_ack(self, cmd: int) -> None:
        deadline = time.monotonic() + self.cfg.ack_timeout_s
        while time.monotonic() < deadline:
            try:  # what has arrived, or one byte within the timeout: never a full 64-byte wait
                chunk = self._port.read(max(1, self._port.in_waiting))
            except Exception as exc:
                raise DisplayError(f"reading the board's answer failed: {exc}") from None
            for frame in self._parser.feed(chunk):
                if frame.cmd != cmd or frame.address != self.cfg.address:
                    continue
                if frame.ack == 0:
                    return
                raise DisplayError(
                    f"the board refused command 0x{cmd:02X} (answer {frame.data.hex()}):"
                    " check the text fits and the board's protocol version"
                )
        raise DisplayError(
            f"no answer from the board at address {self.cfg.address} on {self.cfg.port} within"
            f" {self.cfg.ack_timeout_s:g} s: check power, wiring (RS-485 A/B), baud rate and"
            " address, or set expect_ack = false for a board that cannot answer"
        )


@driver("display", "led_voice", LedVoiceConfig, "LED board with voice, controller serial protocol")
def _build(cfg: LedVoiceConfig, name: str = "display") -> LedVoiceDisplay:
    return LedVoiceDisplay(cfg, name)
