"""Real-time data (CN 2011): every factor's latest value, each platform on its own cadence.

Every ``rtd_interval`` seconds of a platform (CN 1062, default ``[hj212]
rtd_interval_s``), counted on the site's clock (30 s: at :00 and :30), each
connected platform that has real-time on (config ``realtime``, CN 2011/2012)
gets one packet with every factor the logger knows: the register map's
factors and those an analyser sent within the last hour. A factor whose
newest sample is fresh goes out as ``Rtd`` with that sample's flag (a
fresh sample without a value -- the meter did not answer -- as its B or D
flag alone); one without a fresh sample gets no value, only a flag saying
why (its last fault flag, else B: nothing arrived), so a platform never takes
an old value for a current one.

Fresh means no older than the platform's interval or the factor's own
cadence, whichever is longer: a meter polled every 5 minutes keeps its
value for 5 minutes (plus the time a poll may take), however often the
platform asks. Analysers push at their own pace; their values count as
fresh for :data:`ANALYSER_CADENCE_S` at least.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any, Protocol

from edged.datalogger.aggregate import VALID_FLAGS, Sample

#: how long an analyser's value counts as fresh at least (they push every 30-60 s)
ANALYSER_CADENCE_S = 60.0
#: an analyser factor not heard from for this long is no longer listed
SEEN_WINDOW = timedelta(hours=1)

Factors = dict[str, dict[str, float | str]]


class LatestSource(Protocol):
    """What real-time data is read from: the data logger (DataLoggerService)."""

    def latest(self, seen_since: datetime) -> dict[str, Sample]: ...

    def factor_cadence(self) -> dict[str, float]: ...


def rtd_factors(
    latest: Mapping[str, Sample],
    now: datetime,
    interval_s: float,
    cadence: Mapping[str, float],
) -> Factors:
    """Pure: the CP factors of one real-time packet at ``now`` (board time, as samples).

    ``latest``: each key's newest sample; ``cadence``: seconds between samples
    of each register-map factor (every one of them is listed, sampled or not).
    Keys that are not HJ 212 factor codes (``device.point``) are left out.
    """
    out: Factors = {}
    for key in sorted(set(latest) | set(cadence)):
        if "." in key:
            continue
        sample = latest.get(key)
        window = timedelta(seconds=max(interval_s, cadence.get(key, ANALYSER_CADENCE_S)))
        if sample is not None and abs(now - sample.ts) <= window:
            if sample.value is not None:  # with its flag: M, C, ... say what the value is
                out[key] = {"Rtd": sample.value, "Flag": sample.flag}
            else:  # read, but no value: the sample's fault flag says why
                out[key] = {"Flag": sample.flag if sample.flag not in VALID_FLAGS else "D"}
        else:
            last = sample.flag if sample is not None else "N"
            out[key] = {"Flag": last if last not in VALID_FLAGS else "B"}
    return out


def slot(now: datetime, interval_s: int, tz: tzinfo | None) -> int:
    """Which ``interval_s``-long slot of the site's clock ``now`` (board time) falls in."""
    aware = now.astimezone(tz) if tz is not None else now.astimezone()
    offset = aware.utcoffset() or timedelta()
    return int((aware.timestamp() + offset.total_seconds()) // interval_s)


class RealtimeFeed:
    """Sends each platform its real-time packet when its next slot begins."""

    def __init__(self, source: LatestSource, tz: tzinfo | None) -> None:
        self.source = source
        self.tz = tz
        self._slot: dict[str, tuple[int, int]] = {}  # platform: (interval, slot last sent)

    def send_due(self, uplink: Any, now: datetime) -> int:
        """Queue a real-time packet for every platform whose slot began; returns how many.

        A platform that is down or has real-time off is skipped and gets its
        next packet as soon as it is back (at once, not a full interval later);
        one whose interval changed gets it at the new interval's next boundary.
        """
        due: dict[int, list[str]] = {}
        for link in uplink.links:
            name = link.cfg.name
            if not (link.realtime_on and link.connected):
                self._slot.pop(name, None)
                continue
            every = link.intervals.rtd_interval
            current = slot(now, every, self.tz)
            last = self._slot.get(name)
            self._slot[name] = (every, current)
            if last is None or (last[0] == every and last[1] != current):
                due.setdefault(every, []).append(name)
        if not due:
            return 0
        latest = self.source.latest(now - SEEN_WINDOW)
        cadence = self.source.factor_cadence()
        sent = 0
        for every, names in due.items():
            factors = rtd_factors(latest, now, every, cadence)
            if factors:
                sent += uplink.send_realtime(now.replace(microsecond=0), factors, platforms=names)
        return sent
