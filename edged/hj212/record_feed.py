"""The data logger's data to the HJ 212 uplink: real-time, minute, hour and day data, alarms.

The box calls :meth:`RecordFeed.forward` from its main loop about once a
second; the feed does what is due:

* real-time data (CN 2011) to each platform on its own cadence
  (:mod:`edged.hj212.realtime_feed`);
* minute data (CN 2051) to each platform every ``min_interval`` minutes of
  that platform (CN 1064, default ``[hj212] min_interval_min``), built from
  the 1-minute records the data logger closes
  (:mod:`edged.hj212.minute_data`), once an interval is over, aligned to the
  site's clock;
* hour and day records (CN 2061/2031) to every platform as the data logger
  closes them.

The uplink's outbox keeps one row per platform, CN and DataTime, so a record
handed over twice (after a restart) is sent once. An over-limit event goes
to every platform at once, as the data-logger guide requires.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

from edged.datalogger.aggregate import interval_start
from edged.hj212 import cn as CN
from edged.hj212.minute_data import interval_records
from edged.hj212.realtime_feed import RealtimeFeed
from edged.logs import get_logger

log = get_logger("hj212")

#: How far back a start looks for records not yet handed over, per CN.
LOOKBACK = {CN.MINUTE: timedelta(hours=2), CN.HOUR: timedelta(days=2), CN.DAY: timedelta(days=3)}


class RecordFeed:
    """Hands each record to the uplink once, per platform where the platform's interval
    shapes it; sends real-time data when due; turns over-limits into alarms."""

    def __init__(self, datalogger: Any, uplink: Any, tz: tzinfo) -> None:
        self._datalogger = datalogger  # DataLoggerService: what the running logger has
        self._uplink = uplink  # UplinkService
        self.tz = tz
        self.realtime = RealtimeFeed(datalogger, tz)
        self._forwarded: dict[str, datetime] = {}  # hour/day: newest DataTime handed over
        self._minutes_done: dict[str, datetime] = {}  # per platform: minute data sent up to
        self._minute_interval: dict[str, int] = {}  # per platform: the interval last used
        self._looked_at: tuple[Any, ...] | None = None

    def forward(self, now: datetime | None = None) -> int:
        """Send what is due; returns how many real-time packets and records were handed over.

        ``now`` is the board's wall time (naive), as the data logger stamps samples.
        """
        uplink = self._uplink.uplink
        if uplink is None:
            return 0
        now = now or datetime.now()
        n = self.realtime.send_due(uplink, now)
        closed = self._datalogger.closed_until("minute")
        intervals = tuple((link.cfg.name, link.intervals.min_interval) for link in uplink.links)
        if closed is None or (closed, intervals) == self._looked_at:
            return n  # no minute closed since the last look: no new record of any kind
        self._looked_at = (closed, intervals)
        for link in uplink.links:
            n += self._minutes(uplink, link.cfg.name, link.intervals.min_interval, closed)
        for cn in (CN.HOUR, CN.DAY):
            begin = self._forwarded.get(cn, now - LOOKBACK[cn])
            for data_time, factors in self._datalogger.records(cn, begin, now):
                if cn in self._forwarded and data_time <= self._forwarded[cn]:
                    continue
                uplink.publish(cn, data_time, factors)
                self._forwarded[cn] = data_time
                n += 1
        return n

    def _minutes(self, uplink: Any, name: str, minutes: int, closed: datetime) -> int:
        """Minute data for one platform: each of its intervals that is over, once."""
        done = self._minutes_done.get(name)
        if done is None:
            done = interval_start(closed - LOOKBACK[CN.MINUTE], minutes, self.tz)
        was = self._minute_interval.get(name)
        if was is not None and was != minutes:
            log.info(
                "hj212_minute_interval_changed",
                platform=name,
                old_min=was,
                new_min=minutes,
                since=done.isoformat(timespec="minutes"),
                hint="records at the new interval start at its next boundary; minutes before it"
                " are in the hour record and in minute-data history (CN 2051)",
            )
        self._minute_interval[name] = minutes
        n = 0
        # intervals that began before ``done`` are left out: sent, or the interval changed
        for start, end, factors in interval_records(
            self._datalogger, done, closed, minutes, self.tz
        ):
            uplink.publish(CN.MINUTE, start, factors, platforms=[name])
            done = end
            n += 1
        # every interval that began before the one still open is over: look no further back
        self._minutes_done[name] = max(done, interval_start(closed, minutes, self.tz))
        return n

    def alarm(self, kind: str, details: dict[str, Any]) -> None:
        """An over-limit from the data logger goes to every platform at once."""
        uplink = self._uplink.uplink
        if kind != "over_limit" or uplink is None or not details.get("factor"):
            return
        when = datetime.fromisoformat(details["ts"]) if details.get("ts") else datetime.now(self.tz)
        uplink.send_alarm(when, {details["factor"]: {"Rtd": details["value"], "Flag": "T"}})
