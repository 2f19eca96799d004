"""Fixtures for the plate recogniser: the real models, or a clear skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edged.lpr.config import LprConfig
from edged.lpr.models import check_models

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = Path(os.environ.get("EDGED_MODEL_DIR", REPO / "models" / "onnx"))


@pytest.fixture(scope="session")
def recognizer():
    if check_models(MODEL_DIR):
        pytest.skip("models not fetched: run python models/fetch.py")
    from edged.lpr.pipeline import PlateRecognizer

    return PlateRecognizer(LprConfig(model_dir=str(MODEL_DIR)))
