"""HJ 212-2017 uplink to several platforms at once (一点多传).

Each platform gets its own asyncio task, TCP connection, MN and password, and
reconnects on its own with exponential backoff, so a platform that is down,
silent or refusing never delays another. Records that must not be lost
(minute/hour/day data, start-up time, alarms) go through the :class:`Outbox`
first and are marked acknowledged only when the platform's 9014 arrives;
after an outage the rest is resent oldest first (断点续传). Real-time data is
sent only while the link is up: stale real-time values would mislead.

Platform commands (time, intervals, history) are answered with 9011 (QnRtn)
then the data and 9012 (ExeRtn), as the standard lays out; anything else gets
a refusal, never an exception.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from edged.hj212.clock import Clock, OffsetClock
from edged.hj212.codec import (
    EXERTN_BAD_REQUEST,
    EXERTN_FAILED,
    EXERTN_NO_DATA,
    EXERTN_OK,
    FLAG_REPLY,
    FLAG_V2017,
    QNRTN_CN,
    QNRTN_MN,
    QNRTN_PW,
    QNRTN_READY,
    QNRTN_REFUSED,
    Cp,
    Hj212Error,
    Packet,
    Reassembler,
    decode,
    encode_all,
    format_time,
    make_qn,
    parse_time,
)
from edged.hj212.config import Hj212Config, PlatformConfig
from edged.hj212.framing import PacketFramer
from edged.hj212.store import PRIORITY_ALARM, PRIORITY_DATA, Outbox
from edged.logs import get_logger

log = get_logger("hj212")

CN_REALTIME = "2011"
CN_MINUTE = "2051"
CN_HOUR = "2061"
CN_DAY = "2031"
CN_RESTART = "2081"
CN_HISTORY = (CN_MINUTE, CN_HOUR, CN_DAY)
ST_SYSTEM = "91"  # system interaction (系统交互) packets: 9011/9012/9013/9014

Factors = Mapping[str, Mapping[str, float | str]]


class DataSource(Protocol):
    """Where history answers come from (the data logger implements it)."""

    def records(
        self, cn: str, begin: datetime, end: datetime
    ) -> list[tuple[datetime, dict[str, dict[str, float | str]]]]: ...


class Intervals:
    """Real-time (s) and minute (min) upload intervals the platform may read and set.

    ``on_change(name, value)`` lets the data logger follow a change made by a
    platform (CN 1062/1064); names are ``"rtd_interval"`` and ``"min_interval"``.
    """

    def __init__(
        self,
        rtd_interval: int = 30,
        min_interval: int = 5,
        on_change: Callable[[str, int], None] | None = None,
    ) -> None:
        self.rtd_interval = rtd_interval
        self.min_interval = min_interval
        self.on_change = on_change

    def set(self, name: str, value: int) -> None:
        setattr(self, name, value)
        if self.on_change is not None:
            self.on_change(name, value)


class LinkBroken(Exception):
    """The platform did not answer within timeout and retries, or the socket died."""


@dataclass
class LinkStatus:
    name: str
    connected: bool
    backlog: int
    sent: int
    acked: int
    reconnects: int
    last_error: str


class PlatformLink:
    """One platform: connect, send, wait for 9014, answer commands, reconnect."""

    def __init__(self, cfg: PlatformConfig, uplink: Uplink) -> None:
        self.cfg = cfg
        self.up = uplink
        self.connected = False
        self.sent = 0
        self.acked = 0
        self.reconnects = 0
        self.last_error = ""
        self.live: collections.deque[Packet] = collections.deque(maxlen=8)
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._write_lock = asyncio.Lock()
        self._pending: dict[str, asyncio.Future[Packet]] = {}
        self._last_qn = datetime.min
        self._reassembler = Reassembler()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.log = log.bind(platform=cfg.name, host=cfg.host, port=cfg.port)

    # -- packets ----------------------------------------------------------

    def next_qn(self) -> str:
        """Unique per link even if the clock stands still or is set backwards."""
        now = self.up.clock.now()
        if now <= self._last_qn:
            now = self._last_qn + timedelta(milliseconds=1)
        self._last_qn = now
        return make_qn(now)

    def packet(
        self, cn: str, cp: Cp, qn: str | None = None, flag: int = FLAG_V2017, st: str | None = None
    ) -> Packet:
        return Packet(
            cn=cn,
            mn=self.cfg.mn,
            pw=self.cfg.pw,
            st=st or self.cfg.st,
            qn=qn or self.next_qn(),
            flag=flag,
            cp=cp,
        )

    def wake(self) -> None:
        self._wake.set()

    # -- main loop ----------------------------------------------------------

    async def run(self) -> None:
        delay = self.cfg.backoff_min
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.cfg.host, self.cfg.port), self.cfg.connect_timeout
                )
            except (OSError, TimeoutError) as exc:
                self.last_error = f"connect failed: {exc or type(exc).__name__}"
                self.log.warning(
                    "hj212_connect_failed",
                    error=str(exc) or type(exc).__name__,
                    retry_in_s=round(delay, 2),
                    hint="check platform host/port in [[hj212.platforms]], network and 4G modem",
                )
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.cfg.backoff_max)
                continue
            self.reconnects += 1
            self.log.info("hj212_connected", backlog=self.up.outbox.backlog(self.cfg.name))
            try:
                await self._session(reader, writer)
            except LinkBroken as exc:
                self.last_error = str(exc)
                self.log.warning(
                    "hj212_link_broken",
                    reason=str(exc),
                    hint="platform will get the unacknowledged data after reconnect",
                )
            finally:
                await self._close()
            if self.acked:
                delay = self.cfg.backoff_min
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.cfg.backoff_max)

    async def _close(self) -> None:
        self.connected = False
        for fut in self._pending.values():
            if not fut.done():
                fut.cancel()
        self._pending.clear()
        for task in list(self._tasks):
            task.cancel()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._closed = asyncio.Event()
        self.connected = True
        reader_task = self._spawn(self._read_loop(reader))
        try:
            await self._send_loop()
        finally:
            reader_task.cancel()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _send_loop(self) -> None:
        outbox = self.up.outbox
        while True:
            if self._closed.is_set():
                raise LinkBroken("platform closed the connection")
            self._wake.clear()
            if self.live:
                packet = self.live.popleft()
                try:
                    await self._deliver(packet)
                except LinkBroken:
                    self.log.info(
                        "hj212_realtime_dropped", qn=packet.qn, hint="real-time data is not resent"
                    )
                    raise
                continue
            row = outbox.next_pending(self.cfg.name)
            if row is not None:
                outbox.count_attempt(row.id)
                packet = self.packet(
                    row.cn, row.cp, flag=FLAG_V2017 | (FLAG_REPLY if self.cfg.reply_wanted else 0)
                )
                await self._deliver(packet)
                outbox.mark_acked(row.id, self.up.clock.now())
                continue
            waiter = asyncio.ensure_future(self._wake.wait())
            closer = asyncio.ensure_future(self._closed.wait())
            try:
                await asyncio.wait(
                    {waiter, closer}, timeout=5.0, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                waiter.cancel()
                closer.cancel()

    async def _write(self, chunks: list[bytes]) -> None:
        writer = self._writer
        if writer is None or self._closed.is_set():
            raise LinkBroken("not connected")
        async with self._write_lock:
            try:
                for chunk in chunks:
                    writer.write(chunk)
                await asyncio.wait_for(writer.drain(), self.cfg.timeout)
            except (OSError, TimeoutError) as exc:
                raise LinkBroken(f"write failed: {exc or type(exc).__name__}") from exc

    async def _deliver(self, packet: Packet) -> None:
        """Send and, when a reply is wanted, wait for the matching 9014 with retries."""
        chunks = encode_all(packet)
        if not packet.reply_wanted:
            await self._write(chunks)
            self.sent += 1
            self.acked += 1
            return
        qn = packet.qn or ""
        fut: asyncio.Future[Packet] = asyncio.get_running_loop().create_future()
        self._pending[qn] = fut
        try:
            for attempt in range(self.cfg.retries + 1):
                await self._write(chunks)
                self.sent += 1
                closer = asyncio.ensure_future(self._closed.wait())
                try:
                    done, _ = await asyncio.wait(
                        {fut, closer}, timeout=self.cfg.timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    closer.cancel()
                if fut in done and not fut.cancelled():
                    self.acked += 1
                    return
                if self._closed.is_set():
                    raise LinkBroken("platform closed the connection while we waited for 9014")
                self.log.info(
                    "hj212_no_reply",
                    cn=packet.cn,
                    qn=qn,
                    attempt=attempt + 1,
                    timeout_s=self.cfg.timeout,
                )
            raise LinkBroken(f"no 9014 for QN {qn} after {self.cfg.retries + 1} tries")
        finally:
            self._pending.pop(qn, None)

    # -- receiving --------------------------------------------------------------

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        framer = PacketFramer()
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    self.log.info("hj212_platform_closed")
                    break
                before = framer.garbage_bytes
                for raw in framer.feed(data):
                    await self._on_raw(raw)
                if framer.garbage_bytes > before:
                    self.log.warning(
                        "hj212_garbage_from_platform",
                        bytes=framer.garbage_bytes - before,
                        hint="bytes outside ##...CRLF packets; check the platform port",
                    )
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.log.info("hj212_read_failed", error=str(exc))
        finally:
            self._closed.set()
            self._wake.set()

    async def _on_raw(self, raw: bytes) -> None:
        try:
            packet = decode(raw)
        except Hj212Error as exc:
            self.log.warning(
                "hj212_bad_packet_from_platform",
                reason=exc.reason,
                field=exc.field,
                offset=exc.offset,
                packet=raw[:120].decode("latin-1"),
                hint="malformed packet from platform; refused with QnRtn when it had a QN",
            )
            if exc.qn:
                await self._reply_qnrtn(exc.qn, exc.qn_rtn)
            return
        loop = asyncio.get_running_loop()
        try:
            whole = self._reassembler.feed(packet, loop.time())
        except Hj212Error as exc:
            self.log.warning("hj212_split_packet_bad", reason=exc.reason, qn=packet.qn)
            return
        self._reassembler.expire(loop.time())
        if whole is None:
            return
        if whole.cn == "9014":
            fut = self._pending.get(whole.qn or "")
            if fut is not None and not fut.done():
                fut.set_result(whole)
            else:
                self.log.info("hj212_unexpected_ack", qn=whole.qn)
            return
        if whole.cn in ("9011", "9012", "9013"):
            self.log.info("hj212_platform_reply", cn=whole.cn, qn=whole.qn, cp=whole.cp.text())
            return
        self._spawn(self._command(whole))

    # -- commands ---------------------------------------------------------------

    async def _reply_qnrtn(self, qn: str, code: int) -> None:
        await self._send_reply(self.packet("9011", Cp({"QnRtn": str(code)}), qn=qn, st=ST_SYSTEM))

    async def _reply_exertn(self, qn: str, code: int) -> None:
        await self._send_reply(self.packet("9012", Cp({"ExeRtn": str(code)}), qn=qn, st=ST_SYSTEM))

    async def _send_reply(self, packet: Packet) -> None:
        with contextlib.suppress(LinkBroken):
            await self._write(encode_all(packet))

    async def _command(self, req: Packet) -> None:
        qn = req.qn or self.next_qn()
        self.log.info("hj212_command", cn=req.cn, qn=qn, cp=req.cp.text()[:200])
        if req.mn != self.cfg.mn:
            self.log.warning(
                "hj212_command_wrong_mn", got=req.mn, hint="platform MN differs from mn in config"
            )
            await self._reply_qnrtn(qn, QNRTN_MN)
            return
        if req.pw != self.cfg.pw:
            self.log.warning(
                "hj212_command_wrong_pw", hint="platform password differs from pw in config"
            )
            await self._reply_qnrtn(qn, QNRTN_PW)
            return
        handler = {
            "1011": self._get_time,
            "1012": self._set_time,
            "1061": self._get_interval,
            "1062": self._set_interval,
            "1063": self._get_interval,
            "1064": self._set_interval,
            CN_MINUTE: self._history,
            CN_HOUR: self._history,
            CN_DAY: self._history,
        }.get(req.cn)
        if handler is None:
            self.log.warning(
                "hj212_command_unknown",
                cn=req.cn,
                hint="command not supported; refused with QnRtn=8",
            )
            await self._reply_qnrtn(qn, QNRTN_CN)
            return
        try:
            await handler(req, qn)
        except Exception as exc:  # a command must never take the link down
            self.log.error("hj212_command_failed", cn=req.cn, qn=qn, error=repr(exc))
            await self._reply_exertn(qn, EXERTN_FAILED)

    async def _get_time(self, req: Packet, qn: str) -> None:
        await self._reply_qnrtn(qn, QNRTN_READY)
        params = {}
        if "PolId" in req.cp.params:
            params["PolId"] = req.cp.params["PolId"]
        params["SystemTime"] = format_time(self.up.clock.now())
        await self._send_reply(self.packet("1011", Cp(params), qn=qn))
        await self._reply_exertn(qn, EXERTN_OK)

    async def _set_time(self, req: Packet, qn: str) -> None:
        if not self.up.config.accept_time_set:
            self.log.warning("hj212_time_set_refused", hint="accept_time_set = false in [hj212]")
            await self._reply_qnrtn(qn, QNRTN_REFUSED)
            return
        await self._reply_qnrtn(qn, QNRTN_READY)
        try:
            when = parse_time(req.cp.params.get("SystemTime", ""), "SystemTime")
        except Hj212Error as exc:
            self.log.warning("hj212_time_set_bad", reason=exc.reason)
            await self._reply_exertn(qn, EXERTN_BAD_REQUEST)
            return
        before = self.up.clock.now()
        self.up.clock.set(when)
        self.log.info("hj212_time_set", old=format_time(before), new=format_time(when))
        await self._reply_exertn(qn, EXERTN_OK)

    async def _get_interval(self, req: Packet, qn: str) -> None:
        await self._reply_qnrtn(qn, QNRTN_READY)
        key, value = (
            ("RtdInterval", self.up.intervals.rtd_interval)
            if req.cn == "1061"
            else ("MinInterval", self.up.intervals.min_interval)
        )
        await self._send_reply(self.packet(req.cn, Cp({key: str(value)}), qn=qn))
        await self._reply_exertn(qn, EXERTN_OK)

    async def _set_interval(self, req: Packet, qn: str) -> None:
        key, name, low, high = (
            ("RtdInterval", "rtd_interval", 30, 3600)
            if req.cn == "1062"
            else ("MinInterval", "min_interval", 1, 60)
        )
        await self._reply_qnrtn(qn, QNRTN_READY)
        text = req.cp.params.get(key, "")
        if not text.isdigit() or not low <= int(text) <= high:
            self.log.warning("hj212_interval_bad", key=key, value=text, allowed=f"{low}..{high}")
            await self._reply_exertn(qn, EXERTN_BAD_REQUEST)
            return
        self.up.intervals.set(name, int(text))
        self.log.info("hj212_interval_set", key=key, value=int(text))
        await self._reply_exertn(qn, EXERTN_OK)

    async def _history(self, req: Packet, qn: str) -> None:
        source = self.up.source
        if source is None:
            await self._reply_qnrtn(qn, QNRTN_REFUSED)
            return
        try:
            begin = parse_time(req.cp.params.get("BeginTime", ""), "BeginTime")
            end = parse_time(req.cp.params.get("EndTime", ""), "EndTime")
        except Hj212Error as exc:
            self.log.warning("hj212_history_bad_request", reason=exc.reason)
            await self._reply_qnrtn(qn, QNRTN_READY)
            await self._reply_exertn(qn, EXERTN_BAD_REQUEST)
            return
        await self._reply_qnrtn(qn, QNRTN_READY)
        records = await asyncio.get_running_loop().run_in_executor(
            None, source.records, req.cn, begin, end
        )
        for when, factors in sorted(records, key=lambda r: r[0]):
            cp = Cp.build({"DataTime": when}, factors)
            await self._write(encode_all(self.packet(req.cn, cp, qn=qn)))
        self.log.info(
            "hj212_history_sent",
            cn=req.cn,
            begin=format_time(begin),
            end=format_time(end),
            records=len(records),
        )
        await self._reply_exertn(qn, EXERTN_OK if records else EXERTN_NO_DATA)


class Uplink:
    """All platforms together. Runs on an asyncio loop; the ``send_*``/``publish``
    methods are safe to call from any thread and never block on the network."""

    def __init__(
        self,
        config: Hj212Config,
        store_path: str | Path,
        source: DataSource | None = None,
        clock: Clock | None = None,
        intervals: Intervals | None = None,
    ) -> None:
        self.config = config
        self.source = source
        self.clock = clock or OffsetClock()
        self.intervals = intervals or Intervals(config.rtd_interval, config.min_interval)
        self.outbox = Outbox(store_path)
        self.links = [PlatformLink(p, self) for p in config.platforms if p.enabled]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def _resend_names(self) -> list[str]:
        return [link.cfg.name for link in self.links]

    def _wake_all(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for link in self.links:
            loop.call_soon_threadsafe(link.wake)

    # -- what the daemon calls -------------------------------------------------

    def publish(self, cn: str, data_time: datetime, factors: Factors) -> None:
        """Minute/hour/day data (2051/2061/2031): stored, sent, resent until acknowledged."""
        cp = Cp.build({"DataTime": data_time}, factors)
        self.outbox.add(
            self._resend_names(), cn, data_time, cp, PRIORITY_DATA, now=self.clock.now()
        )
        self._wake_all()

    def send_realtime(self, data_time: datetime, factors: Factors) -> None:
        """Real-time data (2011) to every platform whose link is up; never resent."""
        cp = Cp.build({"DataTime": data_time}, factors)
        for link in self.links:
            if link.cfg.realtime and link.connected:
                flag = FLAG_V2017 | (FLAG_REPLY if link.cfg.reply_wanted else 0)
                link.live.append(link.packet(CN_REALTIME, cp, flag=flag))
        self._wake_all()

    def send_now(self, cn: str, cp: Cp, data_time: datetime | None = None) -> None:
        """Any packet ahead of the backlog (alarms, events); kept until acknowledged."""
        when = data_time or cp.data_time or self.clock.now()
        self.outbox.add(self._resend_names(), cn, when, cp, PRIORITY_ALARM, now=self.clock.now())
        self._wake_all()

    def send_alarm(self, data_time: datetime, factors: Factors) -> None:
        """Over-limit / fault event at once (CN from config ``alarm_cn``), e.g.
        ``{"a34013": {"Rtd": 52.1, "Flag": "T"}}``."""
        self.send_now(self.config.alarm_cn, Cp.build({"DataTime": data_time}, factors), data_time)

    def send_startup(self, restart_time: datetime) -> None:
        """Logger start-up time (2081), so platforms see power cuts and restarts."""
        now = self.clock.now()
        cp = Cp.build({"DataTime": now, "RestartTime": restart_time})
        self.send_now(CN_RESTART, cp, now)

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
            )
            for link in self.links
        ]

    # -- running ------------------------------------------------------------------

    async def serve(self) -> None:
        """Run every platform link until cancelled."""
        self._loop = asyncio.get_running_loop()
        self.outbox.prune(self.clock.now() - timedelta(days=self.config.keep_days))
        if not self.links:
            log.info("hj212_no_platforms", hint="add [[hj212.platforms]] tables to send data")
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
                await link._close()
            self._loop = None

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(3600)
            removed = self.outbox.prune(self.clock.now() - timedelta(days=self.config.keep_days))
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
