"""The plate recogniser as a part of the box, shared by its lanes.

The two ONNX sessions are the largest thing in the daemon's memory, so a
box with an entry and an exit camera loads them once; a lock lets one lane
read at a time (a read takes tens of milliseconds, a passage seconds).
"""

from __future__ import annotations

import threading
from typing import Any

from edged.lpr.config import LprConfig


class ModelsMissing(RuntimeError):
    """The model files are not there or not the ones pinned; the message lists them."""


class RecognizerService:
    """Supervised part ``recognizer``: loads the models on start, reads under a lock."""

    name = "recognizer"

    def __init__(self, cfg: LprConfig) -> None:
        self.cfg = cfg
        self._recognizer: Any = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._recognizer is not None

    def start(self) -> None:
        from edged.lpr import ModelError, PlateRecognizer

        try:
            self._recognizer = PlateRecognizer(self.cfg)
        except ModelError as exc:
            raise ModelsMissing(str(exc)) from None

    def stop(self) -> None:
        self._recognizer = None

    def read(self, frame: Any) -> list[Any]:
        """Plates in one frame (see :meth:`edged.lpr.PlateRecognizer.read`)."""
        recognizer = self._recognizer
        if recognizer is None:
            return []
        with self._lock:
            return recognizer.read(frame)


def check_model_files(cfg: LprConfig) -> list[str]:
    """What is wrong with the model files (empty: all there and as pinned)."""
    from edged.lpr import check_models

    return check_models(cfg.model_dir)
