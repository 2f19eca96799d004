"""The HJ 212 uplink as a part of the box: every platform, in the site's time zone.

The service may not set the system clock (no CAP_SYS_TIME): a time set by a
platform (CN 1012) becomes an offset for HJ 212 times, and an event tells
the technician the board's clock is off.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from edged.hj212.clock import OffsetClock
from edged.hj212.config import Hj212Config


class UplinkService:
    """Supervised part ``hj212``: one connection per platform (一点多传)."""

    name = "hj212"

    def __init__(
        self,
        cfg: Hj212Config,
        store_path: str | Path,
        source: Any,
        tz: tzinfo,
        sink: Any,
        units: dict[str, str],
    ) -> None:
        self.cfg = cfg
        self.store_path = Path(store_path)
        self._source = source  # DataLoggerService, or None without a data logger
        self.tz = tz
        self.sink = sink
        self.units = units
        self.uplink: Any = None
        self.clock_set_at: datetime | None = None
        self._stop_thread: Any = None

    def start(self) -> None:
        from edged.hj212.uplink import Uplink

        self.uplink = Uplink(
            self.cfg,
            self.store_path,
            source=self._source,
            clock=OffsetClock(on_set=self._platform_set_clock),
            tz=self.tz,
            audit=self.sink.audit,
            units=self.units,
        )
        self._stop_thread = self.uplink.start_thread()
        self.uplink.send_startup(datetime.now(self.tz))

    def stop(self) -> None:
        if self._stop_thread is not None:
            self._stop_thread()
            self._stop_thread = None
        self.uplink = None

    def _platform_set_clock(self, when: datetime) -> None:
        self.clock_set_at = datetime.now(self.tz)
        self.sink.event(
            "clock_set_by_platform",
            "warning",
            "an HJ 212 platform set the time; check NTP on the board",
            platform_time=when.isoformat(),
            board_time=self.clock_set_at.isoformat(),
        )

    def status(self) -> dict[str, Any] | None:
        """Per platform: connection, backlog, and what it gets how often (real-time on/off
        and its interval, minute-data interval: each platform may set its own)."""
        if self.uplink is None:
            return None
        return {
            lk.name: {
                "connected": lk.connected,
                "backlog": lk.backlog,
                "sent": lk.sent,
                "acked": lk.acked,
                "last_error": lk.last_error or None,
                "realtime": lk.realtime,
                "rtd_interval_s": lk.rtd_interval_s,
                "min_interval_min": lk.min_interval_min,
                "last_realtime": (
                    lk.last_realtime.astimezone(self.tz).isoformat(timespec="seconds")
                    if lk.last_realtime is not None
                    else None
                ),
            }
            for lk in self.uplink.status()
        }
