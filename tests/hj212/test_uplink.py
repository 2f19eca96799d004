"""Uplink against a real asyncio TCP platform: ack, silent, refuse, disconnect, outage."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

from structlog.testing import capture_logs

from edged.hj212.clock import ManualClock
from edged.hj212.codec import Cp
from edged.hj212.config import Hj212Config, PlatformConfig
from edged.hj212.platform_sim import PlatformSimulator
from edged.hj212.uplink import Uplink

MN = "66330300010100001001"
T0 = datetime(2024, 5, 1, 10, 0, 0)


def pcfg(name: str, port: int, **kw: object) -> PlatformConfig:
    opts: dict[str, object] = {
        "timeout_s": 0.3,
        "retries": 1,
        "connect_timeout_s": 1.0,
        "backoff_min_s": 0.05,
        "backoff_max_s": 0.2,
    }
    opts.update(kw)
    return PlatformConfig(name=name, host="127.0.0.1", port=port, mn=MN, **opts)  # type: ignore[arg-type]


def minute(value: float) -> dict[str, dict[str, float | str]]:
    return {"a34013": {"Avg": value, "Min": value - 1, "Max": value + 1, "Flag": "N"}}


class History:
    def __init__(self) -> None:
        self.asked: list[tuple[str, datetime, datetime]] = []

    def records(self, cn: str, begin: datetime, end: datetime):
        self.asked.append((cn, begin, end))
        return [(begin + timedelta(minutes=i), minute(float(i))) for i in (2, 0, 1)]


def run(
    tmp_path: Path,
    platforms: list[PlatformSimulator],
    body: Callable[[Uplink, ManualClock], Awaitable[None]],
    cfgs: Callable[[list[PlatformSimulator]], list[PlatformConfig]] | None = None,
    timeout: float = 20,
    options: dict[str, object] | None = None,
    **uplink_kw: object,
) -> None:
    """Run ``body`` against an uplink to ``platforms``; ``options`` are more [hj212] keys."""

    async def main() -> None:
        for p in platforms:
            await p.start()
        configs = (
            cfgs(platforms) if cfgs else [pcfg(f"p{i}", p.port) for i, p in enumerate(platforms)]
        )
        clock = ManualClock(T0)
        uplink_kw.setdefault("system_clock", lambda: T0.astimezone())
        up = Uplink(
            Hj212Config(platforms=configs, **options or {}),  # type: ignore[arg-type]
            tmp_path / "outbox.sqlite",
            clock=clock,
            **uplink_kw,  # type: ignore[arg-type]
        )
        task = asyncio.create_task(up.serve())
        try:
            await asyncio.wait_for(body(up, clock), timeout)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            for p in platforms:
                await p.stop()
            up.outbox.close()

    asyncio.run(main())


def test_data_realtime_startup_and_alarm_arrive_correctly(tmp_path: Path) -> None:
    plat = PlatformSimulator()

    async def body(up: Uplink, clock: ManualClock) -> None:
        await plat.wait_for(lambda: up.links[0].connected)
        up.send_startup(T0 - timedelta(minutes=3))
        up.publish("2051", T0, minute(12.5))
        up.send_realtime(T0, {"a34013": {"Rtd": 12.25, "Flag": "N"}})
        up.send_alarm(T0, {"a34013": {"Rtd": 99.5, "Flag": "T"}})
        await plat.wait_for(lambda: len(plat.received) >= 4)
        await plat.wait_for(lambda: up.outbox.backlog("p0") == 0)
        cns = {p.cn for p in plat.received}
        assert cns == {"2081", "2051", "2011", "2072"}
        (m,) = plat.data("2051")
        assert m.mn == MN and m.pw == "123456" and m.st == "31" and m.flag == 5
        assert m.cp.data_time == T0
        assert m.cp.factors["a34013"] == {"Avg": "12.5", "Min": "11.5", "Max": "13.5", "Flag": "N"}
        (r,) = plat.data("2081")
        assert r.cp.params["RestartTime"] == "20240501095700"
        (a,) = plat.data("2072")
        assert a.cp.factors["a34013"]["Flag"] == "T"
        assert len({p.qn for p in plat.received}) == len(plat.received)  # QN unique per packet
        status = up.status()[0]
        assert status.connected and status.backlog == 0 and status.acked >= 4

    run(tmp_path, [plat], body)


def test_ten_minute_outage_is_backfilled_oldest_first(tmp_path: Path) -> None:
    plat = PlatformSimulator()

    async def body(up: Uplink, clock: ManualClock) -> None:
        up.publish("2051", clock.now(), minute(0.0))
        await plat.wait_for(lambda: len(plat.data("2051")) == 1)
        await plat.wait_for(lambda: up.outbox.backlog("p0") == 0)
        await plat.stop()  # platform goes away for ten (simulated) minutes
        for i in range(1, 11):
            clock.advance(timedelta(minutes=1))
            up.publish("2051", clock.now(), minute(float(i)))
            await asyncio.sleep(0.01)
        up.publish("2061", T0 + timedelta(hours=1), {"a34013": {"Avg": 5.0, "Flag": "N"}})
        assert up.outbox.backlog("p0") == 11
        assert not up.links[0].connected
        await plat.start()  # same port: the platform is back
        await plat.wait_for(lambda: up.outbox.backlog("p0") == 0, 10)
        times = [p.cp.data_time for p in plat.data("2051")]
        assert times == [T0 + timedelta(minutes=i) for i in range(11)]
        assert [p.cp.factors["a34013"]["Avg"] for p in plat.data("2051")] == [
            f"{float(i)}" for i in range(11)
        ]
        assert plat.received[-1].cn == "2061"  # later data time goes after the minutes
        acked = up.outbox.acked("p0")
        assert [t for _, t in acked] == sorted(t for _, t in acked)

    run(tmp_path, [plat], body)


def test_silent_platform_gets_retries_then_resend_after_reconnect(tmp_path: Path) -> None:
    plat = PlatformSimulator(mode="silent")

    async def body(up: Uplink, clock: ManualClock) -> None:
        up.publish("2061", T0, minute(1.0))
        # retries=1: the same QN twice, then the link counts as broken
        await plat.wait_for(lambda: len(plat.received) >= 2)
        assert plat.received[0].qn == plat.received[1].qn
        await plat.wait_for(lambda: plat.connections >= 2, 5)
        assert up.outbox.backlog("p0") == 1
        plat.mode = "ack"
        await plat.wait_for(lambda: up.outbox.backlog("p0") == 0, 5)
        assert all(p.cn == "2061" and p.cp.data_time == T0 for p in plat.received)

    run(tmp_path, [plat], body)


def test_platform_that_disconnects_and_refuses_still_gets_everything_in_order(
    tmp_path: Path,
) -> None:
    plat = PlatformSimulator(mode="disconnect")
    plat.drop_after = 2

    async def body(up: Uplink, clock: ManualClock) -> None:
        for i in range(6):
            up.publish("2051", T0 + timedelta(minutes=i), minute(float(i)))
        await plat.wait_for(lambda: plat.connections >= 2, 5)
        plat.mode = "refuse"
        seen = plat.connections
        await plat.wait_for(lambda: plat.connections >= seen + 2, 5)
        assert up.outbox.backlog("p0") == 6  # nothing acknowledged yet
        plat.mode = "ack"
        await plat.wait_for(lambda: up.outbox.backlog("p0") == 0, 10)
        acked = [t for _, t in up.outbox.acked("p0")]
        assert acked == [T0 + timedelta(minutes=i) for i in range(6)]

    run(tmp_path, [plat], body)


def test_one_platform_down_or_silent_does_not_delay_another(tmp_path: Path) -> None:
    good, silent = PlatformSimulator(), PlatformSimulator(mode="silent")

    def cfgs(ps: list[PlatformSimulator]) -> list[PlatformConfig]:
        return [
            pcfg("good", ps[0].port),
            pcfg("silent", ps[1].port, timeout_s=5.0, retries=3),
            pcfg("down", 1, connect_timeout_s=5.0),  # nothing listens on port 1
            pcfg("off", 2, enabled=False),
        ]

    async def body(up: Uplink, clock: ManualClock) -> None:
        await good.wait_for(lambda: up.links[0].connected and up.links[1].connected)
        loop = asyncio.get_running_loop()
        for i in range(3):
            start = loop.time()
            up.publish("2051", T0 + timedelta(minutes=i), minute(float(i)))
            await good.wait_for(lambda n=i: len(good.data("2051")) == n + 1, 2)
            assert loop.time() - start < 1.0
        assert len(silent.received) == 1  # still waiting on its first 9014
        assert up.outbox.backlog("silent") == 3 and up.outbox.backlog("down") == 3
        assert [s.name for s in up.status()] == ["good", "silent", "down"]

    run(tmp_path, [good, silent], body, cfgs=cfgs)


def test_history_request_answered_with_9011_data_9012(tmp_path: Path) -> None:
    plat = PlatformSimulator()
    source = History()

    async def body(up: Uplink, clock: ManualClock) -> None:
        qn = "20240501100500123"
        req = plat.command("2051", qn, {"BeginTime": "20240501090000", "EndTime": "20240501100000"})
        await plat.send(req)
        await plat.wait_for(lambda: any(p.cn == "9012" for p in plat.replies(qn)))
        replies = plat.replies(qn)
        assert [p.cn for p in replies] == ["9011", "2051", "2051", "2051", "9012"]
        assert replies[0].cp.params == {"QnRtn": "1"} and replies[0].st == "91"
        assert replies[-1].cp.params == {"ExeRtn": "1"}
        assert [p.cp.data_time for p in replies[1:4]] == [
            datetime(2024, 5, 1, 9, i) for i in range(3)
        ]
        assert source.asked == [("2051", datetime(2024, 5, 1, 9), datetime(2024, 5, 1, 10))]
        qn = "20240501100500124"
        seg = f"QN={qn};ST=31;CN=2061;PW=123456;MN={MN};Flag=5;CP=&&BeginTime=2024&&"
        await plat.send(plat.frame(seg))
        await plat.wait_for(lambda: len(plat.replies(qn)) == 2)
        assert [p.cp.params for p in plat.replies(qn)] == [{"QnRtn": "1"}, {"ExeRtn": "3"}]

    run(tmp_path, [plat], body, source=source)


def test_time_and_intervals_get_and_set(tmp_path: Path) -> None:
    plat = PlatformSimulator()

    async def body(up: Uplink, clock: ManualClock) -> None:
        async def ask(cn: str, qn: str, params: dict[str, str]) -> list:
            cp = ";".join(f"{k}={v}" for k, v in params.items())
            seg = f"QN={qn};ST=31;CN={cn};PW=123456;MN={MN};Flag=5;CP=&&{cp}&&"
            await plat.send(plat.frame(seg))
            await plat.wait_for(lambda: any(p.cn == "9012" for p in plat.replies(qn)))
            return plat.replies(qn)

        r = await ask("1012", "20240501100000001", {"SystemTime": "20240501230405"})
        assert [p.cp.params for p in r] == [{"QnRtn": "1"}, {"ExeRtn": "1"}]
        assert clock.now() == datetime(2024, 5, 1, 23, 4, 5)
        r = await ask("1011", "20240501100000002", {"PolId": "a34013"})
        assert r[1].cn == "1011"
        assert r[1].cp.params == {"PolId": "a34013", "SystemTime": "20240501230405"}
        r = await ask("1012", "20240501100000003", {"SystemTime": "20251340000000"})
        assert r[-1].cp.params == {"ExeRtn": "3"}
        assert clock.now() == datetime(2024, 5, 1, 23, 4, 5)
        r = await ask("1062", "20240501100000004", {"RtdInterval": "60"})
        assert r[-1].cp.params == {"ExeRtn": "1"}
        r = await ask("1061", "20240501100000005", {})
        assert r[1].cp.params == {"RtdInterval": "60"}
        r = await ask("1064", "20240501100000006", {"MinInterval": "1"})
        r = await ask("1063", "20240501100000007", {})
        assert r[1].cp.params == {"MinInterval": "1"}
        r = await ask("1062", "20240501100000008", {"RtdInterval": "5"})  # below 30 s
        assert r[-1].cp.params == {"ExeRtn": "3"}
        intervals = up.links[0].intervals
        assert (intervals.rtd_interval, intervals.min_interval) == (60, 1)

    run(tmp_path, [plat], body)


def test_unknown_wrong_and_garbage_commands_are_refused_not_fatal(tmp_path: Path) -> None:
    plat = PlatformSimulator()

    async def body(up: Uplink, clock: ManualClock) -> None:
        await plat.send(plat.command("3011", "20240501100000001"))
        await plat.send(plat.command("1011", "20240501100000002", pw="999999"))
        await plat.send(plat.command("1011", "20240501100000003", mn="0000"))
        await plat.send(b"garbage\r\n##0010QN=1;&&0000\r\n")
        seg = f"QN=20240501100000004;ST=31;CN=1011;PW=123456;MN={MN};Flag=5;CP=&&&&"
        await plat.send(plat.frame(seg, crc="FFFF"))
        await plat.wait_for(lambda: len(plat.data("9011")) == 4)
        codes = {p.qn: p.cp.params["QnRtn"] for p in plat.data("9011")}
        assert codes == {
            "20240501100000001": "8",  # unknown CN
            "20240501100000002": "3",  # wrong PW
            "20240501100000003": "4",  # wrong MN
            "20240501100000004": "9",  # CRC error
        }
        up.publish("2051", T0, minute(3.0))  # the link still works
        await plat.wait_for(lambda: up.outbox.backlog("p0") == 0)
        assert up.links[0].reconnects == 1

    run(tmp_path, [plat], body)


def test_long_record_goes_out_split_and_is_acknowledged(tmp_path: Path) -> None:
    plat = PlatformSimulator()
    factors = {
        f"a{i:05d}": {"Avg": 1000.125 + i, "Min": 1.5, "Max": 2000.5, "Flag": "N"}
        for i in range(40)
    }

    async def body(up: Uplink, clock: ManualClock) -> None:
        up.publish("2061", T0, factors)
        await plat.wait_for(lambda: up.outbox.backlog("p0") == 0)
        parts = plat.data("2061")
        assert len(parts) > 1 and {p.pnum for p in parts} == {len(parts)}
        assert [p.pno for p in parts] == list(range(1, len(parts) + 1))
        merged: dict[str, object] = {}
        for p in parts:
            merged.update(p.cp.factors)
        assert merged == Cp.build({}, factors).factors

    run(tmp_path, [plat], body)


LONG = {
    f"a{i:05d}": {"Avg": 1000.125 + i, "Min": 1.5, "Max": 2000.5, "Flag": "N"} for i in range(40)
}


def test_split_mode_refuse_logs_an_over_long_record_and_sends_the_rest(tmp_path: Path) -> None:
    plat = PlatformSimulator()

    class Source:
        def records(self, cn: str, begin: datetime, end: datetime):
            return [(begin, LONG), (begin + timedelta(hours=1), minute(7.0))]

    async def body(up: Uplink, clock: ManualClock) -> None:
        with capture_logs() as logs:
            up.publish("2061", T0, LONG)  # queued first: it must not block what follows
            up.publish("2051", T0, minute(1.0))
            await plat.wait_for(lambda: len(plat.data("2051")) == 1)
            await plat.wait_for(lambda: up.outbox.backlog("p0") == 0)
            qn = "20240501100500123"
            req = {"BeginTime": "20240501080000", "EndTime": "20240501100000"}
            await plat.send(plat.command("2061", qn, req))
            await plat.wait_for(lambda: any(p.cn == "9012" for p in plat.replies(qn)))
        assert [p.cn for p in plat.replies(qn)] == ["9011", "2061", "9012"]
        assert plat.replies(qn)[1].cp.data_time == datetime(2024, 5, 1, 9)
        assert [p for p in plat.data("2061") if p.qn != qn] == []  # never split, never sent
        refused = [e for e in logs if e["event"] == "hj212_packet_too_long"]
        assert [e["cn"] for e in refused] == ["2061", "2061"]
        assert 'split_mode = "refuse"' in refused[0]["hint"] and "1024" in refused[0]["reason"]

    run(tmp_path, [plat], body, options={"split_mode": "refuse"}, source=Source())


def test_a_platform_without_resend_gets_no_backfill_after_an_outage(tmp_path: Path) -> None:
    keep, live = PlatformSimulator(), PlatformSimulator()

    def cfgs(ps: list[PlatformSimulator]) -> list[PlatformConfig]:
        return [pcfg("keep", ps[0].port), pcfg("live", ps[1].port, resend=False)]

    async def body(up: Uplink, clock: ManualClock) -> None:
        await keep.wait_for(lambda: all(link.connected for link in up.links))
        up.publish("2051", T0, minute(0.0))
        await live.wait_for(lambda: len(live.data("2051")) == 1 == len(keep.data("2051")))
        await keep.stop()
        await live.stop()
        await keep.wait_for(lambda: not any(link.connected for link in up.links))
        for i in range(1, 4):
            up.publish("2051", T0 + timedelta(minutes=i), minute(float(i)))
        up.send_alarm(T0 + timedelta(minutes=3), {"a34013": {"Rtd": 99.5, "Flag": "T"}})
        assert up.outbox.backlog("keep") == 4 and up.outbox.backlog("live") == 1  # the alarm
        await keep.start()
        await live.start()
        await live.wait_for(lambda: len(live.data("2072")) == 1, 10)
        up.publish("2051", T0 + timedelta(minutes=4), minute(4.0))
        await keep.wait_for(lambda: len(keep.data("2051")) == 5, 10)
        await live.wait_for(lambda: len(live.data("2051")) == 2)
        assert [p.cp.data_time for p in live.data("2051")] == [T0, T0 + timedelta(minutes=4)]
        # unacknowledged when the link broke: not sent again on the next connection
        live.mode = "silent"
        with capture_logs() as logs:
            up.publish("2051", T0 + timedelta(minutes=5), minute(5.0))
            await live.wait_for(lambda: live.connections >= 3, 10)
            await live.wait_for(lambda: up.outbox.backlog("live") == 0)
        dropped = [e for e in logs if e["event"] == "hj212_backlog_not_resent"]
        assert dropped and dropped[0]["records"] == 1 and "resend = false" in dropped[0]["hint"]
        await keep.wait_for(lambda: len(keep.data("2051")) == 6)

    run(tmp_path, [keep, live], body, cfgs=cfgs)


def test_realtime_data_waiting_when_the_link_breaks_is_not_sent_later(tmp_path: Path) -> None:
    """Real-time values are current or nothing: what waited behind a broken link is dropped."""
    plat = PlatformSimulator(mode="silent")

    async def body(up: Uplink, clock: ManualClock) -> None:
        link = up.links[0]
        await plat.wait_for(lambda: link.connected)
        up.send_realtime(T0, {"a34013": {"Rtd": 1.5, "Flag": "N"}})
        await plat.wait_for(lambda: len(plat.data("2011")) == 1)  # unanswered: the link waits
        up.send_realtime(T0 + timedelta(seconds=30), {"a34013": {"Rtd": 2.5, "Flag": "N"}})
        assert len(link.live) == 1
        with capture_logs() as logs:
            await plat.stop()  # the platform goes away while the second one waits
            for _ in range(100):
                if not link.connected:
                    break
                await asyncio.sleep(0.02)
        assert any(e["event"] == "hj212_realtime_dropped" for e in logs)
        plat.mode = "ack"
        await plat.start()
        await plat.wait_for(lambda: link.connected, 10)
        up.publish("2051", T0, minute(1.0))
        await plat.wait_for(lambda: len(plat.data("2051")) == 1, 10)
        assert {p.cp.factors["a34013"]["Rtd"] for p in plat.data("2011")} == {"1.5"}

    run(tmp_path, [plat], body)
