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
    heartbeat_s: float = field(
        default=5.0,
        metadata=doc(
            "How often the heartbeat file is written; the next start uses it to tell how long the box was down",
            above=0,
            was="heartbeat_seconds",
        ),
    )
    health_s: float = field(
        default=30.0,
        metadata=doc(
            "How often health status is published (retained) on MQTT",
            above=0,
            was="health_seconds",
        ),
    )
    stop_timeout_s: float = field(
        default=10.0,
        metadata=doc(
            "Time allowed to stop all components on SIGTERM before giving up",
            min=1,
            max=60,
            was="stop_timeout_seconds",
        ),
    )
    restart_backoff_max_s: float = field(
        default=60.0,
        metadata=doc(
            "Longest wait between restarts of a failed component",
            above=0,
            was="restart_backoff_max_seconds",
        ),
    )
    allow_simulation: bool = field(
        default=False,
        metadata=doc(
            "Accept simulated passages (edged simulate passage) for commissioning and tests;"
            " each is recorded as id_source simulated, with the caller and an audit row"
        ),
    )
    simulation_moves_barrier: bool = field(
        default=False,
        metadata=doc(
            "Let a simulated passage drive the real barrier and alarm (off: recorded only)"
        ),
    )
