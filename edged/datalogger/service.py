"""The data logger as one object the daemon starts and stops.

Puts the poller, the store and the housekeeping together: samples go
straight to disk, a timer closes finished minutes/hours/days and prunes old
rows. On start it first closes whatever periods ended while the box was off,
so the uplink finds complete minute/hour data for the outage edges.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from edged.datalogger.aggregate import Aggregate, Period, Sample
from edged.datalogger.poller import EventSink, Poller
from edged.datalogger.registers import ModbusConfig, plan_reads
from edged.datalogger.store import DataStore, DataStoreConfig, rules_from_points
from edged.logs import get_logger

log = get_logger("datalogger")


def poll_grace(modbus: ModbusConfig) -> float:
    """Longest time one device poll can take (every read timing out), plus a margin.

    A sample is stamped when its poll starts and written when it ends; a
    minute must not be closed before its last poll has been written.
    """
    worst = 0.0
    for d in modbus.devices:
        blocks = len(plan_reads(d.points, max_gap=d.max_gap))
        worst = max(worst, d.timeout_s * (1 + d.retries) * max(1, blocks))
    return min(worst, 60.0) + 2.0


def factor_cadence(modbus: ModbusConfig) -> dict[str, float]:
    """Seconds between fresh samples of each factor the register map names: its device's
    poll interval plus :func:`poll_grace`. A real-time value older than that is stale."""
    grace = poll_grace(modbus)
    return {
        p.factor: modbus.interval(d) + grace
        for d in modbus.devices
        if d.enabled
        for p in d.points
        if p.factor
    }


class DataLogger:
    """Acquisition + storage; also the uplink's data source via :meth:`records`."""

    def __init__(
        self,
        modbus: ModbusConfig,
        store_config: DataStoreConfig | None = None,
        data_dir: str | Path = ".",
        on_event: EventSink | None = None,
        *,
        clock: Callable[[], datetime] = datetime.now,
        housekeeping_seconds: float = 5.0,
        poller_factory: Callable[..., Poller] = Poller,
        tz: tzinfo | None = None,
    ) -> None:
        """``clock`` gives the board's wall time (naive); ``tz`` is the site's zone, in
        which minutes, hours and days close (without it: the board's zone)."""
        self.store_config = store_config or DataStoreConfig()
        self.cadence = factor_cadence(modbus)
        path = Path(self.store_config.path)
        if not path.is_absolute():
            path = Path(data_dir) / path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.store = DataStore(
            path,
            rules_from_points(modbus.points_by_key()),
            self.store_config,
            clock=clock,
            grace_seconds=poll_grace(modbus),
            tz=tz,
        )
        self.poller = poller_factory(modbus, self.store.add_samples, on_event, wall_clock=clock)
        self._every = housekeeping_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune: datetime | None = None

    def start(self) -> None:
        caught_up = self.store.close_periods()
        if any(caught_up.values()):
            log.info("datalogger_caught_up", **caught_up)
        self.poller.start()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._housekeeping, name="datalogger hk", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.poller.stop()
        if self._thread is not None:
            self._thread.join(5)
        self.store.close()

    def housekeeping(self) -> None:
        """Close ended periods; prune once an hour. Called by the timer thread."""
        now = self.clock()
        self.store.close_periods(now)
        if self._last_prune is None or (now - self._last_prune).total_seconds() >= 3600:
            self.store.prune(now)
            self._last_prune = now

    def _housekeeping(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.housekeeping()
            except Exception as exc:  # a full disk must not stop acquisition
                log.error(
                    "datalogger_housekeeping_failed",
                    error=repr(exc),
                    hint="check free space and permissions of the data directory",
                )

    def stats(self) -> dict[str, dict[str, Any]]:
        return self.poller.stats()

    def records(
        self, cn: str, begin: datetime, end: datetime
    ) -> list[tuple[datetime, dict[str, dict[str, float | str]]]]:
        return self.store.records(cn, begin, end)

    # what the HJ 212 feed reads (edged.hj212.record_feed), as DataLoggerService offers it
    def aggregates(self, period: Period, begin: datetime, end: datetime) -> list[Aggregate]:
        return self.store.aggregates(period, begin, end)

    def closed_until(self, period: Period) -> datetime | None:
        return self.store.closed_until(period)

    def latest(self, seen_since: datetime) -> dict[str, Sample]:
        """Newest sample of every register-map factor and of every key seen since then."""
        return self.store.latest(self.cadence, seen_since)

    def factor_cadence(self) -> dict[str, float]:
        return self.cadence


class DataLoggerService:
    """Supervised part ``datalogger``: Modbus polling, the analysers on serial lines, the store."""

    name = "datalogger"

    def __init__(
        self,
        modbus: ModbusConfig,
        store_config: DataStoreConfig,
        instruments: list[Any],
        data_dir: str | Path,
        on_event: EventSink,
        tz: tzinfo | None = None,
    ) -> None:
        """``tz``: the site's zone (``site.timezone``); a day record then covers the site's
        day even on a board whose system zone is UTC."""
        self.modbus = modbus
        self.tz = tz
        self.cadence = factor_cadence(modbus)
        self.store_config = store_config
        self.instrument_configs = instruments
        self.data_dir = data_dir
        self.on_event = on_event
        self.logger: DataLogger | None = None
        self.instruments: list[Any] = []

    def start(self) -> None:
        from edged.datalogger.instruments import InstrumentInput

        logger = DataLogger(
            self.modbus, self.store_config, self.data_dir, on_event=self.on_event, tz=self.tz
        )
        logger.start()
        self.logger = logger
        self.instruments = [
            InstrumentInput(c, logger.store.add_samples, tz=self.tz)
            for c in self.instrument_configs
        ]
        for inst in self.instruments:
            inst.start()

    def stop(self) -> None:
        for inst in self.instruments:
            inst.stop()
        self.instruments = []
        if self.logger is not None:
            self.logger.stop()
            self.logger = None

    def status(self) -> dict[str, str] | None:
        if self.logger is None:
            return None
        return {name: st["state"] for name, st in self.logger.stats().items()}

    def meters(self) -> dict[str, dict[str, Any]] | None:
        """Per Modbus device: its state with the collection success (采集成功率) behind it,
        since start and over the last polls, and the last error a technician acts on."""
        if self.logger is None:
            return None
        keep = ("state", "polls", "ok", "success_rate", "recent_success_rate", "last_ok")
        return {
            name: {**{k: st[k] for k in keep}, "last_error": st["last_error"] or None}
            for name, st in self.logger.stats().items()
        }

    def records(
        self, cn: str, begin: datetime, end: datetime
    ) -> list[tuple[datetime, dict[str, dict[str, float | str]]]]:
        """The uplink's data source: what the running logger has (nothing while it is down)."""
        return self.logger.records(cn, begin, end) if self.logger is not None else []

    # what the HJ 212 feed reads (edged.hj212.record_feed); nothing while the logger is down
    def aggregates(self, period: Period, begin: datetime, end: datetime) -> list[Aggregate]:
        return self.logger.aggregates(period, begin, end) if self.logger is not None else []

    def closed_until(self, period: Period) -> datetime | None:
        return self.logger.closed_until(period) if self.logger is not None else None

    def latest(self, seen_since: datetime) -> dict[str, Sample]:
        """Newest sample of every register-map factor and of every analyser factor seen since
        ``seen_since``; empty while the logger is down (real-time data then says so)."""
        return self.logger.latest(seen_since) if self.logger is not None else {}

    def factor_cadence(self) -> dict[str, float]:
        """The register map's factors and how often each gets a sample (s), running or not."""
        return self.cadence
