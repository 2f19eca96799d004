"""An indicator on a serial line: latest weight, stable weight, callbacks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from drivers.log import get_logger
from drivers.scale import ScaleConfig, ScaleParserStats, StableWeight, WeightReading
from drivers.scale.stable import StableDetector
from drivers.serialport import SerialLine

log = get_logger("scale")


class WeightParser(Protocol):
    """Bytes in, weights in kg out; each output type has one."""

    stats: ScaleParserStats

    def feed(self, data: bytes) -> list[float]: ...


class ScaleReader:
    """Indicator on a serial line -> latest weight, stable weight, callbacks."""

    def __init__(
        self,
        cfg: ScaleConfig,
        parser: WeightParser,
        *,
        name: str = "scale",
        on_weight: Callable[[WeightReading], None] | None = None,
        on_stable: Callable[[StableWeight], None] | None = None,
        on_raw: Callable[[bytes], None] | None = None,
        clock: Callable[[], float] = time.time,
        line_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self.name = name
        self.parser = parser
        self.detector = StableDetector(cfg.stable_tolerance_kg, cfg.stable_s)
        self._on_weight = on_weight
        self._on_stable = on_stable
        self._on_raw = on_raw
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: WeightReading | None = None
        self.callback_errors = 0
        self.line = SerialLine(
            cfg.port, cfg.baudrate, self._on_bytes, name=name, **(line_kwargs or {})
        )

    def start(self) -> ScaleReader:
        self.line.start()
        return self

    def close(self, timeout: float = 2.0) -> bool:
        return self.line.close(timeout)

    @property
    def latest(self) -> WeightReading | None:
        """Last weight, or None when the indicator has been silent ``stale_seconds``."""
        with self._lock:
            r = self._latest
        if r is None or self._clock() - r.time > self.cfg.stale_s:
            return None
        return r

    @property
    def stable(self) -> StableWeight | None:
        """Current stable vehicle weight, or None (moving, empty bridge, or no fresh data).

        A stable reading under ``min_load_kg`` is the empty bridge (or a
        person standing on it), not a vehicle: it is not a weight to record.
        """
        if self.latest is None:
            return None
        with self._lock:
            st = self.detector.stable
        return st if st is not None and st.kg >= self.cfg.min_load_kg else None

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(vars(self.parser.stats))
        out["callback_errors"] = self.callback_errors
        out.update({f"line_{k}": v for k, v in self.line.stats().items()})
        return out

    def _on_bytes(self, chunk: bytes) -> None:
        if self._on_raw is not None:
            self._on_raw(chunk)
        for kg in self.parser.feed(chunk):
            now = self._clock()
            reading = WeightReading(kg, now)
            with self._lock:
                self._latest = reading
                became = self.detector.feed(now, kg)
            self._call(self._on_weight, reading)
            if became is not None and became.kg >= self.cfg.min_load_kg:
                log.info("scale_stable", scale=self.name, kg=became.kg)
                self._call(self._on_stable, became)

    def _call(self, fn: Callable[[Any], None] | None, arg: Any) -> None:
        if fn is None:
            return
        try:
            fn(arg)
        except Exception as exc:
            self.callback_errors += 1
            log.error("scale_callback_failed", scale=self.name, error=repr(exc))
