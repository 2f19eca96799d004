"""Plate recognition: detector -> rectification -> grammar-constrained recogniser."""

from edged.lpr.config import LprConfig
from edged.lpr.identify import Identification, identify, identify_read
from edged.lpr.models import check_models
from edged.lpr.pipeline import ModelError, PlateRead, PlateRecognizer
from edged.lpr.snapshot import Snapshot, save_snapshots
from edged.lpr.syntax import check_plate, is_valid_plate
from edged.lpr.vote import VoteResult, vote

__all__ = [
    "Identification",
    "LprConfig",
    "ModelError",
    "PlateRead",
    "PlateRecognizer",
    "Snapshot",
    "VoteResult",
    "check_models",
    "check_plate",
    "identify",
    "identify_read",
    "is_valid_plate",
    "save_snapshots",
    "vote",
]
