"""``[receiver]``: where the box listens for plate cameras' pushes, and its limits."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from edged.config.schema import doc


@dataclass(frozen=True)
class ReceiverConfig:
    """The HTTP receiver for cameras that push their reads (started only when a lane has one)."""

    bind: str = field(
        default="0.0.0.0",
        metadata=doc("Address to listen on: the box's address on the camera network, or 0.0.0.0"),
    )
    port: int = field(
        default=8088,
        metadata=doc(
            "TCP port the cameras push to (their HTTP push / 报警主机 setting)", min=1, max=65535
        ),
    )
    max_body_mb: float = field(
        default=8.0,
        metadata=doc(
            "Largest request taken; a larger one is refused unread (413). A read with both"
            " images is well under 2 MB",
            above=0,
            max=64,
        ),
    )
    request_timeout_s: float = field(
        default=10.0,
        metadata=doc(
            "Time a camera has to send one whole request; a slower client is cut off",
            min=1,
            max=120,
        ),
    )
    workers: int = field(
        default=8,
        metadata=doc(
            "Requests handled at once (a camera polling by comet holds one)", min=2, max=64
        ),
    )
    per_camera: int = field(
        default=2,
        metadata=doc("Requests one camera address may have open at once", min=1, max=16),
    )
    spool_dir: str = field(
        default="pushes",
        metadata=doc(
            "Where each push is kept as received; relative paths are under daemon.data_dir"
        ),
    )
    spool_days: int = field(
        default=30,
        metadata=doc("Days raw pushes are kept (their images are also snapshots)", min=1),
    )
    spool_budget_mb: int = field(
        default=2000, metadata=doc("Most disk space raw pushes may use; oldest go first", min=10)
    )

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_address(self.bind)
        except ValueError:
            raise ValueError(f"bind: expected an IP address, found {self.bind!r}") from None
