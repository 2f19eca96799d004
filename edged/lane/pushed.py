"""A camera's pushed read in a passage: voted with the box's own read of the pushed image.

The camera's read and, where the push carries the scene, the recogniser's
read of that same image are two witnesses: when they agree the plate
stands with the higher confidence; when they differ the more confident one
wins, the row is flagged ``camera_read_disagrees`` and ``raw_plate`` keeps
the box's own read, so an inspector (or a tuning session) can look.
Loop-triggered lanes meet pushes through :class:`PushSlot`: the passage
waits up to the camera's ``join_s`` for a push that came around its loop.
"""

from __future__ import annotations

import collections
import threading
import time
from datetime import datetime
from typing import Any

import cv2
import numpy as np

from drivers.camera.push import Push

DISAGREE = "camera_read_disagrees"
CAMERA_ONLY = "camera_read_only"  # no full image, or the box could not read it


def read_pushed(
    push: Push, ctx: Any, lane: Any
) -> tuple[list[Any], Any, str | None, float | None, str | None, tuple[str, ...]]:
    """(frames, own vote, plate, confidence, colour, flags) of a pushed read."""
    frames: list[Any] = []
    vr = None
    image = _decode(push.full_image)
    recognizer = ctx.recognizer
    if (
        image is not None
        and lane.cfg.camera.own_read
        and recognizer is not None
        and recognizer.ready
    ):
        from edged.lpr import vote

        vr = vote([recognizer.read(image)])
        frames = [image]
    cam_conf = push.confidence if push.confidence is not None else 0.0
    own = vr.plate if vr is not None and vr.plate and vr.valid_syntax else None
    flags: tuple[str, ...] = ()
    plate, conf = push.plate, (cam_conf if push.plate else None)
    if own and push.plate and own != push.plate:
        flags = (DISAGREE,)
        if vr.confidence > cam_conf:
            plate, conf = own, vr.confidence
    elif own and push.plate:
        conf = max(cam_conf, vr.confidence)
    elif own:
        plate, conf = own, vr.confidence
    elif push.plate:
        flags = (CAMERA_ONLY,)
    colour = push.colour or (vr.colour if vr is not None and vr.colour != "unknown" else None)
    lane.last_read = {
        "plate": plate,
        "confidence": None if conf is None else round(conf, 4),
        "valid": plate is not None,
        "source": push.vendor,
        "time": datetime.now(ctx.tz).isoformat(timespec="milliseconds"),
    }
    return frames, vr, plate, conf, colour, flags


def _decode(jpeg: bytes | None) -> np.ndarray | None:
    if not jpeg:
        return None
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


class PushSlot:
    """The latest push of a lane with a loop, until a loop-triggered passage takes it.

    A push that a later one displaced, or that waited in vain, is given up by its
    timer (:meth:`take_if`); the slot remembers the last pushes passages took, so a
    given-up push is told from a taken one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._push: tuple[Push, float, int | None] | None = None  # push, monotonic, spool id
        self._taken: collections.deque[int | None] = collections.deque(maxlen=64)

    def put(self, push: Push, push_id: int | None) -> None:
        with self._cond:
            self._push = (push, time.monotonic(), push_id)
            self._cond.notify_all()

    def take(self, t0: float, join_s: float) -> tuple[Push, int | None] | None:
        """A push that arrived from ``join_s`` before ``t0`` until ``join_s`` after it."""
        deadline = t0 + join_s
        with self._cond:
            while True:
                held = self._push
                if held is not None and held[1] >= t0 - join_s:
                    self._push = None
                    self._taken.append(held[2])
                    return held[0], held[2]
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def take_if(self, push_id: int | None) -> bool:
        """Give up the push with ``push_id`` unless a passage took it: True when no passage
        did (it still waited, or a later push displaced it). A waiting one is taken out, so
        no passage takes it after it was given up."""
        with self._cond:
            if self._push is not None and self._push[2] == push_id:
                self._push = None
                return True
            return push_id not in self._taken
