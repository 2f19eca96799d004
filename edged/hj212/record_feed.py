"""The data logger's closed records to the HJ 212 uplink, and its alarms at once.

Minute, hour and day records are handed over as the data logger closes them
(every few seconds, from the main loop); the uplink's outbox keeps one row
per platform, CN and DataTime, so a record handed over twice (after a
restart) is sent once. An over-limit event goes to every platform at once,
as the data-logger guide requires.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

from edged.hj212 import cn as CN

#: How far back a start looks for records not yet handed over, per CN.
LOOKBACK = {CN.MINUTE: timedelta(hours=2), CN.HOUR: timedelta(days=2), CN.DAY: timedelta(days=3)}


class RecordFeed:
    """Hands closed records to the uplink once each; turns over-limits into alarms."""

    def __init__(self, datalogger: Any, uplink: Any, tz: tzinfo) -> None:
        self._datalogger = datalogger  # DataLoggerService: records() of the running logger
        self._uplink = uplink  # UplinkService
        self.tz = tz
        self._forwarded: dict[str, datetime] = {}

    def forward(self, now: datetime | None = None) -> int:
        """Hand every record closed since the last call to the uplink; returns how many."""
        uplink = self._uplink.uplink
        if uplink is None:
            return 0
        now = now or datetime.now()
        n = 0
        for cn, lookback in LOOKBACK.items():
            begin = self._forwarded.get(cn, now - lookback)
            for data_time, factors in self._datalogger.records(cn, begin, now):
                if cn in self._forwarded and data_time <= self._forwarded[cn]:
                    continue
                uplink.publish(cn, data_time, factors)
                self._forwarded[cn] = data_time
                n += 1
        return n

    def alarm(self, kind: str, details: dict[str, Any]) -> None:
        """An over-limit from the data logger goes to every platform at once."""
        uplink = self._uplink.uplink
        if kind != "over_limit" or uplink is None or not details.get("factor"):
            return
        when = datetime.fromisoformat(details["ts"]) if details.get("ts") else datetime.now(self.tz)
        uplink.send_alarm(when, {details["factor"]: {"Rtd": details["value"], "Flag": "T"}})
