"""``type = "none"``: a lane without a camera (RFID or guard only; no plate models needed)."""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.camera import CameraConfig
from drivers.config import doc, driver


@dataclass(frozen=True)
class NoCameraConfig(CameraConfig):
    type: str = field(
        default="none", metadata=doc("Frame source; the keys below depend on it", was="source")
    )


@driver("camera", "none", NoCameraConfig, "no camera: an RFID or guard-only lane")
def _build(cfg: NoCameraConfig) -> None:
    return None
