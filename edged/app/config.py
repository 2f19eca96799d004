"""``[daemon]``: process-wide settings of the service."""

from __future__ import annotations

from dataclasses import dataclass, field

from edged.config.schema import doc


@dataclass(frozen=True)
class DaemonConfig:
    """Process-wide settings: where data lives and how the service talks to systemd."""

    data_dir: str = field(
        default="/var/lib/edged",
        metadata=doc(
            "Directory for the ledger, outbox, images and state (must be writable by the edged user)"
        ),
    )
    heartbeat_seconds: float = field(
        default=5.0,
        metadata=doc(
            "How often the heartbeat file is written; the next start uses it to tell how long the box was down"
        ),
    )
    health_seconds: float = field(
        default=30.0, metadata=doc("How often health status is published (retained) on MQTT")
    )
    stop_timeout_seconds: float = field(
        default=10.0,
        metadata=doc("Time allowed to stop all components on SIGTERM before giving up"),
    )
    restart_backoff_max_seconds: float = field(
        default=60.0, metadata=doc("Longest wait between restarts of a failed component")
    )

    def __post_init__(self) -> None:
        if self.heartbeat_seconds <= 0:
            raise ValueError(
                f"heartbeat_seconds: expected a positive number, found {self.heartbeat_seconds}"
            )
        if not 1 <= self.stop_timeout_seconds <= 60:
            raise ValueError(
                f"stop_timeout_seconds: expected 1..60, found {self.stop_timeout_seconds}"
            )
