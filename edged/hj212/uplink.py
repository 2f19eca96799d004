"""HJ 212 uplink to several platforms at once (一点多传), each in its own version.

Each platform gets its own asyncio task, TCP connection, MN, password and
version of the standard -- HJ 212-2017, or HJ 212-2025 with SM4, heartbeat
(9015), hardware identity (1001), MN assignment (1002), key update (1014) and
``RF=1`` on backfilled data -- and reconnects on its own with exponential
backoff, so a platform that is down, silent, refusing or misbehaving never
delays or harms another. Records that must not be lost (minute/hour/day
data, start-up time, alarms) go through the :class:`Outbox` first and are
marked acknowledged only when the platform's 9014 arrives; after an outage
the rest is resent oldest first (断点续传). Real-time data is sent only while
the link is up: stale real-time values would mislead.

Platform commands are answered with 9011 (QnRtn) then the data and 9012
(ExeRtn), as the standard lays out; what a logger cannot do gets a clear
refusal (docs/HJ212.md lists them), never an exception. What changes state
-- clock, keys, MN, timeouts, intervals, real-time on/off -- is stored
durably where it must outlive a restart and handed to ``audit``.

Times: every HJ 212 time (QN, DataTime, BeginTime/EndTime, SystemTime) is
the site's wall time in ``tz``, whatever the board's system zone. Times the
daemon hands in may be naive (the board's local time, as ``datetime.now()``)
or aware.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Protocol

from edged.hj212 import sm4
from edged.hj212.clock import Clock, OffsetClock, local_naive
from edged.hj212.codec import (
    EXERTN_BAD_REQUEST,
    EXERTN_FAILED,
    EXERTN_NO_DATA,
    EXERTN_OK,
    FLAG_REPLY,
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
    free_text,
    make_qn,
    parse_time,
    to_site,
    version_flag,
)
from edged.hj212.config import Hj212Config, PlatformConfig
from edged.hj212.framing import PacketFramer
from edged.hj212.hardware import HardwareIdentity, read_identity
from edged.hj212.keys import KeyRing
from edged.hj212.precision import resolve
from edged.hj212.store import PRIORITY_ALARM, PRIORITY_DATA, Outbox
from edged.logs import get_logger

log = get_logger("hj212")

CN_REALTIME = "2011"
CN_REALTIME_STOP = "2012"
CN_RAW = "2013"
CN_MINUTE = "2051"
CN_HOUR = "2061"
CN_DAY = "2031"
CN_CHECK = "2062"
CN_FURNACE = "2111"
CN_RESTART = "2081"
CN_HISTORY = (CN_MINUTE, CN_HOUR, CN_DAY)
CN_IDENTITY = "1001"
CN_HEARTBEAT = "9015"
ST_SYSTEM = "91"  # system interaction (系统交互): 9011..9015 and the 1001 identity upload

Factors = Mapping[str, Mapping[str, float | str]]
Audit = Callable[[str, str, dict[str, Any]], None]

# What a logger cannot do, refused with QnRtn=2 and this reason (docs/HJ212.md).
NOT_SUPPORTED = {
    "3022": "immediate sample retention (下发即时留样任务) needs a sampler this logger has not",
    "3024": "standard-sample check (启动标样核查) runs on an analyser, not on the logger",
    "1072": "the access password is set in [[hj212.platforms]] pw, not remotely",
}


class DataSource(Protocol):
    """Where history answers come from (the data logger implements it).

    Times are the board's local wall time (naive), as the data logger keeps
    them. CNs other than 2051/2061/2031 (2011 history, 2013 raw data, 2062
    standard checks, 2111 furnace temperature) may return [] for "no data".
    """

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
    version: str = "2017"
    mn: str = ""
    encrypted: bool = False
    realtime: bool = True


def _sk_bytes(text: str) -> bytes | None:
    """A key as platforms send it in NewSK: 32 hex digits, or 16 plain characters."""
    value = text.strip()
    try:
        return sm4.parse_key(value)
    except sm4.Sm4Error:
        pass
    if len(value) == sm4.KEY_BYTES and value.isascii() and value.isprintable():
        return value.encode("ascii")
    return None


class PlatformLink:
    """One platform: connect, send, wait for replies, answer commands, reconnect."""

    def __init__(self, cfg: PlatformConfig, uplink: Uplink) -> None:
        self.cfg = cfg
        self.up = uplink
        self.v2025 = cfg.version == "2025"
        self.version_bits = version_flag(cfg.version)
        self.mn = self._remembered("mn", cfg.mn) or cfg.mn
        self.keys = KeyRing(uplink.outbox, cfg.name, cfg.sm4_key)
        timeouts = self._remembered("timeouts", f"{cfg.timeout:g}/{cfg.retries}")
        self.timeout, self.retries = cfg.timeout, cfg.retries
        if timeouts:
            over, _, count = timeouts.partition("/")
            self.timeout, self.retries = float(over), int(count)
        realtime = self._remembered("realtime", "1" if cfg.realtime else "0")
        self.realtime_on = cfg.realtime if realtime is None else realtime == "1"
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
        self._last_qn: datetime | None = None
        self._live_after_id = 0
        self._reassembler = Reassembler(
            max_groups=uplink.config.split_max_groups, max_bytes=uplink.config.split_max_bytes
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self.log = log.bind(platform=cfg.name, host=cfg.host, port=cfg.port, version=cfg.version)

    def _remembered(self, key: str, configured: str) -> str | None:
        """What the platform set for ``key``, unless the configured value changed since."""
        outbox, name = self.up.outbox, self.cfg.name
        if outbox.state(name, f"{key}@config") != configured:
            outbox.set_state(name, key, None)
            outbox.set_state(name, f"{key}@config", configured)
            return None
        return outbox.state(name, key)

    def _audit(self, action: str, **details: Any) -> None:
        self.up.audit_event(f"hj212:{self.cfg.name}", action, details)

    # -- packets ----------------------------------------------------------

    def next_qn(self) -> str:
        """Unique per link even if the clock stands still or is set backwards."""
        now = self.up.site_now()
        if self._last_qn is not None and now <= self._last_qn:
            now = self._last_qn + timedelta(milliseconds=1)
        self._last_qn = now
        return make_qn(now)

    def packet(
        self,
        cn: str,
        cp: Cp,
        qn: str | None = None,
        flag: int | None = None,
        st: str | None = None,
        rf: bool = False,
    ) -> Packet:
        """A packet from this logger; by default asking for a reply when configured to."""
        if flag is None:
            flag = self.version_bits | (FLAG_REPLY if self.cfg.reply_wanted else 0)
        return Packet(
            cn=cn,
            mn=self.mn,
            pw=self.cfg.pw,
            st=st or self.cfg.st,
            qn=qn or self.next_qn(),
            flag=flag,
            cp=cp,
            rf=rf,
        )

    def _encode(self, packet: Packet) -> tuple[list[bytes], bytes | None]:
        key = self.keys.for_send() if self.v2025 and sm4.applies(packet.cn) else None
        return encode_all(packet, sm4_key=key), key

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
            self.log.info(
                "hj212_connected", backlog=self.up.outbox.backlog(self.cfg.name), mn=self.mn
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
        self._live_after_id = self.up.outbox.last_id()
        self.connected = True
        reader_task = self._spawn(self._read_loop(reader))
        try:
            if self.v2025:
                await self._send_identity()
            await self._send_loop()
        finally:
            reader_task.cancel()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

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
                packet = self.live.popleft()
                try:
                    await self._deliver(packet)
                except LinkBroken:
                    self.log.info(
                        "hj212_realtime_dropped", qn=packet.qn, hint="real-time data is not resent"
                    )
                    raise
                next_beat = loop.time() + beat
                continue
            row = outbox.next_pending(self.cfg.name)
            if row is not None:
                rf = self.v2025 and self._is_backfill(row.id, row.attempts)
                outbox.count_attempt(row.id)
                await self._deliver(self.packet(row.cn, row.cp, rf=rf))
                outbox.mark_acked(row.id, self.up.system_now())
                next_beat = loop.time() + beat
                continue
            if beat and loop.time() >= next_beat:
                await self._deliver(self.packet(CN_HEARTBEAT, Cp(), st=ST_SYSTEM))
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
        if await self._deliver(self.packet(CN_IDENTITY, cp, st=ST_SYSTEM), fatal=False):
            self.up.outbox.set_state(self.cfg.name, "identity_acked", cp.text())
            self.log.info("hj212_identity_sent", logger_id=identity.logger_id)

    async def _write(self, chunks: list[bytes]) -> None:
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
        chunks, key = self._encode(packet)
        if not packet.reply_wanted:
            await self._write(chunks)
            self.sent += 1
            self.acked += 1
            return True
        qn = packet.qn or ""
        fut: asyncio.Future[Packet] = asyncio.get_running_loop().create_future()
        self._pending[qn] = fut
        try:
            for attempt in range(self.retries + 1):
                await self._write(chunks)
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
        self._audit("hj212_key_confirmed", how=how)

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
                await self._reply_qnrtn(exc.qn, exc.qn_rtn)
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
        if packet.cn in ("9013", "9014"):
            fut = self._pending.get(packet.qn or "")
            if fut is not None and not fut.done():
                fut.set_result(packet)
            else:
                self.log.info("hj212_unexpected_ack", cn=packet.cn, qn=packet.qn)
            return
        if packet.cn in ("9011", "9012"):
            self.log.info("hj212_platform_reply", cn=packet.cn, qn=packet.qn, cp=packet.cp.text())
            return
        # Who is asking is checked before a split packet is held for reassembly:
        # only this platform's own requests may cost memory.
        qn = packet.qn
        if packet.cn != "1002" and packet.mn != self.mn:
            self.log.warning(
                "hj212_command_wrong_mn",
                got=packet.mn,
                cn=packet.cn,
                hint="platform MN differs from mn in config (or the MN it assigned)",
            )
            if qn:
                await self._reply_qnrtn(qn, QNRTN_MN)
            return
        if packet.pw != self.cfg.pw:
            self.log.warning(
                "hj212_command_wrong_pw",
                cn=packet.cn,
                hint="platform password differs from pw in config",
            )
            if qn:
                await self._reply_qnrtn(qn, QNRTN_PW)
            return
        loop = asyncio.get_running_loop()
        try:
            whole = self._reassembler.feed(packet, loop.time())
        except Hj212Error as exc:
            self.log.warning(
                "hj212_split_packet_bad",
                reason=exc.reason,
                qn=packet.qn,
                hint="split packet dropped; the platform resends it when it gets no reply",
            )
            return
        for _mn, gqn, cn, got in self._reassembler.expire(loop.time()):
            self.log.warning("hj212_split_packet_incomplete", qn=gqn, cn=cn, received=got)
        if whole is not None:
            self._spawn(self._command(whole))

    # -- commands ---------------------------------------------------------------

    def _reply_flag(self) -> int:
        return self.version_bits

    async def _reply_qnrtn(self, qn: str, code: int) -> None:
        cp = Cp({"QnRtn": str(code)})
        await self._send_reply(
            self.packet("9011", cp, qn=qn, flag=self._reply_flag(), st=ST_SYSTEM)
        )

    async def _reply_exertn(self, qn: str, code: int) -> None:
        cp = Cp({"ExeRtn": str(code)})
        await self._send_reply(
            self.packet("9012", cp, qn=qn, flag=self._reply_flag(), st=ST_SYSTEM)
        )

    async def _reply_notice(self, qn: str) -> None:
        await self._send_reply(
            self.packet("9013", Cp(), qn=qn, flag=self._reply_flag(), st=ST_SYSTEM)
        )

    async def _send_reply(self, packet: Packet) -> None:
        with contextlib.suppress(LinkBroken):
            await self._write(self._encode(packet)[0])

    async def _command(self, req: Packet) -> None:
        qn = req.qn or self.next_qn()
        self.log.info("hj212_command", cn=req.cn, qn=qn, cp=req.cp.text()[:200])
        handler = {
            "1000": self._set_timeouts,
            "1002": self._assign_mn,
            "1011": self._get_time,
            "1012": self._set_time,
            "1014": self._new_key,
            "1061": self._get_interval,
            "1062": self._set_interval,
            "1063": self._get_interval,
            "1064": self._set_interval,
            CN_REALTIME: self._start_realtime,
            CN_REALTIME_STOP: self._stop_realtime,
            CN_RAW: self._history,
            CN_MINUTE: self._history,
            CN_HOUR: self._history,
            CN_DAY: self._history,
            CN_CHECK: self._history,
            CN_FURNACE: self._history,
            "3020": self._info,
        }.get(req.cn)
        if req.cn in ("1002", "1014") and not self.v2025:
            handler = None
        if req.cn in NOT_SUPPORTED:
            self.log.warning(
                "hj212_command_not_supported",
                cn=req.cn,
                reason=NOT_SUPPORTED[req.cn],
                hint="refused with QnRtn=2 (request refused); see docs/HJ212.md",
            )
            await self._reply_qnrtn(qn, QNRTN_REFUSED)
            return
        if handler is None:
            self.log.warning(
                "hj212_command_unknown",
                cn=req.cn,
                hint=f"command not in HJ 212-{self.cfg.version} for a logger; refused with QnRtn=8",
            )
            await self._reply_qnrtn(qn, QNRTN_CN)
            return
        try:
            await handler(req, qn)
        except Exception as exc:  # a command must never take the link down
            self.log.error("hj212_command_failed", cn=req.cn, qn=qn, error=repr(exc))
            await self._reply_exertn(qn, EXERTN_FAILED)

    async def _set_timeouts(self, req: Packet, qn: str) -> None:
        """CN 1000: OverTime (s) and ReCount the logger waits and resends with."""
        await self._reply_qnrtn(qn, QNRTN_READY)
        over, count = req.cp.params.get("OverTime", ""), req.cp.params.get("ReCount", "")
        if not (over.isdigit() and count.isdigit() and 1 <= int(over) <= 600 and int(count) <= 20):
            self.log.warning(
                "hj212_timeouts_bad", over_time=over, re_count=count, allowed="1..600 s, 0..20"
            )
            await self._reply_exertn(qn, EXERTN_BAD_REQUEST)
            return
        old = (self.timeout, self.retries)
        self.timeout, self.retries = float(over), int(count)
        self.up.outbox.set_state(self.cfg.name, "timeouts", f"{int(over)}/{int(count)}")
        self.log.info("hj212_timeouts_set", over_time_s=int(over), re_count=int(count))
        self._audit(
            "hj212_timeouts_set",
            old={"timeout_s": old[0], "retries": old[1]},
            new={"timeout_s": int(over), "retries": int(count)},
        )
        await self._reply_exertn(qn, EXERTN_OK)

    async def _assign_mn(self, req: Packet, qn: str) -> None:
        """CN 1002 (2025): the platform gives this logger its MN, addressed by logger id."""
        logger_id = req.cp.factors.get("i23005", {}).get("Info")
        if logger_id is not None and logger_id != self.up.identity.logger_id:
            self.log.warning(
                "hj212_mn_for_another_logger",
                got=logger_id,
                ours=self.up.identity.logger_id,
                hint="the platform assigned an MN to another logger id; check logger_id in [hj212]",
            )
            await self._reply_qnrtn(qn, QNRTN_REFUSED)
            return
        new = req.mn
        if not new or len(new) > 24 or not new.replace("-", "").replace("_", "").isalnum():
            await self._reply_qnrtn(qn, QNRTN_MN)
            return
        old, self.mn = self.mn, new
        self.up.outbox.set_state(self.cfg.name, "mn", new)
        self.log.info("hj212_mn_assigned", old=old, new=new)
        self._audit("hj212_mn_assigned", old=old, new=new, logger_id=logger_id)
        await self._reply_qnrtn(qn, QNRTN_READY)
        await self._reply_exertn(qn, EXERTN_OK)

    async def _get_time(self, req: Packet, qn: str) -> None:
        await self._reply_qnrtn(qn, QNRTN_READY)
        params = {}
        if "PolId" in req.cp.params:
            params["PolId"] = req.cp.params["PolId"]
        params["SystemTime"] = format_time(self.up.site_now())
        await self._send_reply(self.packet("1011", Cp(params), qn=qn, flag=self._reply_flag()))
        await self._reply_exertn(qn, EXERTN_OK)

    async def _set_time(self, req: Packet, qn: str) -> None:
        text = req.cp.params.get("SystemTime", "")
        if not self.up.config.accept_time_set:
            self.log.warning("hj212_time_set_refused", hint="accept_time_set = false in [hj212]")
            self._audit("hj212_time_set_refused", requested=text, reason="accept_time_set = false")
            await self._reply_qnrtn(qn, QNRTN_REFUSED)
            return
        try:
            when = parse_time(text, "SystemTime", self.up.tz)
        except Hj212Error as exc:
            self.log.warning("hj212_time_set_bad", reason=exc.reason)
            await self._reply_qnrtn(qn, QNRTN_READY)
            await self._reply_exertn(qn, EXERTN_BAD_REQUEST)
            return
        system = self.up.system_now()
        asked = when if when.tzinfo is not None else when.astimezone()
        shift = (asked - system).total_seconds()
        bound = self.up.config.time_set_max_h * 3600
        details = {
            "requested": text,
            "system_time": system.isoformat(timespec="seconds"),
            "shift_s": round(shift, 3),
            "max_s": bound,
        }
        if abs(shift) > bound:
            self.log.warning(
                "hj212_time_set_refused",
                requested=text,
                shift_h=round(shift / 3600, 2),
                hint="beyond time_set_max_h in [hj212] from the system time; check NTP and the"
                " platform's clock",
            )
            self._audit("hj212_time_set_refused", reason="beyond time_set_max_h", **details)
            await self._reply_qnrtn(qn, QNRTN_REFUSED)
            return
        await self._reply_qnrtn(qn, QNRTN_READY)
        before = self.up.site_now()
        self.up.clock.set(when)
        self.log.info("hj212_time_set", old=format_time(before), new=text)
        self._audit("hj212_time_set", old=format_time(before), **details)
        await self._reply_exertn(qn, EXERTN_OK)

    async def _new_key(self, req: Packet, qn: str) -> None:
        """CN 1014 (2025): a new SM4 key, stored durably before the logger says done."""
        await self._reply_qnrtn(qn, QNRTN_READY)
        key = _sk_bytes(req.cp.params.get("NewSK", ""))
        created = req.cp.params.get("SKCreateTime", "")
        if key is None:
            self.log.warning(
                "hj212_key_bad", hint="NewSK must be 32 hex digits or 16 characters; key unchanged"
            )
            await self._reply_exertn(qn, EXERTN_BAD_REQUEST)
            return
        self.keys.offer(key, created)
        self.log.info(
            "hj212_key_offered", sk_create_time=created, hint="old key kept until confirmed"
        )
        self._audit("hj212_key_offered", sk_create_time=created)
        await self._reply_exertn(qn, EXERTN_OK)

    async def _get_interval(self, req: Packet, qn: str) -> None:
        await self._reply_qnrtn(qn, QNRTN_READY)
        key, value = (
            ("RtdInterval", self.up.intervals.rtd_interval)
            if req.cn == "1061"
            else ("MinInterval", self.up.intervals.min_interval)
        )
        cp = Cp({key: str(value)})
        await self._send_reply(self.packet(req.cn, cp, qn=qn, flag=self._reply_flag()))
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
        old = getattr(self.up.intervals, name)
        self.up.intervals.set(name, int(text))
        self.log.info("hj212_interval_set", key=key, value=int(text))
        self._audit("hj212_interval_set", key=key, old=old, new=int(text))
        await self._reply_exertn(qn, EXERTN_OK)

    async def _start_realtime(self, req: Packet, qn: str) -> None:
        """CN 2011 from a platform: send it real-time data (with Begin/EndTime: history)."""
        if "BeginTime" in req.cp.params and "EndTime" in req.cp.params:
            await self._history(req, qn)
            return
        await self._reply_qnrtn(qn, QNRTN_READY)
        self._set_realtime(True)
        await self._reply_exertn(qn, EXERTN_OK)

    async def _stop_realtime(self, req: Packet, qn: str) -> None:
        """CN 2012: stop real-time data; the standard answers it with a notice (9013)."""
        self._set_realtime(False)
        await self._reply_notice(qn)

    def _set_realtime(self, on: bool) -> None:
        if on != self.realtime_on:
            self._audit("hj212_realtime_" + ("started" if on else "stopped"))
        self.realtime_on = on
        self.up.outbox.set_state(self.cfg.name, "realtime", "1" if on else "0")
        self.log.info("hj212_realtime", on=on)

    async def _history(self, req: Packet, qn: str) -> None:
        source = self.up.source
        if source is None:
            self.log.warning("hj212_history_no_source", cn=req.cn, hint="no data logger running")
            await self._reply_qnrtn(qn, QNRTN_REFUSED)
            return
        tz = self.up.tz
        try:
            begin = parse_time(req.cp.params.get("BeginTime", ""), "BeginTime", tz)
            end = parse_time(req.cp.params.get("EndTime", ""), "EndTime", tz)
        except Hj212Error as exc:
            self.log.warning("hj212_history_bad_request", reason=exc.reason)
            await self._reply_qnrtn(qn, QNRTN_READY)
            await self._reply_exertn(qn, EXERTN_BAD_REQUEST)
            return
        await self._reply_qnrtn(qn, QNRTN_READY)
        records = await asyncio.get_running_loop().run_in_executor(
            None, source.records, req.cn, local_naive(begin), local_naive(end)
        )
        for when, factors in sorted(records, key=lambda r: r[0]):
            cp = self.up.build_cp({"DataTime": when}, factors)
            packet = self.packet(req.cn, cp, qn=qn, flag=self._reply_flag())
            await self._write(self._encode(packet)[0])
        self.log.info(
            "hj212_history_sent",
            cn=req.cn,
            begin=format_time(begin),
            end=format_time(end),
            records=len(records),
        )
        await self._reply_exertn(qn, EXERTN_OK if records else EXERTN_NO_DATA)

    async def _info(self, req: Packet, qn: str) -> None:
        """CN 3020: the logger's information the platform asks for, by InfoId."""
        await self._reply_qnrtn(qn, QNRTN_READY)
        pol_id = req.cp.params.get("PolId", "")
        info_id = req.cp.params.get("InfoId", "")
        answers = self.up.info(pol_id, info_id)
        if not answers:
            self.log.info("hj212_info_none", pol_id=pol_id, info_id=info_id)
            await self._reply_exertn(qn, EXERTN_NO_DATA)
            return
        params: dict[str, object] = {"DataTime": self.up.site_now()}
        if pol_id:
            params["PolId"] = pol_id
        factors = {
            code: {"Info": value if value.isalnum() else free_text(value)}
            for code, value in answers.items()
        }
        cp = Cp.build(params, factors)
        await self._write(self._encode(self.packet("3020", cp, qn=qn, flag=self._reply_flag()))[0])
        await self._reply_exertn(qn, EXERTN_OK)


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
        intervals: Intervals | None = None,
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
        self.intervals = intervals or Intervals(config.rtd_interval, config.min_interval)
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
        self.links = [PlatformLink(p, self) for p in config.platforms if p.enabled]
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
        cp = self.build_cp({"DataTime": data_time}, factors)
        self.outbox.add(
            self._resend_names(),
            cn,
            self.site_naive(data_time),
            cp,
            PRIORITY_DATA,
            now=self.system_now(),
        )
        self._wake_all()

    def send_realtime(self, data_time: datetime, factors: Factors) -> None:
        """Real-time data (2011) to every platform whose link is up; never resent."""
        cp = self.build_cp({"DataTime": data_time}, factors)
        for link in self.links:
            if link.realtime_on and link.connected:
                link.live.append(link.packet(CN_REALTIME, cp))
        self._wake_all()

    def send_now(self, cn: str, cp: Cp, data_time: datetime | None = None) -> None:
        """Any packet ahead of the backlog (alarms, events); kept until acknowledged."""
        when = data_time or cp.data_time or self.clock.now()
        self.outbox.add(
            self._resend_names(),
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
                link.cfg.version,
                link.mn,
                link.keys.enabled,
                link.realtime_on,
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
                await link._close()
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
