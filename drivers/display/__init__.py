"""What the driver sees at the barrier: a screen and a voice (LED 显示屏、语音播报).

A lane's ``[display]`` picks its board by ``type``; each board module
registers itself (:func:`drivers.config.driver`) with its config class.
The lane decides *what* is shown (see :mod:`edged.lane.screen`); a driver
only puts lines of text on its board and, where the board has a speaker,
speaks a text. The keys every type shares (how long a passage stays on the
screen, the lines' templates, messages and prompts per reason code) are in
:class:`DisplayConfig`, so a technician sets them the same way whatever
board is fitted.

Family contract: ``build(config, name=...)`` returns an unopened
:class:`Display`. Its calls block (serial and TCP writes with timeouts) and
raise :class:`DisplayError` with what to check; the lane calls them from
the display's own thread, never from the one that drives the barrier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol

from drivers.config import DeviceConfig, Invalid, doc


class DisplayError(RuntimeError):
    """The board did not take what was sent; the message says what to check."""


class Display(Protocol):
    """A board: open, show lines, speak, close. ``speaks``: it has its own speech."""

    name: str
    speaks: bool

    def open(self) -> None: ...
    def show(self, lines: Sequence[str], refusal: bool = False) -> None: ...
    def speak(self, text: str) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class DisplayConfig(DeviceConfig):
    """Keys every display type has: what is shown and said, and for how long."""

    family: ClassVar[str] = "display"
    #: speech = "controller" is possible only on boards with their own voice
    has_speech: ClassVar[bool] = False

    type: str = field(
        default="led_voice", metadata=doc("Display board; the keys below depend on it")
    )
    hold_s: float = field(
        default=10.0,
        metadata=doc(
            "Seconds a passage stays on the screen before the idle screen", min=1, max=600
        ),
    )
    passage_lines: list[str] = field(
        default_factory=lambda: ["{plate}", "{stage} {decision}", "{reason}", "{time}"],
        metadata=doc(
            "Lines shown after a passage; fields: {plate} {stage} {decision} {reason} {lane}"
            " {time} {plant} {gate} {alert}"
        ),
    )
    idle_lines: list[str] = field(
        default_factory=lambda: ["{plant}", "{gate}", "{time}", "{alert}"],
        metadata=doc("Lines of the idle screen; same fields (no passage: {plate} etc. are empty)"),
    )
    messages: dict[str, str] = field(
        default_factory=dict,
        metadata=doc(
            'Text shown as {reason} per reason code, e.g. { stage_below_minimum = "国五及以下'
            "禁止入厂\" }; a code not listed shows the decision's own Chinese text"
        ),
    )
    speech: Literal["controller", "wav", "off"] = field(
        default="off",
        metadata=doc(
            "How the driver is told: controller (the board's own speech), wav (prompt files"
            " played through ALSA) or off"
        ),
    )
    speak: Literal["refusals", "all"] = field(
        default="refusals",
        metadata=doc("Which passages are spoken: refusals (deny and hold) or all"),
    )
    prompts: dict[str, str] = field(
        default_factory=dict,
        metadata=doc(
            "Per reason code: the text the board speaks (speech = controller) or the WAV file"
            " name without .wav (speech = wav); default: '{plate},{reason}' spoken, or"
            " <reason code>.wav then <decision>.wav played"
        ),
    )
    prompts_dir: str = field(
        default="/etc/edged/prompts",
        metadata=doc("Folder of WAV prompts (speech = wav), named <reason code>.wav"),
    )
    alsa_device: str = field(
        default="default", metadata=doc("ALSA device the prompts are played on (aplay -D)")
    )
    write_timeout_s: float = field(
        default=2.0,
        metadata=doc(
            "A write to the board not done within this time counts as failed", above=0, max=30
        ),
    )

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        if self.speech == "controller" and not self.has_speech:
            problems.append(
                (
                    "speech",
                    f'a {self.type} board has no speech of its own: use speech = "wav" (a'
                    ' speaker on the box) or "off"',
                )
            )
        if not self.passage_lines:
            problems.append(("passage_lines", "at least one line is needed"))
        for key in ("passage_lines", "idle_lines"):
            for i, line in enumerate(getattr(self, key)):
                bad = template_problem(line)
                if bad:
                    problems.append((f"{key}[{i}]", bad))
        if self.speech == "controller":
            for code, text in self.prompts.items():
                bad = template_problem(text)
                if bad:
                    problems.append((f"prompts.{code}", bad))
        problems += self.own_problems()
        if problems:
            raise Invalid(problems)

    def own_problems(self) -> list[tuple[str, str]]:
        """A type's own checks (subclasses extend this rather than __post_init__)."""
        return []


FIELDS = ("plate", "stage", "decision", "reason", "lane", "time", "plant", "gate", "alert")


def template_problem(template: str) -> str | None:
    """Why a line template cannot be rendered (an unknown field, a stray brace), or None."""
    import string

    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        return f"not a template ({exc}): write fields as {{plate}}, a brace as {{{{"
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        return f"unknown field {{{unknown[0]}}}; fields: " + " ".join(f"{{{f}}}" for f in FIELDS)
    return None


def write_all(port: object, data: bytes) -> None:
    """Write ``data`` through a pyserial port, as a DisplayError when it fails or times out."""
    import serial

    try:
        n = port.write(data)  # type: ignore[attr-defined]
    except serial.SerialTimeoutException:
        raise DisplayError(
            "write timed out: the board (or the serial server in front of it) takes no data;"
            " check its power and cable"
        ) from None
    except (serial.SerialException, OSError) as exc:
        raise DisplayError(
            f"write failed: {exc}; check the cable or network to the board"
        ) from None
    if n is not None and n != len(data):
        raise DisplayError(f"write cut short: {n} of {len(data)} bytes went out")


def open_port(url: str, baudrate: int, timeout: float, write_timeout: float) -> object:
    """A pyserial port: a device path or a URL such as ``socket://10.0.0.9:4001`` (TCP)."""
    import serial

    try:
        return serial.serial_for_url(
            url, baudrate=baudrate, timeout=timeout, write_timeout=write_timeout
        )
    except (serial.SerialException, OSError, ValueError) as exc:
        raise DisplayError(
            f"cannot open {url}: {exc}; check the port name (or host:port) and that the board is"
            " powered"
        ) from None
