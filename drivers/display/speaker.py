"""``type = "speaker"`` and WAV prompts: voice on a box with a speaker and no controller.

No speech engine runs on the box: prompts are WAV files recorded once
(``<reason code>.wav`` in ``prompts_dir``) and played through ALSA with
``aplay`` (alsa-utils), which every Raspberry Pi OS image has. Any display
type can use them with ``speech = "wav"``; ``type = "speaker"`` is the box
with a speaker only, no screen.
"""

from __future__ import annotations

import subprocess
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from drivers.config import doc, driver
from drivers.display import DisplayConfig, DisplayError

PLAYER = "aplay"


@dataclass(frozen=True)
class SpeakerConfig(DisplayConfig):
    type: str = field(default="speaker", metadata=doc("Display board; the keys below depend on it"))
    speech: Literal["controller", "wav", "off"] = field(
        default="wav",
        metadata=doc(
            "How the driver is told: controller (the board's own speech), wav (prompt files"
            " played through ALSA) or off"
        ),
    )

    def own_problems(self) -> list[tuple[str, str]]:
        if self.speech != "wav":
            return [("speech", 'a speaker without a screen is only useful with speech = "wav"')]
        return []


class WavPrompts:
    """Plays ``<name>.wav`` from a folder on an ALSA device; one prompt at a time."""

    def __init__(self, folder: str | Path, device: str = "default", player: str = PLAYER) -> None:
        self.folder = Path(folder)
        self.device = device
        self.player = player

    def path(self, names: Sequence[str]) -> Path:
        """The first of ``names`` that has a file; DisplayError naming what was looked for."""
        for name in names:
            if not name or "/" in name or name.startswith("."):
                continue
            candidate = self.folder / f"{name}.wav"
            if candidate.is_file():
                return candidate
        wanted = ", ".join(f"{n}.wav" for n in names if n)
        raise DisplayError(f"no prompt in {self.folder} for this passage (looked for {wanted})")

    def play(self, names: Sequence[str]) -> Path:
        """Play the first prompt found; returns its path."""
        path = self.path(names)
        try:
            with wave.open(str(path), "rb") as w:
                seconds = w.getnframes() / max(w.getframerate(), 1)
        except (wave.Error, EOFError, OSError) as exc:
            raise DisplayError(
                f"{path} is not a playable WAV file ({exc}): record it again"
            ) from None
        try:
            res = subprocess.run(
                [self.player, "-q", "-D", self.device, str(path)],
                capture_output=True,
                text=True,
                timeout=seconds + 5.0,
                check=False,
            )
        except FileNotFoundError:
            raise DisplayError(f"{self.player} is not installed: apt install alsa-utils") from None
        except subprocess.TimeoutExpired:
            raise DisplayError(
                f"playing {path.name} on ALSA device {self.device} did not finish: the sound"
                " device is busy or hung"
            ) from None
        if res.returncode != 0:
            err = (res.stderr or "").strip().splitlines()
            raise DisplayError(
                f"playing {path.name} on ALSA device {self.device} failed:"
                f" {err[-1] if err else f'exit {res.returncode}'}; check alsa_device (aplay -L)"
            )
        return path


class SpeakerOnly:
    """No screen: showing is a no-op, speech is WAV prompts (set up by the lane)."""

    speaks = False

    def __init__(self, cfg: SpeakerConfig, name: str = "display") -> None:
        self.cfg = cfg
        self.name = name

    def open(self) -> None:
        folder = Path(self.cfg.prompts_dir)
        if not folder.is_dir():
            raise DisplayError(f"prompt folder {folder} does not exist: set prompts_dir")

    def show(self, lines: Sequence[str], refusal: bool = False) -> None:
        return None

    def speak(self, text: str) -> None:
        raise DisplayError('a speaker without a controller plays WAV prompts: speech = "wav"')

    def close(self) -> None:
        return None


@driver("display", "speaker", SpeakerConfig, "no screen: WAV prompts through ALSA")
def _build(cfg: SpeakerConfig, name: str = "display") -> SpeakerOnly:
    return SpeakerOnly(cfg, name)
