"""What an HJ 212 platform may ask of the logger, and the answers (CN 1000-3020).

Platform commands are answered with 9011 (QnRtn) then the data and 9012
(ExeRtn), as the standard lays out; what a logger cannot do gets a clear
refusal (docs/HJ212.md lists them), never an exception. What changes state
-- clock, keys, MN, timeouts, intervals, real-time on/off -- is stored
durably where it must outlive a restart and handed to ``audit``.

Who asks is checked first (MN and password), before a split packet is held
for reassembly, so only this platform's own requests may cost memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Protocol

from edged.hj212 import cn as CN
from edged.hj212 import sm4
from edged.hj212.clock import Clock, local_naive
from edged.hj212.codec import (
    EXERTN_BAD_REQUEST,
    EXERTN_FAILED,
    EXERTN_NO_DATA,
    EXERTN_OK,
    QNRTN_CN,
    QNRTN_MN,
    QNRTN_PW,
    QNRTN_READY,
    QNRTN_REFUSED,
    Cp,
    Hj212Error,
    Packet,
    Reassembler,
    format_time,
    free_text,
    parse_time,
)
from edged.hj212.intervals import BOUNDS, Intervals
from edged.hj212.minute_data import minute_history
from edged.hj212.platform_link import LinkBroken, PlatformLink, Shared

__all__ = ["NOT_SUPPORTED", "DataSource", "Intervals", "Logger", "PlatformCommands"]

Factors = Mapping[str, Mapping[str, float | str]]

# What a logger cannot do, refused with QnRtn=2 and this reason (docs/HJ212.md).
NOT_SUPPORTED = {
    CN.SAMPLE_RETAIN: "immediate sample retention (下发即时留样任务) needs a sampler this logger has not",
    CN.STANDARD_CHECK: "standard-sample check (启动标样核查) runs on an analyser, not on the logger",
    CN.SET_PASSWORD: "the access password is set in [[hj212.platforms]] pw, not remotely",
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


class Logger(Shared, Protocol):
    """What commands read and change on the logger's side: the uplink (:class:`Uplink`)."""

    tz: tzinfo | None
    clock: Clock
    source: DataSource | None

    def build_cp(self, params: Mapping[str, object], factors: Factors | None = None) -> Cp: ...

    def info(self, pol_id: str, info_id: str) -> dict[str, str]: ...


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


