"""The root config schema: one section per area of the daemon.

Each area keeps its section class next to its code; this module only puts
them together, in the order the example config documents them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from drivers.gpio import GpioConfig
from drivers.rfid.config import RfidConfig
from drivers.scale import ScaleConfig
from edged.admission.policy import PolicyConfig
from edged.app.config import DaemonConfig
from edged.config.schema import doc
from edged.config.site import SiteConfig
from edged.datalogger.instruments import InstrumentConfig
from edged.datalogger.registers import ModbusConfig
from edged.datalogger.store import DataStoreConfig
from edged.hj212.config import Hj212Config
from edged.ledger.retention import LedgerConfig
from edged.logs import LoggingConfig
from edged.lpr.config import LprConfig
from edged.mqtt.config import MqttConfig


@dataclass(frozen=True)
class RegistryConfig:
    """Where the local registry lives; it must work with no network."""

    db_path: str = field(
        default="registry.db",
        metadata=doc("Registry database, relative to daemon.data_dir unless absolute"),
    )
    seed_csv: str = field(
        default="",
        metadata=doc(
            "CSV of vehicles imported (upsert) at start when the registry is empty; empty: none"
        ),
    )
    seed_blacklist_csv: str = field(
        default="",
        metadata=doc(
            "CSV of blacklist entries imported at start when the registry is empty; empty: none"
        ),
    )
    import_max_rows: int = field(
        default=2_000_000,
        metadata=doc("Most rows one CSV import may hold (the seed files here); over it: refused"),
    )

    def __post_init__(self) -> None:
        if self.import_max_rows < 1:
            raise ValueError(f"import_max_rows: expected >= 1, found {self.import_max_rows}")


@dataclass(frozen=True)
class CameraConfig:
    """The plate camera; gate cameras are fixed, so the plate appears in a known band."""

    source: Literal["synthetic", "folder", "opencv", "picamera2", "none"] = field(
        default="opencv",
        metadata=doc(
            "Frame source: picamera2 (Pi camera), opencv (V4L2 device or RTSP URL), folder (replay images/video), synthetic (demo scenes), none (no camera: an RFID or guard-only lane; no plate models needed)"
        ),
    )
    device: str = field(
        default="/dev/video0",
        metadata=doc(
            "For opencv: V4L2 device path, device index, or rtsp:// URL of an IP camera (抓拍机)"
        ),
    )
    folder: str = field(
        default="",
        metadata=doc("For folder: directory of images (or a video file) replayed in name order"),
    )
    fps: float = field(default=10.0, metadata=doc("Frames per second to read"))
    width: int = field(default=1920, metadata=doc("Requested frame width (opencv/picamera2)"))
    height: int = field(default=1080, metadata=doc("Requested frame height (opencv/picamera2)"))
    read_timeout_seconds: float = field(
        default=2.0,
        metadata=doc("A frame not delivered within this time counts as the camera lost"),
    )
    reconnect_max_seconds: float = field(
        default=30.0,
        metadata=doc("Longest wait between reconnect attempts while the camera is lost"),
    )

    def __post_init__(self) -> None:
        if self.fps <= 0 or self.fps > 60:
            raise ValueError(f"fps: expected 0 < fps <= 60, found {self.fps}")


@dataclass(frozen=True)
class TriggerConfig:
    """When a passage starts: the ground loop, or the camera itself."""

    mode: Literal["loop", "continuous"] = field(
        default="loop",
        metadata=doc(
            "loop: a burst of frames when the ground loop (地感) rises; continuous: detect on every frame with a hold-off"
        ),
    )
    burst_frames: int = field(
        default=5, metadata=doc("Frames read per vehicle and voted over, character by character")
    )
    burst_interval_ms: int = field(default=80, metadata=doc("Time between frames of a burst"))
    holdoff_seconds: float = field(
        default=8.0,
        metadata=doc(
            "continuous mode: the same plate within this time is the same vehicle (one passage)"
        ),
    )
    rfid_window_seconds: float = field(
        default=2.0,
        metadata=doc(
            "RFID tag reads within this many seconds of the trigger belong to the vehicle"
        ),
    )
    min_plate_confidence: float = field(
        default=0.80,
        metadata=doc(
            "Below this voted confidence a plate is treated as unread (falls back to RFID or the guard)"
        ),
    )

    def __post_init__(self) -> None:
        if not 1 <= self.burst_frames <= 30:
            raise ValueError(f"burst_frames: expected 1..30, found {self.burst_frames}")
        if not 0.0 <= self.min_plate_confidence <= 1.0:
            raise ValueError(
                f"min_plate_confidence: expected 0..1, found {self.min_plate_confidence}"
            )


@dataclass(frozen=True)
class EdgedConfig:
    """The whole file."""

    site: SiteConfig = field(default_factory=SiteConfig, metadata=doc("Plant and gate identity"))
    daemon: DaemonConfig = field(
        default_factory=DaemonConfig, metadata=doc("Process, data directory, systemd")
    )
    logging: LoggingConfig = field(default_factory=LoggingConfig, metadata=doc("Journal output"))
    camera: CameraConfig = field(
        default_factory=CameraConfig, metadata=doc("Plate camera (车牌识别摄像机)")
    )
    trigger: TriggerConfig = field(
        default_factory=TriggerConfig, metadata=doc("Vehicle trigger and frame burst")
    )
    lpr: LprConfig = field(default_factory=LprConfig, metadata=doc("Plate recognition (车牌识别)"))
    rfid: RfidConfig = field(default_factory=RfidConfig, metadata=doc("UHF RFID reader (电子标签)"))
    scale: ScaleConfig = field(
        default_factory=ScaleConfig, metadata=doc("Weighbridge indicator (地磅仪表)")
    )
    gpio: GpioConfig = field(
        default_factory=GpioConfig, metadata=doc("Barrier (道闸), alarm and sensors")
    )
    policy: PolicyConfig = field(
        default_factory=PolicyConfig, metadata=doc("Admission policy (准入规则)")
    )
    registry: RegistryConfig = field(
        default_factory=RegistryConfig,
        metadata=doc("Local vehicle registry (车辆台账), blacklist and approvals"),
    )
    ledger: LedgerConfig = field(
        default_factory=LedgerConfig,
        metadata=doc("Electronic ledger (电子台账), images and export"),
    )
    mqtt: MqttConfig = field(default_factory=MqttConfig, metadata=doc("MQTT uplink"))
    hj212: Hj212Config = field(
        default_factory=Hj212Config, metadata=doc("HJ 212 platforms, 2017 and 2025 (一点多传)")
    )
    modbus: ModbusConfig = field(
        default_factory=ModbusConfig, metadata=doc("Modbus meters and switches (工况监控)")
    )
    instruments: list[InstrumentConfig] = field(
        default_factory=list,
        metadata=doc("Analysers sending HJ 212 over RS232/RS485 (在线监测仪表)"),
    )
    datalogger: DataStoreConfig = field(
        default_factory=DataStoreConfig, metadata=doc("Data logger storage (数采仪)")
    )
