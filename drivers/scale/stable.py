"""When is a weight stable? Every sample of the last few seconds within a band. Pure."""

from __future__ import annotations

import collections

from drivers.scale import StableWeight


class StableDetector:
    """Stable = every sample of the last ``stable_s`` lies within ``tolerance_kg`` band.

    Fed with (time, kg); :meth:`feed` returns a :class:`StableWeight` once each
    time the weight *becomes* stable, and :attr:`stable` tells the current state.
    Samples older than needed are dropped, so memory stays bounded however long
    a truck stands on the bridge.
    """

    def __init__(self, tolerance_kg: float = 20.0, stable_s: float = 3.0) -> None:
        self.tolerance_kg = tolerance_kg
        self.stable_s = stable_s
        self._samples: collections.deque[tuple[float, float]] = collections.deque()
        self._stable: StableWeight | None = None

    def feed(self, t: float, kg: float) -> StableWeight | None:
        s = self._samples
        if s and t < s[-1][0]:
            s.clear()  # clock went backwards: start over rather than guess
        s.append((t, kg))
        while len(s) > 1:
            ws = [w for _, w in s]
            if max(ws) - min(ws) <= self.tolerance_kg:
                break
            s.popleft()
        while len(s) > 2 and t - s[1][0] >= self.stable_s:
            s.popleft()
        was = self._stable
        if t - s[0][0] >= self.stable_s:
            ws = sorted(w for _, w in s)
            median = ws[len(ws) // 2]
            since = (
                was.since
                if was is not None and abs(was.kg - median) <= self.tolerance_kg
                else s[0][0]
            )
            self._stable = StableWeight(median, since, t, len(ws))
            return self._stable if was is None else None
        self._stable = None
        return None

    @property
    def stable(self) -> StableWeight | None:
        return self._stable

    def reset(self) -> None:
        self._samples.clear()
        self._stable = None
