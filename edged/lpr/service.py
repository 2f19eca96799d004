"""The plate recogniser as a part of the box, shared by its lanes.

The two ONNX sessions are the largest thing in the daemon's memory, so a
box with an entry and an exit camera loads them once; a lock lets one lane
read at a time (a read takes tens of milliseconds, a passage seconds).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from edged.logs import get_logger
from edged.lpr.config import LprConfig

log = get_logger("lpr")


class ModelsMissing(RuntimeError):
    """The model files are not there or not the ones pinned; the message lists them."""


class RecognizerService:
    """Supervised part ``recognizer``: loads the models on start, reads under a lock."""

    name = "recognizer"

    def __init__(self, cfg: LprConfig) -> None:
        self.cfg = cfg
        self._recognizer: Any = None
        self._lock = threading.Lock()
        self.releases = 0  # times the models' working memory went back to the system

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

    def release(self) -> bool:
        """After a passage: give the models' unused working memory back to the system
        when the process is over ``lpr.release_above_mb``; True if it did.

        The shared arena keeps every region it ever took; which ones a passage
        needs depends on its frames (a second pass, the text-line fallback), so
        over a day it holds the sum of the unusual ones. Released above the
        watermark, it holds what the passages of the moment need.
        """
        recognizer = self._recognizer
        limit = self.cfg.release_above_mb
        if recognizer is None or limit <= 0 or resident_mb() <= limit:
            return False
        with self._lock:
            try:
                recognizer.recognizer.release_memory()
            except Exception as exc:  # memory housekeeping must never cost a passage
                log.warning("lpr_release_failed", error=str(exc), hint="reads go on")
                return False
        self.releases += 1
        return True


def resident_mb() -> float:
    """This process's resident memory (MB); 0 where /proc is not there."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def check_model_files(cfg: LprConfig) -> list[str]:
    """What is wrong with the model files (empty: all there and as pinned)."""
    from edged.lpr import check_models

    return check_models(cfg.model_dir)
