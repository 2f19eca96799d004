"""Plate cameras that read plates themselves and push each read over HTTP.

Most plants already have a plate camera (Zhenshi/Qianyi 臻识, Hikvision,
Dahua) that recognises plates on board and POSTs every read to a server it
is configured with. A lane whose camera is one of these needs no frame
thread and no ground loop: the box's HTTP receiver (one for the box, see
:mod:`edged.push`) takes the push, stores it, answers the camera as its
vendor requires, and hands the read to the lane. Where the push carries the
full image, the box's own recogniser reads it too and the two reads are
voted.

This module holds what every vendor shares: the config keys, the decoded
:class:`Push`, and the :class:`Vendor` interface (parse a request, build
the reply). Each vendor is one module (``zhenshi``, ``hikvision``), pure
code without I/O, so every parser is fuzzed and tested on recorded shapes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar, Literal, Protocol

from drivers.camera import CameraConfig
from drivers.config import doc


class PushError(ValueError):
    """A request that is not a push of this vendor; the message says what was wrong."""


@dataclass(frozen=True)
class Push:
    """One request from a camera, decoded: a plate read, a heartbeat, or something else."""

    vendor: str
    kind: Literal["plate", "heartbeat", "other"]
    record_id: str | None = None  # the camera's id of the read (Zhenshi plateid, Hik UUID)
    plate: str | None = None  # None: the camera saw a vehicle but no plate
    colour: str | None = None
    confidence: float | None = None  # 0..1
    shot_at: datetime | None = None  # the camera's time of the read, with its offset
    offline: bool = False  # a read kept while the server was unreachable, sent late
    full_image: bytes | None = field(default=None, repr=False)  # JPEG of the scene
    plate_image: bytes | None = field(default=None, repr=False)  # JPEG of the plate
    device: str = ""  # the camera's serial number or name, as it says


@dataclass(frozen=True)
class Reply:
    """What the receiver answers: HTTP status, content type and body."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"


class Vendor(Protocol):
    """A vendor's push protocol: decode a request, and answer it per the vendor's contract."""

    name: str

    def parse(self, body: bytes, content_type: str) -> Push: ...

    def reply(self, push: Push | None, stored: bool, serial: list[bytes] | None = None) -> Reply:
        """The answer once the push is stored (``stored``) or could not be (a retry is wanted).

        ``push`` is None when the request could not be decoded. ``serial``:
        bytes for the camera to pass to its RS-485 port (a display behind it),
        where the vendor's reply can carry them.
        """
        ...


@dataclass(frozen=True)
class PushCameraConfig(CameraConfig):
    """Keys of a camera that pushes its reads (besides the frame keys, unused by it)."""

    triggers_passages: ClassVar[bool] = True

    address: str = field(
        default="",
        metadata=doc(
            "IP address the camera pushes from; the receiver takes pushes from configured"
            " cameras only"
        ),
    )
    silence_s: float = field(
        default=120.0,
        metadata=doc(
            "No push nor heartbeat for this long: the camera counts as lost (camera_lost);"
            " enable the camera's heartbeat (心跳) so a quiet lane is not taken for a dead camera",
            min=2,
            max=3600,
        ),
    )
    dedupe_window_s: float = field(
        default=10.0,
        metadata=doc(
            "A second read of the same plate within this time is a duplicate (counted, no"
            " second passage)",
            min=0,
            max=600,
        ),
    )
    join_s: float = field(
        default=3.0,
        metadata=doc(
            "On a lane with a ground loop, how long a loop-triggered passage waits for the"
            " camera's push (without a loop each push starts a passage)",
            min=0,
            max=15,
        ),
    )
    offline_join_s: float = field(
        default=10.0,
        metadata=doc(
            "A read no live passage took (one the camera kept while it could not reach the box,"
            " or, with a loop, one no loop passage took) and a passage of this lane recorded"
            " without a plate at most this far apart in time are one vehicle: that row is"
            " corrected with the camera's plate instead of a second row. Keep the camera's"
            " clock on NTP; 0: never join, every such read is a row of its own",
            min=0,
            max=120,
        ),
    )
    own_read: bool = field(
        default=True,
        metadata=doc(
            "The box's own recogniser also reads the pushed full image; the reads are voted"
            " and a disagreement is flagged on the row"
        ),
    )

    def __post_init__(self) -> None:
        from drivers.config import Invalid

        try:
            ipaddress.ip_address(self.address)
        except ValueError:
            raise Invalid(
                [("address", f"expected the camera's IP address, found {self.address!r}")]
            ) from None


def epoch(value: float) -> datetime:
    """An epoch time as a UTC datetime."""

    return datetime.fromtimestamp(value, UTC)
