"""HJ 212 uplink to several platforms at once (一点多传), each in its own version.

Each platform gets its own :class:`~edged.hj212.platform_link.PlatformLink`
(asyncio task, TCP connection, MN, password and version of the standard --
HJ 212-2017, or HJ 212-2025 with SM4, heartbeat (9015), hardware identity
(1001), MN assignment (1002), key update (1014) and ``RF=1`` on backfilled
data), so a platform that is down, silent, refusing or misbehaving never
delays or harms another. Records that must not be lost (minute/hour/day
data, start-up time, alarms) go through the :class:`Outbox` first and are
marked acknowledged only when the platform's 9014 arrives; real-time data is
sent only while a link is up. What a platform asks of the logger is answered
by :class:`~edged.hj212.platform_commands.PlatformCommands`.

Times: every HJ 212 time (QN, DataTime, BeginTime/EndTime, SystemTime) is
the site's wall time in ``tz``, whatever the board's system zone. Times the
daemon hands in may be naive (the board's local time, as ``datetime.now()``)
or aware.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from edged.hj212 import cn as CN
from edged.hj212.clock import Clock, OffsetClock, local_naive
from edged.hj212.codec import Cp, to_site
from edged.hj212.config import Hj212Config
from edged.hj212.hardware import HardwareIdentity, read_identity
from edged.hj212.platform_commands import DataSource, Intervals, PlatformCommands
from edged.hj212.platform_link import PlatformLink
from edged.hj212.precision import resolve
from edged.hj212.store import PRIORITY_ALARM, PRIORITY_DATA, Outbox
from edged.logs import get_logger

__all__ = ["DataSource", "Intervals", "LinkStatus", "PlatformLink", "Uplink"]

log = get_logger("hj212")

Factors = Mapping[str, Mapping[str, float | str]]
Audit = Callable[[str, str, dict[str, Any]], None]


@dataclass
class LinkStatus:
    name: str
    connected: bool
    backlog: int
    sent: int
    acked: int
    reconnects: int
    last_error: str
    version: str = "2017"
    mn: str = ""
    encrypted: bool = False
    realtime: bool = True
    rtd_interval_s: int = 30
    min_interval_min: int = 5
    last_realtime: datetime | None = None  # when real-time data last went out (system time)


class Uplink:
    """All platforms together. Runs on an asyncio loop; the ``send_*``/``publish``
    methods are safe to call from any thread and never block on the network.

    ``tz`` is the site's zone (``site.timezone``): every HJ 212 time goes out
    in it. ``audit(actor, action, details)`` is called for every change a
    platform makes or tries (clock, keys, MN, timeouts, intervals, real-time
    on/off); it runs on the uplink's thread and must not block for long.
    ``units`` maps factor codes to units for the default decimals.
    """

    def __init__(
        self,
        config: Hj212Config,
        store_path: str | Path,
        source: DataSource | None = None,
        clock: Clock | None = None,
        *,
        tz: tzinfo | None = None,
        audit: Audit | None = None,
        units: Mapping[str, str] | None = None,
        identity: HardwareIdentity | None = None,
        system_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.source = source
        self.clock = clock or OffsetClock()
        self.tz = tz
        self.audit = audit
        self.system_clock = system_clock or (lambda: datetime.now(UTC))
        self.decimals = resolve(config.decimals, units or {})
        self.outbox = Outbox(store_path)
        if identity is None:
            identity = read_identity(config)
            speaks_2025 = any(p.version == "2025" and p.enabled for p in config.platforms)
            if speaks_2025 and (not identity.cpu_id or not identity.macs):
                log.warning(
                    "hj212_identity_incomplete",
                    cpu_id=identity.cpu_id,
                    macs=list(identity.macs),
                    hint="set cpu_id / macs in [hj212]; HJ 212-2025 platforms assign the MN"
                    " from them",
                )
        self.identity = identity
        self.links = [
            PlatformLink(p, self, lambda link: PlatformCommands(link, self))
            for p in config.platforms
            if p.enabled
        ]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    # -- time and text ------------------------------------------------------------

    def system_now(self) -> datetime:
        """The board's system time, aware: what pruning and the 1012 bound trust."""
        now = self.system_clock()
        return now if now.tzinfo is not None else now.astimezone()

    def site_now(self) -> datetime:
        """The logger's clock (which a platform may have set) as site time."""
        return to_site(self.clock.now(), self.tz)

    def site_naive(self, dt: datetime) -> datetime:
        """Site wall time without zone: how the outbox orders and prunes records."""
        if self.tz is None:
            return local_naive(dt)
        return to_site(dt, self.tz).replace(tzinfo=None)

    def build_cp(self, params: Mapping[str, object], factors: Factors | None = None) -> Cp:
        return Cp.build(params, factors, tz=self.tz, decimals=self.decimals)

    def audit_event(self, actor: str, action: str, details: dict[str, Any]) -> None:
        if self.audit is None:
            return
        try:
            self.audit(actor, action, details)
        except Exception as exc:  # an audit sink that fails must not stop the uplink
            log.error("hj212_audit_failed", action=action, error=repr(exc))

    def info(self, pol_id: str, info_id: str) -> dict[str, str]:
        """Answers to CN 3020: the hardware identity, plus what the data source offers."""
        own = {
            code: fields["Info"]
            for code, fields in self.identity.cp_factors().items()
            if fields.get("Info")
        }
        out = {k: v for k, v in own.items() if not info_id or k == info_id}
        extra = getattr(self.source, "info", None)
        if callable(extra):
            with contextlib.suppress(Exception):
                out.update(extra(pol_id, info_id) or {})
        return out

    def _names(self, data: bool, only: Collection[str] | None = None) -> list[str]:
        """Platforms a record is queued for (of ``only``, when given): a data record skips a
        platform that is down and takes no resend (``resend = false``); alarms and notices
        wait for every platform."""
        return [
            link.cfg.name
            for link in self.links
            if (not data or link.cfg.resend or link.connected)
            and (only is None or link.cfg.name in only)
        ]

    def _wake_all(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for link in self.links:
            loop.call_soon_threadsafe(link.wake)

    # -- what the daemon calls -------------------------------------------------

    def publish(
        self,
        cn: str,
        data_time: datetime,
        factors: Factors,
        platforms: Collection[str] | None = None,
    ) -> None:
        """Minute/hour/day data (2051/2061/2031): stored, sent, resent until acknowledged
        (to a platform with ``resend = false`` only while its link is up). ``platforms``:
        only these (minute data follows each platform's own minute interval)."""
        names = self._names(data=True, only=platforms)
        if not names:
            return
        cp = self.build_cp({"DataTime": data_time}, factors)
        self.outbox.add(
            names,
            cn,
            self.site_naive(data_time),
            cp,
            PRIORITY_DATA,
            now=self.system_now(),
        )
        self._wake_all()

    def send_realtime(
        self, data_time: datetime, factors: Factors, platforms: Collection[str] | None = None
    ) -> int:
        """Real-time data (2011) to every platform (of ``platforms``) whose link is up and
        that has real-time on; never resent. Returns to how many it went."""
        cp = self.build_cp({"DataTime": data_time}, factors)
        n = 0
        for link in self.links:
            if platforms is not None and link.cfg.name not in platforms:
                continue
            if link.realtime_on and link.connected:
                link.live.append(cp)
                n += 1
        self._wake_all()
        return n

    def send_now(self, cn: str, cp: Cp, data_time: datetime | None = None) -> None:
        """Any packet ahead of the backlog (alarms, events); kept until acknowledged."""
        when = data_time or cp.data_time or self.clock.now()
        self.outbox.add(
            self._names(data=False),
            cn,
            self.site_naive(when),
            cp,
            PRIORITY_ALARM,
            now=self.system_now(),
        )
        self._wake_all()

    def send_alarm(self, data_time: datetime, factors: Factors) -> None:
        """Over-limit / fault event at once (CN from config ``alarm_cn``), e.g.
        ``{"a34013": {"Rtd": 52.1, "Flag": "T"}}``."""
        self.send_now(
            self.config.alarm_cn, self.build_cp({"DataTime": data_time}, factors), data_time
        )

    def send_startup(self, restart_time: datetime) -> None:
        """Logger start-up time (2081), so platforms see power cuts and restarts."""
        now = self.clock.now()
        cp = self.build_cp({"DataTime": now, "RestartTime": restart_time})
        self.send_now(CN.RESTART, cp, now)

    def status(self) -> list[LinkStatus]:
        return [
            LinkStatus(
                link.cfg.name,
                link.connected,
                self.outbox.backlog(link.cfg.name),
                link.sent,
                link.acked,
                link.reconnects,
                link.last_error,
                link.cfg.version,
                link.out.mn,
                link.keys.enabled,
                link.realtime_on,
                link.intervals.rtd_interval,
                link.intervals.min_interval,
                link.last_realtime,
            )
            for link in self.links
        ]

    # -- running ------------------------------------------------------------------

    def prune(self) -> int:
        """Forget records past keep_days by the *system* clock (a platform cannot move it)."""
        cutoff = self.system_now() - timedelta(days=self.config.keep_days)
        return self.outbox.prune(self.site_naive(cutoff), cutoff.astimezone(UTC))

    async def serve(self) -> None:
        """Run every platform link until cancelled."""
        self._loop = asyncio.get_running_loop()
        self.prune()
        if not self.links:
            log.info("hj212_no_platforms", hint="add [[hj212.platforms]] tables to send data")
        for link in self.links:
            if link.v2025 and not link.keys.enabled:
                link.log.warning(
                    "hj212_no_sm4_key",
                    hint="HJ 212-2025 encrypts data with SM4; set sm4_key from the platform operator",
                )
        tasks = [
            asyncio.create_task(link.run(), name=f"hj212-{link.cfg.name}") for link in self.links
        ]
        tasks.append(asyncio.create_task(self._housekeeping()))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            for link in self.links:
                await link.close()
            self._loop = None

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(3600)
            removed = self.prune()
            if removed:
                log.info("hj212_outbox_pruned", rows=removed, keep_days=self.config.keep_days)

    def start_thread(self) -> Callable[[], None]:
        """Run :meth:`serve` on its own thread (for a threaded daemon); returns ``stop()``."""
        started = threading.Event()
        holder: dict[str, Any] = {}

        def main() -> None:
            loop = asyncio.new_event_loop()
            holder["loop"] = loop
            task = loop.create_task(self.serve())
            holder["task"] = task
            started.set()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(task)
            loop.close()

        thread = threading.Thread(target=main, name="hj212-uplink", daemon=True)
        thread.start()
        started.wait()

        def stop() -> None:
            holder["loop"].call_soon_threadsafe(holder["task"].cancel)
            thread.join(timeout=5)

        return stop
