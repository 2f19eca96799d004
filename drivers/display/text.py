"""``type = "text"``: a board that prints what it is sent, as text over serial or TCP.

Many cheap LED and LCD boards (and the serial servers in front of them)
take plain text: the screen's rows one after another, with a byte that
clears the screen first. ``prefix``, ``line_end`` and ``suffix`` say how
this board wants it (TOML escapes: ``"\\f"``, ``"\\r\\n"``, ``"\\u0002"``), and
``encoding`` whether it reads GBK or UTF-8. It has no speech of its own: a
box with a speaker uses ``speech = "wav"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from drivers.config import doc, driver
from drivers.display import DisplayConfig, DisplayError, open_port, write_all
from drivers.log import get_logger

log = get_logger("display")


@dataclass(frozen=True)
class TextDisplayConfig(DisplayConfig):
    type: str = field(default="text", metadata=doc("Display board; the keys below depend on it"))
    port: str = field(
        default="/dev/ttyUSB1",
        metadata=doc("Serial port of the board, or socket://HOST:PORT for one on the network"),
    )
    baudrate: int = field(default=9600, metadata=doc("Baud rate set on the board", min=1200))
    encoding: Literal["gbk", "utf-8"] = field(
        default="gbk", metadata=doc("Character set the board reads: gbk (GB2312/GBK) or utf-8")
    )
    prefix: str = field(
        default="\f", metadata=doc("Sent before a screen (default form feed: clear the screen)")
    )
    line_end: str = field(default="\r\n", metadata=doc("Sent after each row"))
    suffix: str = field(default="", metadata=doc("Sent after the last row"))
    rows: int = field(default=4, metadata=doc("Rows the board shows", min=1, max=16))


def render(cfg: TextDisplayConfig, lines: Sequence[str]) -> bytes:
    """The bytes of one screen: prefix, each row and its line end, suffix, in the encoding."""
    text = cfg.prefix + "".join(f"{line}{cfg.line_end}" for line in list(lines)[: cfg.rows])
    return (text + cfg.suffix).encode(cfg.encoding, errors="replace")


class TextDisplay:
    speaks = False

    def __init__(self, cfg: TextDisplayConfig, name: str = "display") -> None:
        self.cfg = cfg
        self.name = name
        self._port: Any = None

    def open(self) -> None:
        self.close()
        c = self.cfg
        self._port = open_port(c.port, c.baudrate, c.write_timeout_s, c.write_timeout_s)

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except Exception as exc:
                log.debug("display_close_error", display=self.name, error=repr(exc))
            self._port = None

    def show(self, lines: Sequence[str], refusal: bool = False) -> None:
        if self._port is None:
            self.open()
        write_all(self._port, render(self.cfg, lines))

    def speak(self, text: str) -> None:
        raise DisplayError('a text board has no speech: use speech = "wav" or "off"')


@driver("display", "text", TextDisplayConfig, "plain text over serial or TCP, GBK or UTF-8")
def _build(cfg: TextDisplayConfig, name: str = "display") -> TextDisplay:
    return TextDisplay(cfg, name)