class PlatformCommands:
    """Checks who asks, reassembles split requests, runs each command and replies."""

    def __init__(self, link: PlatformLink, logger: Logger) -> None:
        self.link = link
        self.up = logger
        self.cfg = link.cfg
        self.log = link.log
        self._reassembler = Reassembler(
            max_groups=logger.config.split_max_groups, max_bytes=logger.config.split_max_bytes
        )

    async def receive(self, packet: Packet) -> None:
        """A request from the platform: checked, reassembled, then run on its own task."""
        # Who is asking is checked before a split packet is held for reassembly:
        # only this platform's own requests may cost memory.
        qn = packet.qn
        if packet.cn != CN.SET_MN and packet.mn != self.link.out.mn:
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
            self.link.spawn(self._command(whole))

    async def refuse(self, qn: str, code: int) -> None:
        """A request that could not be read: QnRtn ``code`` (9011) when it had a QN."""
        await self._reply_qnrtn(qn, code)

    # -- replies 9011, 9012, 9013 ---------------------------------------------

    def _reply_flag(self) -> int:
        return self.link.out.version_bits

    async def _reply_qnrtn(self, qn: str, code: int) -> None:
        cp = Cp({"QnRtn": str(code)})
        await self._send_reply(
            self.link.out.packet(
                CN.REQUEST_REPLY, cp, qn=qn, flag=self._reply_flag(), st=CN.ST_SYSTEM
            )
        )

    async def _reply_exertn(self, qn: str, code: int) -> None:
        cp = Cp({"ExeRtn": str(code)})
        await self._send_reply(
            self.link.out.packet(CN.RESULT, cp, qn=qn, flag=self._reply_flag(), st=CN.ST_SYSTEM)
        )

    async def _reply_notice(self, qn: str) -> None:
        await self._send_reply(
            self.link.out.packet(
                CN.NOTICE_REPLY, Cp(), qn=qn, flag=self._reply_flag(), st=CN.ST_SYSTEM
            )
        )

    async def _send_reply(self, packet: Packet) -> None:
        with contextlib.suppress(LinkBroken):
            await self.link.write(self.link.out.encode(packet)[0])

    async def _command(self, req: Packet) -> None:
        qn = req.qn or self.link.out.next_qn()
        self.log.info("hj212_command", cn=req.cn, qn=qn, cp=req.cp.text()[:200])
        handler = {
            CN.SET_TIMEOUTS: self._set_timeouts,
            CN.SET_MN: self._assign_mn,
            CN.GET_TIME: self._get_time,
            CN.SET_TIME: self._set_time,
            CN.NEW_KEY: self._new_key,
            CN.GET_RTD_INTERVAL: self._get_interval,
            CN.SET_RTD_INTERVAL: self._set_interval,
            CN.GET_MIN_INTERVAL: self._get_interval,
            CN.SET_MIN_INTERVAL: self._set_interval,
            CN.REALTIME: self._start_realtime,
            CN.REALTIME_STOP: self._stop_realtime,
            CN.RAW: self._history,
            CN.MINUTE: self._history,
            CN.HOUR: self._history,
            CN.DAY: self._history,
            CN.CHECK: self._history,
            CN.FURNACE: self._history,
            CN.INFO: self._info,
        }.get(req.cn)
        if req.cn in (CN.SET_MN, CN.NEW_KEY) and not self.link.v2025:
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
        old = (self.link.timeout, self.link.retries)
        self.link.timeout, self.link.retries = float(over), int(count)
        self.up.outbox.set_state(self.cfg.name, "timeouts", f"{int(over)}/{int(count)}")
        self.log.info("hj212_timeouts_set", over_time_s=int(over), re_count=int(count))
        self.link.audit(
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
        old, self.link.out.mn = self.link.out.mn, new
        self.up.outbox.set_state(self.cfg.name, "mn", new)
        self.log.info("hj212_mn_assigned", old=old, new=new)
        self.link.audit("hj212_mn_assigned", old=old, new=new, logger_id=logger_id)
        await self._reply_qnrtn(qn, QNRTN_READY)
        await self._reply_exertn(qn, EXERTN_OK)

    async def _get_time(self, req: Packet, qn: str) -> None:
        await self._reply_qnrtn(qn, QNRTN_READY)
        params = {}
        if "PolId" in req.cp.params:
            params["PolId"] = req.cp.params["PolId"]
        params["SystemTime"] = format_time(self.up.site_now())
        await self._send_reply(
            self.link.out.packet(CN.GET_TIME, Cp(params), qn=qn, flag=self._reply_flag())
        )
        await self._reply_exertn(qn, EXERTN_OK)

    async def _set_time(self, req: Packet, qn: str) -> None:
        text = req.cp.params.get("SystemTime", "")
        if not self.up.config.accept_time_set:
            self.log.warning("hj212_time_set_refused", hint="accept_time_set = false in [hj212]")
            self.link.audit(
                "hj212_time_set_refused", requested=text, reason="accept_time_set = false"
            )
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
            self.link.audit("hj212_time_set_refused", reason="beyond time_set_max_h", **details)
            await self._reply_qnrtn(qn, QNRTN_REFUSED)
            return
        await self._reply_qnrtn(qn, QNRTN_READY)
        before = self.up.site_now()
        self.up.clock.set(when)
        self.log.info("hj212_time_set", old=format_time(before), new=text)
        self.link.audit("hj212_time_set", old=format_time(before), **details)
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
        self.link.keys.offer(key, created)
        self.log.info(
            "hj212_key_offered", sk_create_time=created, hint="old key kept until confirmed"
        )
        self.link.audit("hj212_key_offered", sk_create_time=created)
        await self._reply_exertn(qn, EXERTN_OK)

    async def _get_interval(self, req: Packet, qn: str) -> None:
        """CN 1061/1063: this platform's own real-time / minute interval."""
        await self._reply_qnrtn(qn, QNRTN_READY)
        key, value = (
            ("RtdInterval", self.link.intervals.rtd_interval)
            if req.cn == CN.GET_RTD_INTERVAL
            else ("MinInterval", self.link.intervals.min_interval)
        )
        cp = Cp({key: str(value)})
        await self._send_reply(self.link.out.packet(req.cn, cp, qn=qn, flag=self._reply_flag()))
        await self._reply_exertn(qn, EXERTN_OK)

    async def _set_interval(self, req: Packet, qn: str) -> None:
        """CN 1062/1064: this platform's cadence, stored and in effect from the next round
        (other platforms keep theirs)."""
        key, name = (
            ("RtdInterval", "rtd_interval")
            if req.cn == CN.SET_RTD_INTERVAL
            else ("MinInterval", "min_interval")
        )
        low, high = BOUNDS[name]
        await self._reply_qnrtn(qn, QNRTN_READY)
        text = req.cp.params.get(key, "")
        if not text.isdigit() or not low <= int(text) <= high:
            self.log.warning("hj212_interval_bad", key=key, value=text, allowed=f"{low}..{high}")
            await self._reply_exertn(qn, EXERTN_BAD_REQUEST)
            return
        old = getattr(self.link.intervals, name)
        self.link.intervals.set(name, int(text))
        self.log.info("hj212_interval_set", key=key, value=int(text))
        self.link.audit("hj212_interval_set", key=key, old=old, new=int(text))
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
        if on != self.link.realtime_on:
            self.link.audit("hj212_realtime_" + ("started" if on else "stopped"))
        self.link.realtime_on = on
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
            None, self._records, source, req.cn, local_naive(begin), local_naive(end)
        )
        for when, factors in sorted(records, key=lambda r: r[0]):
            cp = self.up.build_cp({"DataTime": when}, factors)
            packet = self.link.out.packet(req.cn, cp, qn=qn, flag=self._reply_flag())
            try:
                chunks = self.link.out.encode(packet)[0]
            except Hj212Error as exc:
                self.link.out.too_long(packet, exc)
                continue
            await self.link.write(chunks)
        self.log.info(
            "hj212_history_sent",
            cn=req.cn,
            begin=format_time(begin),
            end=format_time(end),
            records=len(records),
        )
        await self._reply_exertn(qn, EXERTN_OK if records else EXERTN_NO_DATA)

    def _records(
        self, source: DataSource, cn: str, begin: datetime, end: datetime
    ) -> list[tuple[datetime, Factors]]:
        """History from the data source; minute data over this platform's minute interval,
        as the feed sent it (a source without 1-minute records answers as it keeps them)."""
        if cn == CN.MINUTE and hasattr(source, "aggregates") and hasattr(source, "closed_until"):
            minutes = self.link.intervals.min_interval
            return minute_history(source, begin, end, minutes, self.up.tz)
        return source.records(cn, begin, end)

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
        await self.link.write(
            self.link.out.encode(self.link.out.packet(CN.INFO, cp, qn=qn, flag=self._reply_flag()))[
                0
            ]
        )
        await self._reply_exertn(qn, EXERTN_OK)
