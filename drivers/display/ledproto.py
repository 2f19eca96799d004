"""The LED/voice controller protocol of parking-gate screens: frames, CRC, commands.

The serial LED boards with a speaker that stand beside Chinese plate
cameras (and that those cameras pass bytes to through their RS-485
channel) speak one framing, described in the controllers' public
"显示屏通信协议" (v1.00 2017 … v2.x): every packet is

    DA  VR  PN[2]  CMD  DL  DATA[DL]  CRC[2]

``DA`` the board's address, ``VR`` the protocol version (100 = 0x64: a
one-byte ``DL``), ``PN`` the packet number (0xFFFF for a single packet),
``CMD`` the command, ``DL`` the length of ``DATA``. ``CRC`` is CRC-16 with
the Modbus parameters (initial 0xFFFF, reflected polynomial 0xA001) over
``DA`` … the last ``DATA`` byte, sent low byte first. The board answers a
command with the same header and ``DL = 1``, ``DATA = ACK`` (0 = done).

Implemented here (see docs/DISPLAY.md for what each field is set to):
``0x62`` temporary text in one window (row), ``0x30`` speak a text,
``0x31`` stop speaking; replies are parsed for their ACK. The worked
examples of the protocol description are the tests' reference bytes.
Pure code: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

VERSION = 0x64  # protocol version 100: DL is one byte
SINGLE = 0xFFFF  # PN of a packet that is not split
CMD_TEXT = 0x62  # 下载临时文本: temporary text in a window
CMD_SPEAK = 0x30  # 播放语音: speak a text (GBK) from the board's phrase library
CMD_STOP_SPEAKING = 0x31  # 停止播放语音
MAX_DATA = 255
TEXT_HEADER = 19  # bytes of 0x62's DATA before the text
MAX_TEXT = MAX_DATA - TEXT_HEADER  # 236 bytes of GBK text in one window
MAX_SPEECH = 254

#: 0x30 OPT: queue without playing, queue and play, clear the queue then play.
SPEAK_QUEUE, SPEAK_PLAY, SPEAK_NOW = 0x00, 0x01, 0x02


class FrameError(ValueError):
    """A frame that cannot be built (text too long, bad value); the message says which."""


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS: init 0xFFFF, reflected poly 0xA001, no final XOR."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def encode(address: int, cmd: int, data: bytes = b"", packet: int = SINGLE) -> bytes:
    """One complete frame, CRC appended low byte first."""
    if not 0 <= address <= 0xFF:
        raise FrameError(f"address: expected 0..255, found {address}")
    if len(data) > MAX_DATA:
        raise FrameError(f"data: at most {MAX_DATA} bytes in one frame, found {len(data)}")
    body = bytes([address, VERSION, packet & 0xFF, packet >> 8, cmd, len(data)]) + data
    return body + crc16(body).to_bytes(2, "little")


def gbk(text: str) -> bytes:
    """Text as the board reads it (GB2312/GBK); a character outside GBK becomes '?'."""
    return text.encode("gbk", errors="replace")


def text_data(
    window: int,
    text: bytes,
    *,
    enter: int = 0x00,
    speed: int = 1,
    stay_s: int = 5,
    font: int = 3,
    repeat: int = 0,
    colour: tuple[int, int, int] = (0xFF, 0x00, 0x00),
) -> bytes:
    """DATA of 0x62: one window (row) of temporary text, 19 header bytes then the text.

    Field by field as the description's worked example sends them: window,
    entry mode (0 = at once), entry speed, display-time byte (0: the
    template's default), stay time, two bytes the example sends as 00 01,
    font index (3 = 16-dot Song), repeat count (0 = until replaced), text
    colour R G B and a spare byte, four reserved bytes, text length (two
    bytes, low first; the newer table calls the high byte reserved).
    """
    if len(text) > MAX_TEXT:
        raise FrameError(f"text: at most {MAX_TEXT} bytes in a window, found {len(text)}")
    for name, value, top in (("window", window, 255), ("enter", enter, 255),
                             ("speed", speed, 32), ("stay_s", stay_s, 255),
                             ("font", font, 255), ("repeat", repeat, 255)):  # fmt: skip
        if not 0 <= value <= top:
            raise FrameError(f"{name}: expected 0..{top}, found {value}")
    r, g, b = colour
    return (
        bytes([window, enter, speed, 0x00, stay_s, 0x00, 0x01, font, repeat, r, g, b, 0x00])
        + bytes(4)
        + len(text).to_bytes(2, "little")
        + text
    )


def text_frame(
    address: int, window: int, text: str, **options: int | tuple[int, int, int]
) -> bytes:
    """A 0x62 frame showing ``text`` (encoded GBK) in ``window``; too long is cut to fit."""
    raw = gbk(text)[:MAX_TEXT]
    if len(raw) == MAX_TEXT and _cut_inside_character(raw):
        raw = raw[:-1]
    return encode(address, CMD_TEXT, text_data(window, raw, **options))  # type: ignore[arg-type]


def speech_frame(address: int, text: str, option: int = SPEAK_NOW) -> bytes:
    """A 0x30 frame: speak ``text`` (GBK, phrases separated by commas), cut to 254 bytes."""
    raw = gbk(text)[:MAX_SPEECH]
    if len(raw) == MAX_SPEECH and _cut_inside_character(raw):
        raw = raw[:-1]
    return encode(address, CMD_SPEAK, bytes([option]) + raw)


def _cut_inside_character(raw: bytes) -> bool:
    """Whether the last byte is the lead byte of a GBK pair (the cut split a character)."""
    i = 0
    while i < len(raw):
        if raw[i] < 0x80:
            i += 1
        elif i + 1 < len(raw):
            i += 2
        else:
            return True
    return False


@dataclass(frozen=True)
class Frame:
    """A decoded frame (a command to the board, or its reply)."""

    address: int
    version: int
    packet: int
    cmd: int
    data: bytes

    @property
    def ack(self) -> int | None:
        """A reply's ACK byte (0 = done), None when this is not a one-byte reply."""
        return self.data[0] if len(self.data) == 1 else None


class FrameParser:
    """Frames out of a byte stream that has no start marker: resyncs on a bad CRC.

    A frame is found by its version byte and a CRC that holds; bytes that
    start no valid frame are dropped one at a time and counted. The buffer
    never holds more than one maximal frame, so garbage costs no memory.
    """

    MAX_FRAME = 6 + MAX_DATA + 2

    def __init__(self) -> None:
        self._buf = bytearray()
        self.garbage = 0
        self.bad_crc = 0

    def feed(self, chunk: bytes) -> list[Frame]:
        self._buf += chunk
        out: list[Frame] = []
        while len(self._buf) >= 8:
            if self._buf[1] != VERSION:
                del self._buf[0]
                self.garbage += 1
                continue
            size = 6 + self._buf[5] + 2
            if len(self._buf) < size:
                # A false start can claim more bytes than will ever come: a complete frame
                # further on wins, so an answer is never held behind noise.
                later = next((i for i in range(1, len(self._buf) - 7) if self._whole(i)), None)
                if later is None:
                    break
                del self._buf[:later]
                self.garbage += later
                continue
            if not self._whole(0):
                del self._buf[0]
                self.bad_crc += 1
                continue
            frame = bytes(self._buf[:size])
            del self._buf[:size]
            out.append(Frame(frame[0], frame[1], frame[2] | frame[3] << 8, frame[4], frame[6:-2]))
        if len(self._buf) > self.MAX_FRAME:
            self.garbage += len(self._buf) - self.MAX_FRAME
            del self._buf[: len(self._buf) - self.MAX_FRAME]
        return out

    def _whole(self, i: int) -> bool:
        """Whether a complete frame with a good CRC starts at ``i``."""
        buf = self._buf
        if len(buf) < i + 8 or buf[i + 1] != VERSION:
            return False
        size = 6 + buf[i + 5] + 2
        if len(buf) < i + size:
            return False
        frame = bytes(buf[i : i + size])
        return crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


def decode_text(data: bytes) -> tuple[int, str]:
    """(window, text) of a 0x62 DATA (for the simulator and the probe)."""
    if len(data) < TEXT_HEADER:
        raise FrameError(f"0x62 data: expected at least {TEXT_HEADER} bytes, found {len(data)}")
    length = int.from_bytes(data[17:19], "little")
    text = data[TEXT_HEADER:]
    if len(text) != length:
        raise FrameError(f"0x62 data: text length says {length}, found {len(text)} bytes")
    return data[0], text.decode("gbk", errors="replace")


def decode_speech(data: bytes) -> tuple[int, str]:
    """(option, text) of a 0x30 DATA."""
    if not data:
        raise FrameError("0x30 data: expected an option byte")
    return data[0], data[1:].decode("gbk", errors="replace")
