"""Analysers that send HJ 212 packets over RS232/RS485, taken in as samples.

Their readings join the Modbus samples in the data store, so minute/hour/day
aggregates, resend and history answers treat them the same way. A port that
fails (adapter unplugged) is reopened with backoff instead of staying dead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from edged.config.schema import doc
from edged.datalogger.aggregate import Sample
from edged.hj212.serial_in import Sample as PacketSample
from edged.hj212.serial_in import SerialPacketReader
from edged.logs import get_logger

log = get_logger("instruments")


@dataclass(frozen=True)
class InstrumentConfig:
    """One analyser port (在线监测仪表) speaking HJ 212."""

    name: str = field(metadata=doc("Short name used in logs, e.g. 'cems'"))
    port: str = field(metadata=doc("Serial port, e.g. /dev/ttyUSB1"))
    baudrate: int = field(default=9600, metadata=doc("Serial speed of the analyser"))
    strict: bool = field(
        default=True, metadata=doc("Refuse packets with a bad CRC (false: accept with a warning)")
    )


def board_time(data_time: datetime, tz: tzinfo | None) -> datetime:
    """An analyser's DataTime (the site's wall time, as every HJ 212 time) as the board's
    wall time, which is how the store keeps samples; without ``tz`` taken as it is."""
    if tz is None:
        return data_time.replace(tzinfo=None)
    aware = data_time if data_time.tzinfo is not None else data_time.replace(tzinfo=tz)
    return aware.astimezone().replace(tzinfo=None)


def to_samples(
    packets: list[PacketSample], now: datetime, tz: tzinfo | None = None
) -> list[Sample]:
    """Pure: HJ 212 factor readings to data-store samples keyed by factor code.

    ``now`` (board time) stamps a reading without DataTime; ``tz`` is the site's
    zone the analyser's DataTime is in. On a board whose system zone is not the
    site's (left on UTC), taking DataTime as board time would put every reading
    hours away from the Modbus samples of the same moment, in another hour's record.
    """
    out = []
    for p in packets:
        value = p.values.get("Rtd", p.values.get("Avg"))
        flag = p.flag if value is not None else (p.flag if p.flag != "N" else "D")
        when = board_time(p.data_time, tz) if p.data_time is not None else now
        out.append(Sample(when, p.code, value, flag))
    return out


class InstrumentInput:
    """A reader thread per analyser, restarted with backoff when its port fails."""

    def __init__(
        self,
        cfg: InstrumentConfig,
        sink: Callable[[list[Sample]], None],
        backoff_max: float = 30.0,
        tz: tzinfo | None = None,
    ) -> None:
        """``tz``: the site's zone (``site.timezone``), in which analysers send DataTime."""
        self.cfg = cfg
        self.tz = tz
        self.sink = sink
        self.backoff_max = backoff_max
        self._stop = threading.Event()
        self._reader: SerialPacketReader | None = None
        self._thread: threading.Thread | None = None
        self.samples = 0

    def _on_sample(self, sample: PacketSample) -> None:
        rows = to_samples([sample], datetime.now(), self.tz)
        self.sink(rows)
        self.samples += len(rows)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._reader = SerialPacketReader(
                    self.cfg.port, self._on_sample, self.cfg.baudrate, self.cfg.strict
                )
                failures = 0
                self._reader.run()
            except Exception as exc:  # missing port, adapter gone: retry later
                log.error(
                    "instrument_port_failed",
                    name=self.cfg.name,
                    port=self.cfg.port,
                    error=str(exc),
                    hint="check the cable and adapter",
                )
            failures += 1
            self._stop.wait(min(self.backoff_max, 0.5 * 2 ** min(failures, 8)))

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"instrument-{self.cfg.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.close()
        if self._thread is not None:
            self._thread.join(3)
