"""Choose gpiozero's pin factory once, explicitly, and say which it is.

Left to itself gpiozero tries lgpio, RPi.GPIO, pigpio and its "native"
factory in turn and warns about each that fails. On a Raspberry Pi 5 only
lgpio works (RPi.GPIO and native do not know the RP1 chip), so a failed lgpio
ends in a fallback that cannot drive the barrier, and the reason is buried in
warnings. Here the factory is decided up front: ``GPIOZERO_PIN_FACTORY`` if
set (gpiozero's own variable: ``mock`` for a PC, ``lgpio`` …), else lgpio
wherever the kernel has a GPIO character device (``/dev/gpiochip*``: Pi 5,
Pi 4 and other Linux boards). Construction failures become one
:class:`PinFactoryError` that names the cause and what to do; success is one
``gpio_pin_factory`` log line with the factory, chip and board.

lgpio opens its notification pipe (``.lgd-nfy<N>``) in the *current working
directory* when it is imported, so the process must run from a writable one:
the service unit sets ``WorkingDirectory=/run/edged`` (and ``LG_WD``, the
variable lgpio's C library reads) because ``ProtectSystem=strict`` makes ``/``
read-only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edged.logs import get_logger

log = get_logger("gpio")

ENV_VAR = "GPIOZERO_PIN_FACTORY"
MODEL_FILES = ("proc/device-tree/model", "sys/firmware/devicetree/base/model")


class PinFactoryError(Exception):
    """No usable pin factory: ``message`` says why, ``hint`` what the technician does."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(f"{message}: {hint}")
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Choice:
    """Which factory to build and why (the pure part, testable without a board)."""

    name: str
    source: str  # "GPIOZERO_PIN_FACTORY" or "auto"
    board: str
    chips: tuple[str, ...]


def board_model(root: Path = Path("/")) -> str:
    """The device tree's model string ("Raspberry Pi 5 Model B Rev 1.0"), or ""."""
    for rel in MODEL_FILES:
        try:
            return (root / rel).read_bytes().rstrip(b"\0").decode("utf-8", "replace").strip()
        except OSError:
            continue
    return ""


def gpio_chips(root: Path = Path("/")) -> tuple[str, ...]:
    """The GPIO character devices the kernel offers (``gpiochip0``, ``gpiochip4``…)."""
    return tuple(sorted(p.name for p in (root / "dev").glob("gpiochip*")))


def decide(env: Mapping[str, str], board: str, chips: Sequence[str]) -> Choice:
    """The factory to use: the environment's choice, else lgpio on a GPIO chip device."""
    named = env.get(ENV_VAR, "").strip()
    if named:
        return Choice(named.lower(), ENV_VAR, board, tuple(chips))
    if not chips:
        where = f" ({board})" if board else ""
        raise PinFactoryError(
            f"no GPIO on this machine{where}: no /dev/gpiochip* device",
            "run this on the gate's Raspberry Pi; to try it on a PC set GPIOZERO_PIN_FACTORY=mock",
        )
    return Choice("lgpio", "auto", board, tuple(chips))


def _load(name: str) -> Any:
    from importlib.metadata import entry_points

    for ep in entry_points(group="gpiozero_pin_factories"):
        if ep.name == name:
            return ep.load()
    names = sorted(ep.name for ep in entry_points(group="gpiozero_pin_factories"))
    raise PinFactoryError(
        f"{ENV_VAR}={name!r} is not a gpiozero pin factory",
        f"use one of {', '.join(names)} (lgpio on a Raspberry Pi 4 or 5), or unset it",
    )


def build(choice: Choice) -> Any:
    """Construct the chosen factory; every failure is a :class:`PinFactoryError`."""
    lg_wd = os.environ.get("LG_WD")
    if choice.name == "lgpio" and lg_wd and os.path.realpath(lg_wd) != os.getcwd():
        raise PinFactoryError(
            f"LG_WD={lg_wd} is not the working directory {os.getcwd()}: lgpio's library makes"
            " its notification pipe in LG_WD and its Python module opens it in the working"
            " directory",
            f"run from {lg_wd} (WorkingDirectory= in edged.service) or unset LG_WD",
        )
    if choice.name == "lgpio" and not os.access(".", os.W_OK):
        raise PinFactoryError(
            f"lgpio needs a writable working directory for its notification pipe,"
            f" and {os.getcwd()} is not writable",
            "run from a writable folder (cd /tmp); the service runs in /run/edged"
            " (WorkingDirectory= in edged.service)",
        )
    try:
        cls = _load(choice.name)
    except ImportError as exc:  # lgpio / RPi.GPIO / pigpio module missing
        raise PinFactoryError(
            f"pin factory {choice.name} cannot be loaded: {exc}",
            "reinstall edged (its environment carries lgpio), or choose another factory"
            f" with {ENV_VAR}",
        ) from None
    except OSError as exc:  # lgpio's import opens the notification pipe
        raise PinFactoryError(
            f"pin factory {choice.name} cannot be loaded: {exc}",
            "lgpio creates .lgd-nfy* in the working directory: run from a writable folder",
        ) from None
    try:
        return cls()
    except Exception as exc:
        if type(exc).__name__ == "PinUnknownPi":
            raise PinFactoryError(
                f"pin factory {choice.name} does not know this board"
                f" ({choice.board or 'no device-tree model'}): {exc}",
                "gpiozero's factories drive Raspberry Pi boards (Pi 4, Pi 5); on a PC set"
                f" {ENV_VAR}=mock to try the probe",
            ) from None
        chips = ", ".join(f"/dev/{c}" for c in choice.chips) or "no /dev/gpiochip*"
        raise PinFactoryError(
            f"pin factory {choice.name} could not open the GPIO chip ({chips}):"
            f" {type(exc).__name__}: {exc}",
            "check that the user is in the gpio group (ls -l /dev/gpiochip*), that no other"
            " program holds the pins (sudo systemctl stop edged), and DeviceAllow= in the unit",
        ) from None


def open_pin_factory(
    env: Mapping[str, str] | None = None, root: Path = Path("/")
) -> tuple[Any, Choice]:
    """Decide, build and log the pin factory; pass it to gpiozero devices as ``pin_factory``."""
    choice = decide(os.environ if env is None else env, board_model(root), gpio_chips(root))
    factory = build(choice)
    log.info(
        "gpio_pin_factory",
        factory=choice.name,
        chosen_by=choice.source,
        chip=getattr(factory, "chip", None),
        board=choice.board or None,
        chips=",".join(choice.chips) or None,
    )
    return factory, choice


class PinSource:
    """The one pin factory of the process, for every lane's GPIO and Wiegand reader.

    Given a factory (tests, the demo's mock pins) it hands that out; otherwise
    gpiozero's process default if a caller set one, else it opens the factory
    :func:`open_pin_factory` chooses, once, on first use. A failure is a
    :class:`PinFactoryError` for the part that asked, which the supervisor
    reports and retries: a box without GPIO still records passages.
    """

    def __init__(self, factory: Any = None) -> None:
        self._factory = factory

    def get(self) -> Any:
        if self._factory is None:
            from gpiozero import Device

            if Device.pin_factory is not None:
                return Device.pin_factory
            self._factory, _ = open_pin_factory()
        return self._factory
