"""An unsure read names the registered vehicle it can only be, and the row says how.

The recogniser's side (which characters it is unsure of, and its rivals) is
tested on real images in ``tests/lpr``; here a recogniser that answers a
fixed read stands in for it, so the lane's use of the rule is what is tested:
the plate recorded, the raw read kept, ``identified_by`` and the flag.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from edged.admission.model import Vehicle
from edged.lpr.pipeline import PlateRead
from tests.box_rig import passage, running_box

CONFIG = """
[camera]
type = "mock"
[trigger]
burst_frames = 1
min_plate_confidence = 0.8
[mqtt]
enabled = false
[policy]
unknown_action = "hold"
"""


class FixedReader:
    """Answers every frame with one read: ``text`` unsure at its last character."""

    ready = True

    def __init__(self, text: str, rival: str) -> None:
        confidences = (0.99,) * (len(text) - 1) + (0.3,)
        alternatives = (
            *(((ch, 0.99),) for ch in text[:-1]),
            ((text[-1], 0.6), (rival, 0.35)),
        )
        self.read_ = PlateRead(
            text,
            0.3,
            confidences,
            "yellow",
            "truck",
            ((0, 0), (100, 0), (100, 30), (0, 30)),
            True,
            None,
            0.9,
            char_alternatives=alternatives,
        )

    def read(self, frame: np.ndarray) -> list[PlateRead]:
        return [self.read_]


def _run(
    tmp_path: Path, text: str, rival: str, plates: list[str], tags: tuple[str, ...] = ()
) -> dict[str, Any]:
    parts = ["ledger", "registry", "main.gpio", "main.camera", "main.worker"]
    with running_box(tmp_path, CONFIG, parts) as box:
        box.ctx.recognizer = FixedReader(text, rival)
        box.registry.apply(
            "vehicles",
            "upsert",
            [
                Vehicle(p, fuel="electric", rfid_tags=(f"E200{i:020d}",))
                for i, p in enumerate(plates)
            ],
            actor="test",
            source="test",
        )
        lane = box.lane("main")
        lane.camera_source.show(np.zeros((720, 1280, 3), np.uint8))
        while lane.camera.latest() is None:
            pass
        return passage(box, tags=tags).record


def test_an_unsure_read_one_character_off_a_registered_plate_identifies_it(
    tmp_path: Path,
) -> None:
    row = _run(tmp_path, "冀B1234S", "5", ["冀B12345"])
    assert row["plate"] == "冀B12345" and row["decision"] == "allow", row
    assert row["raw_plate"] == "冀B1234S"
    assert row["identified_by"] == "registry"
    assert "identified_by_registry" in row["flags"]


def test_two_registered_plates_that_fit_name_nobody(tmp_path: Path) -> None:
    reader_rival = "5"
    row = _run(tmp_path, "冀B1234S", reader_rival, ["冀B12345", "冀B1234S"])
    # the read itself is registered and the rival too: the rule refuses, the unsure
    # read stays unsure and the guard decides
    assert row["identified_by"] is None and row["decision"] == "hold", row
    assert row["raw_plate"] == "冀B1234S" and row["plate"] is None


def test_the_trucks_tag_settles_what_the_registry_could_not(tmp_path: Path) -> None:
    tag_of_first = f"E200{0:020d}"
    row = _run(tmp_path, "冀B1234S", "5", ["冀B12345", "冀B1234S"], tags=(tag_of_first,))
    assert row["plate"] == "冀B12345" and row["identified_by"] == "rfid", row
    assert row["raw_plate"] == "冀B1234S" and row["rfid_tag"] == tag_of_first


def test_a_confident_read_is_never_replaced(tmp_path: Path) -> None:
    row = _run(tmp_path, "冀B1234S", "5", ["冀B12345"])
    assert row["plate"] == "冀B12345"  # unsure: identified
    sure = FixedReader("冀B1234S", "5")
    sure.read_ = dataclasses.replace(sure.read_, confidence=0.99, char_confidences=(0.99,) * 7)
    parts = ["ledger", "registry", "main.gpio", "main.camera", "main.worker"]
    with running_box(tmp_path / "sure", CONFIG, parts) as box:
        box.ctx.recognizer = sure
        box.registry.apply(
            "vehicles", "upsert", [Vehicle("冀B12345", fuel="electric")], actor="t", source="t"
        )
        lane = box.lane("main")
        lane.camera_source.show(np.zeros((720, 1280, 3), np.uint8))
        while lane.camera.latest() is None:
            pass
        row = passage(box).record
    assert row["plate"] == "冀B1234S" and row["identified_by"] == "exact", row
