"""One HJ 212 platform's session: connect, send, wait for replies, read, reconnect.

Each platform gets its own asyncio task and TCP connection, and reconnects
on its own with exponential backoff, so a platform that is down, silent,
refusing or misbehaving never delays or harms another. Records that must not
be lost come from the shared :class:`~edged.hj212.store.Outbox` and are
marked acknowledged only when the platform's 9014 arrives; after an outage
the rest is resent oldest first (断点续传). Real-time data is sent only while
the link is up: stale real-time values would mislead.

What the platform asks of the logger (CN 1000-3020) is answered by
:class:`~edged.hj212.platform_commands.PlatformCommands`; this module only
reads packets, matches 9013/9014 replies to what it waits for and hands the
platform's requests on.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from edged.hj212 import cn as CN
from edged.hj212.codec import Cp, Hj212Error, Packet, decode
from edged.hj212.config import Hj212Config, PlatformConfig
from edged.hj212.framing import PacketFramer
from edged.hj212.hardware import HardwareIdentity
from edged.hj212.intervals import Intervals
from edged.hj212.keys import KeyRing
from edged.hj212.outgoing import Outgoing
from edged.hj212.store import PRIORITY_DATA, Outbox
from edged.logs import get_logger

log = get_logger("hj212")


class Shared(Protocol):
    """What every platform link shares with the others: the uplink (:class:`Uplink`)."""

    config: Hj212Config
    outbox: Outbox
    identity: HardwareIdentity

    def site_now(self) -> datetime: ...

    def system_now(self) -> datetime: ...

    def audit_event(self, actor: str, action: str, details: dict[str, Any]) -> None: ...


class Requests(Protocol):
    """Answers what a platform asks of the logger (CN 1000-3020)."""

    async def receive(self, packet: Packet) -> None:
        """A request from the platform (not a 9011-9014 reply to the logger)."""

    async def refuse(self, qn: str, code: int) -> None:
        """A packet that could not be read but had a QN: answer QnRtn ``code``."""


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


class LinkBroken(Exception):
    """The platform did not answer within timeout and retries, or the socket died."""


class PlatformLink:
    """One platform: connect, send, wait for replies, read, reconnect.

    ``out.mn`` (packets go out through ``out``), ``timeout``/``retries``,
    ``realtime_on`` and ``intervals`` (real-time and minute data) start from the
    config (or what the platform set before, see :meth:`_remembered`); the
    platform's commands may change them while the link runs.
    """

    def __init__(
        self,
        cfg: PlatformConfig,
        uplink: Shared,
        requests: Callable[[PlatformLink], Requests],
    ) -> None:
        """``requests(link)`` makes what answers this platform's commands."""
        self.cfg = cfg
        self.up = uplink
        self.v2025 = cfg.version == "2025"
        self.log = log.bind(platform=cfg.name, host=cfg.host, port=cfg.port, version=cfg.version)
        self.keys = KeyRing(uplink.outbox, cfg.name, cfg.sm4_key)
        split = uplink.config.split_mode == "split"
        mn = self._remembered("mn", cfg.mn) or cfg.mn
        self.out = Outgoing(cfg, self.keys, mn, uplink.site_now, split, self.log)
        timeouts = self._remembered("timeouts", f"{cfg.timeout_s:g}/{cfg.retries}")
        self.timeout, self.retries = cfg.timeout_s, cfg.retries
        if timeouts:
            over, _, count = timeouts.partition("/")
            self.timeout, self.retries = float(over), int(count)
        realtime = self._remembered("realtime", "1" if cfg.realtime else "0")
        self.realtime_on = cfg.realtime if realtime is None else realtime == "1"
        shared = uplink.config
        self.intervals = Intervals(
            _number(self._remembered("rtd_interval", str(shared.rtd_interval_s))),
            _number(self._remembered("min_interval", str(shared.min_interval_min))),
            on_change=self._interval_set,
            defaults=(shared.rtd_interval_s, shared.min_interval_min),
        )
        self.last_realtime: datetime | None = None
        self.connected = False
        self.sent = 0
        self.acked = 0
        self.reconnects = 0
        self.last_error = ""
        # real-time CPs waiting to go out; the packet (QN) is made on the link's own loop
        self.live: collections.deque[Cp] = collections.deque(maxlen=8)
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._write_lock = asyncio.Lock()
        self._pending: dict[str, asyncio.Future[Packet]] = {}
        self._live_after_id = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.requests = requests(self)

    def _remembered(self, key: str, configured: str) -> str | None:
        """What the platform set for ``key``, unless the configured value changed since."""
        outbox, name = self.up.outbox, self.cfg.name
        if outbox.state(name, f"{key}@config") != configured:
            outbox.set_state(name, key, None)
            outbox.set_state(name, f"{key}@config", configured)
            return None
        return outbox.state(name, key)

    def _interval_set(self, name: str, value: int) -> None:
        """A platform's CN 1062/1064, kept durably before the logger answers "done"."""
        self.up.outbox.set_state(self.cfg.name, name, str(value))

    def audit(self, action: str, **details: Any) -> None:
        self.up.audit_event(f"hj212:{self.cfg.name}", action, details)

    def wake(self) -> None:
        self._wake.set()

    # -- main loop ----------------------------------------------------------

    async def run(self) -> None:
        delay = self.cfg.backoff_min_s
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.cfg.host, self.cfg.port),
                    self.cfg.connect_timeout_s,
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
                delay = min(delay * 2, self.cfg.backoff_max_s)
                continue
            self.reconnects += 1
            self.log.info(
                "hj212_connected", backlog=self.up.outbox.backlog(self.cfg.name), mn=self.out.mn
            )
            try:
                await self._session(reader, writer)
            except LinkBroken as exc:
                self.last_error = str(exc)
                self.keys.link_broken()
                self.log.warning(
                    "hj212_link_broken",
                    reason=str(exc),
                    hint="platform will get the unacknowledged data after reconnect",
                )
            finally:
                await self.close()
            if self.acked:
                delay = self.cfg.backoff_min_s
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.cfg.backoff_max_s)

    async def close(self) -> None:
        self.connected = False
        if self.live:  # real-time values are never resent: stale ones would mislead
            self.log.info(
                "hj212_realtime_dropped",
                packets=len(self.live),
                hint="real-time data is not resent",
            )
            self.live.clear()
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
        self._live_after_id = self.up.outbox.last_id()
        if not self.cfg.resend:
            self._drop_backlog()
        reader_task = self.spawn(self._read_loop(reader))
        try:
            if self.v2025:
                await self._send_identity()
            await self._send_loop()
        finally:
            reader_task.cancel()

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _drop_backlog(self) -> None:
        """``resend = false``: data left unacknowledged by the last session is not sent again."""
        dropped = self.up.outbox.drop_pending(self.cfg.name, PRIORITY_DATA, self._live_after_id)
        if dropped:
            self.log.warning(
                "hj212_backlog_not_resent",
                records=dropped,
                hint="resend = false for this platform: data missed in an outage is not sent"
                " again; the platform may ask for it (CN 2051/2061/2031 with BeginTime/EndTime)",
            )

    def _is_backfill(self, row_id: int, attempts: int) -> bool:
        """RF=1 (HJ 212-2025): resent, or queued before this connection began."""
        return attempts > 0 or row_id <= self._live_after_id

    async def _send_loop(self) -> None:
        outbox = self.up.outbox
        loop = asyncio.get_running_loop()
        beat = self.cfg.heartbeat_s if self.v2025 else 0.0
        next_beat = loop.time() + beat
        while True:
            if self._closed.is_set():
                raise LinkBroken("platform closed the connection")
            self._wake.clear()
            if self.live:
                packet = self.out.packet(CN.REALTIME, self.live.popleft())
                try:
                    await self._deliver(packet)
                    self.last_realtime = self.up.system_now()
                except LinkBroken:
                    self.log.info(
                        "hj212_realtime_dropped", qn=packet.qn, hint="real-time data is not resent"
                    )
                    raise
                except Hj212Error as exc:
                    self.out.too_long(packet, exc)
                next_beat = loop.time() + beat
                continue
            row = outbox.next_pending(self.cfg.name)
            if row is not None:
                rf = self.v2025 and self._is_backfill(row.id, row.attempts)
                outbox.count_attempt(row.id)
                packet = self.out.packet(row.cn, row.cp, rf=rf)
                try:
                    await self._deliver(packet)
                except Hj212Error as exc:
                    self.out.too_long(packet, exc)
                    outbox.drop(row.id)
                else:
                    outbox.mark_acked(row.id, self.up.system_now())
                next_beat = loop.time() + beat
                continue
            if beat and loop.time() >= next_beat:
                await self._deliver(self.out.packet(CN.HEARTBEAT, Cp(), st=CN.ST_SYSTEM))
                next_beat = loop.time() + beat
                continue
            wait = 5.0 if not beat else max(0.0, min(5.0, next_beat - loop.time()))
            waiter = asyncio.ensure_future(self._wake.wait())
            closer = asyncio.ensure_future(self._closed.wait())
            try:
                await asyncio.wait(
                    {waiter, closer}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                waiter.cancel()
                closer.cancel()

    async def _send_identity(self) -> None:
        """CN 1001 at the start of each 2025 session: the platform's MN assignment needs it."""
        identity = self.up.identity
        cp = Cp.build({}, identity.cp_factors())
        if await self._deliver(self.out.packet(CN.IDENTITY, cp, st=CN.ST_SYSTEM), fatal=False):
            self.up.outbox.set_state(self.cfg.name, "identity_acked", cp.text())
            self.log.info("hj212_identity_sent", logger_id=identity.logger_id)

    async def write(self, chunks: list[bytes]) -> None:
        writer = self._writer
        if writer is None or self._closed.is_set():
            raise LinkBroken("not connected")
        async with self._write_lock:
            try:
                for chunk in chunks:
                    writer.write(chunk)
                await asyncio.wait_for(writer.drain(), self.timeout)
            except (OSError, TimeoutError) as exc:
                raise LinkBroken(f"write failed: {exc or type(exc).__name__}") from exc

    async def _deliver(self, packet: Packet, fatal: bool = True) -> bool:
        """Send and, when a reply is wanted, wait for the matching 9013/9014 with retries.

        Without a reply after all tries the link counts as broken (``fatal``)
        or, for what a platform may not implement (1001), it is only logged.
        """
        chunks, key = self.out.encode(packet)
        if not packet.reply_wanted:
            await self.write(chunks)
            self.sent += 1
            self.acked += 1
            return True
        qn = packet.qn or ""
        fut: asyncio.Future[Packet] = asyncio.get_running_loop().create_future()
        self._pending[qn] = fut
        try:
            for attempt in range(self.retries + 1):
                await self.write(chunks)
                self.sent += 1
                closer = asyncio.ensure_future(self._closed.wait())
                try:
                    done, _ = await asyncio.wait(
                        {fut, closer}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    closer.cancel()
                if fut in done and not fut.cancelled():
                    self.acked += 1
                    if self.keys.confirm_if_pending(key):
                        self._key_confirmed("reply to a packet encrypted with it")
                    return True
                if self._closed.is_set():
                    raise LinkBroken("platform closed the connection while we waited for a reply")
                self.log.info(
                    "hj212_no_reply",
                    cn=packet.cn,
                    qn=qn,
                    attempt=attempt + 1,
                    timeout_s=self.timeout,
                )
            if fatal:
                raise LinkBroken(
                    f"no reply to CN {packet.cn} QN {qn} after {self.retries + 1} tries"
                )
            self.log.warning(
                "hj212_no_reply_given_up",
                cn=packet.cn,
                qn=qn,
                hint="the platform may not implement this command; tried again next connection",
            )
            return False
        finally:
            self._pending.pop(qn, None)

    def _key_confirmed(self, how: str) -> None:
        self.log.info("hj212_key_confirmed", how=how)
        self.audit("hj212_key_confirmed", how=how)

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
        keys = self.keys.for_decrypt() if self.v2025 else []
        try:
            packet = decode(raw, sm4_keys=keys, encrypted=self.v2025 and self.keys.enabled)
        except Hj212Error as exc:
            self.log.warning(
                "hj212_bad_packet_from_platform",
                reason=exc.reason,
                field=exc.field,
                offset=exc.offset,
                packet=raw[:120].decode("latin-1"),
                hint="malformed or wrongly (un)encrypted packet; refused with QnRtn when it had a QN",
            )
            if exc.qn:
                await self.requests.refuse(exc.qn, exc.qn_rtn)
            return
        opened_with = keys[packet.key_index] if packet.key_index is not None else None
        if packet.encrypted and self.keys.confirm_if_pending(opened_with):
            self._key_confirmed("packet from the platform opened with it")
        if packet.flag is not None and packet.standard not in (self.cfg.version, None):
            self.log.info(
                "hj212_version_differs",
                got=packet.standard,
                cn=packet.cn,
                hint="the platform speaks another version than 'version' in [[hj212.platforms]]",
            )
        for warning in packet.warnings:
            self.log.warning("hj212_packet_warning", cn=packet.cn, qn=packet.qn, warning=warning)
        if packet.cn in (CN.NOTICE_REPLY, CN.DATA_REPLY):
            fut = self._pending.get(packet.qn or "")
            if fut is not None and not fut.done():
                fut.set_result(packet)
            else:
                self.log.info("hj212_unexpected_ack", cn=packet.cn, qn=packet.qn)
            return
        if packet.cn in (CN.REQUEST_REPLY, CN.RESULT):
            self.log.info("hj212_platform_reply", cn=packet.cn, qn=packet.qn, cp=packet.cp.text())
            return
        await self.requests.receive(packet)
