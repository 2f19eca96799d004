"""``[lanes.video]`` (a lane's video) and ``[clips]`` (the box's clip folder and its budget)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from edged.config.schema import doc

#: The seeds' retention periods for gate video: 001 asks six months, 002 at least 90 days.
SEED_RETENTION_DAYS = 183


@dataclass(frozen=True)
class VideoConfig:
    """Where this lane's video is, and whether the box keeps its own clip of each passage."""

    recorder: str = field(
        default="",
        metadata=doc(
            "The recorder holding this lane's continuous video, as an inspector finds it, e.g."
            ' "NVR 192.168.1.64" (empty: rows say nothing of video unless clips are kept)'
        ),
    )
    channel: str = field(default="1", metadata=doc("The lane camera's channel on that recorder"))
    before_s: float = field(
        default=30.0,
        metadata=doc("Seconds before the passage its row's video window starts", min=0, max=600),
    )
    after_s: float = field(
        default=30.0,
        metadata=doc("Seconds after the passage its row's video window ends", min=0, max=600),
    )
    clip: bool = field(
        default=False,
        metadata=doc("Keep a clip of each passage on the box (needs PyAV: pip install av)"),
    )
    url: str = field(
        default="",
        metadata=doc(
            "Stream the clips are taken from (rtsp://user:password@camera/...); empty: the lane"
            " camera's own rtsp:// device"
        ),
    )
    clip_before_s: float = field(
        default=5.0, metadata=doc("Seconds of the clip before the passage", min=0, max=60)
    )
    clip_after_s: float = field(
        default=5.0, metadata=doc("Seconds of the clip after the passage", min=0, max=60)
    )
    container: Literal["mp4", "mkv"] = field(
        default="mp4", metadata=doc("Clip file format (the stream is copied, never re-encoded)")
    )
    open_timeout_s: float = field(
        default=10.0,
        metadata=doc("Time allowed to open the stream and for each read from it", above=0, max=60),
    )


@dataclass(frozen=True)
class ClipsConfig:
    """The box's clip folder: how long clips are kept and how much disk they may use."""

    dir: str = field(
        default="clips", metadata=doc("Folder of clips; relative paths are under daemon.data_dir")
    )
    retention_days: int = field(
        default=SEED_RETENTION_DAYS,
        metadata=doc(
            "Days clips are kept when the disk allows (the seeds ask 90 days to six months);"
            " status says how many days the budget holds at the current rate",
            min=1,
        ),
    )
    budget_mb: int = field(
        default=50000, metadata=doc("Most disk space clips may use; the oldest go first", min=100)
    )
    min_free_mb: int = field(
        default=1024,
        metadata=doc("Free space left on the data partition; below it the oldest clips go", min=0),
    )
