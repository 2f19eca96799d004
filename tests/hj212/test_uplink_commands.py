"""Platform commands over real TCP: what a logger does, refuses, stores and audits."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from edged.hj212.clock import ManualClock
from edged.hj212.codec import Cp, Packet
from edged.hj212.config import Hj212Config, PlatformConfig
from edged.hj212.hardware import HardwareIdentity
from edged.hj212.platform_sim import PlatformSimulator
from edged.hj212.uplink import Uplink
from tests.hj212.test_uplink import MN, T0, minute, pcfg, run

KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")
IDENTITY = HardwareIdentity("LOGGER01", "CPU01", ("B8:27:EB:12:34:56",))


async def ask(plat: PlatformSimulator, cn: str, qn: str, params: dict[str, str], **kw: str) -> list:
    await plat.send(plat.command(cn, qn, params, **kw))
    done = ("9012", "9013")
    await plat.wait_for(
        lambda: (
            any(p.cn in done for p in plat.replies(qn))
            or any(p.cp.params.get("QnRtn", "1") != "1" for p in plat.replies(qn))
        )
    )
    return plat.replies(qn)


def test_set_time_is_bounded_by_the_system_clock_and_audited(tmp_path: Path) -> None:
    plat = PlatformSimulator()
    audits: list[tuple[str, str, dict[str, Any]]] = []

    async def body(up: Uplink, clock: ManualClock) -> None:
        r = await ask(plat, "1012", "20240501100000001", {"SystemTime": "20990101000000"})
        assert [p.cp.params for p in r] == [{"QnRtn": "2"}]
        assert clock.now() == T0  # untouched
        r = await ask(plat, "1012", "20240501100000002", {"SystemTime": "20240502090000"})
        assert [p.cp.params for p in r] == [{"QnRtn": "1"}, {"ExeRtn": "1"}]  # 23 h: allowed
        assert [a[1] for a in audits] == ["hj212_time_set_refused", "hj212_time_set"]
        refused, done = audits[0][2], audits[1][2]
        assert refused["requested"] == "20990101000000" and refused["shift_s"] > 24 * 3600
        assert done["old"] == "20240501100000" and done["requested"] == "20240502090000"
        assert {a[0] for a in audits} == {"hj212:p0"}

    run(tmp_path, [plat], body, audit=lambda a, b, c: audits.append((a, b, c)))


def test_pruning_goes_by_the_system_clock_and_keeps_the_unacknowledged(tmp_path: Path) -> None:
    system = [T0.astimezone()]
    cfg = Hj212Config(platforms=[pcfg("p0", 1)], keep_days=30)
    clock = ManualClock(T0)
    up = Uplink(
        cfg, tmp_path / "o.sqlite", clock=clock, identity=IDENTITY, system_clock=lambda: system[0]
    )
    try:
        old = T0 - timedelta(days=40)
        up.publish("2051", old, minute(1.0))  # backfill of old data: queued now, not sent
        up.publish("2051", old + timedelta(minutes=1), minute(2.0))
        row = up.outbox.next_pending("p0")
        assert row is not None
        up.outbox.mark_acked(row.id, system[0])
        clock.set(T0 + timedelta(days=365 * 75))  # a platform set the logger to 2099
        assert up.prune() == 1  # only the acknowledged old record
        assert up.outbox.backlog("p0") == 1
        system[0] += timedelta(days=29)
        assert up.prune() == 0  # queued 29 days ago: still within keep_days
        system[0] += timedelta(days=2)
        assert up.prune() == 1 and up.outbox.backlog("p0") == 0
    finally:
        up.outbox.close()


def test_split_packets_are_held_only_after_mn_and_pw_match(tmp_path: Path) -> None:
    plat = PlatformSimulator()

    async def body(up: Uplink, clock: ManualClock) -> None:
        link = up.links[0]
        first_half = Cp({"BeginTime": "20240501090000"})
        for qn, mn, pw, code in (
            ("20240501100000001", "00000000000000", "123456", "4"),
            ("20240501100000002", MN, "654321", "3"),
        ):
            await plat.send(Packet("2051", mn, pw, "31", qn, 7, pnum=2, pno=1, cp=first_half))
            await plat.wait_for(lambda q=qn: bool(plat.replies(q)))
            assert plat.replies(qn)[0].cp.params == {"QnRtn": code}
            assert len(link.requests._reassembler) == 0  # nothing held for a stranger
        qn = "20240501100000003"
        await plat.send(Packet("2051", MN, "123456", "31", qn, 7, pnum=2, pno=1, cp=first_half))
        await plat.wait_for(lambda: len(link.requests._reassembler) == 1)
        second = Cp({"EndTime": "20240501100000"})
        await plat.send(Packet("2051", MN, "123456", "31", qn, 7, pnum=2, pno=2, cp=second))
        await plat.wait_for(lambda: any(p.cn == "9012" for p in plat.replies(qn)))
        assert len(link.requests._reassembler) == 0

    class Empty:
        def records(self, cn: str, begin: Any, end: Any) -> list:
            return []

    run(tmp_path, [plat], body, source=Empty())


def test_realtime_start_stop_timeouts_info_and_refusals(tmp_path: Path) -> None:
    plat = PlatformSimulator()

    class Source:
        def records(self, cn: str, begin: Any, end: Any) -> list:
            return [] if cn in ("2013", "2062", "2111") else [(begin, minute(1.0))]

        def info(self, pol_id: str, info_id: str) -> dict[str, str]:
            return {"i13004": "zero drift 0.2%, span 1.5"} if info_id == "i13004" else {}

    async def body(up: Uplink, clock: ManualClock) -> None:
        link = up.links[0]
        await plat.wait_for(lambda: link.connected)
        # 2012 stop real-time: a notice (9013), and real-time data stops
        r = await ask(plat, "2012", "20240501100000001", {})
        assert [p.cn for p in r] == ["9013"]
        assert not link.realtime_on and up.outbox.state("p0", "realtime") == "0"
        up.send_realtime(T0, {"a34013": {"Rtd": 1.5, "Flag": "N"}})
        # 2011 start real-time: 9011 / 9012, then data flows
        r = await ask(plat, "2011", "20240501100000002", {})
        assert [p.cp.params for p in r] == [{"QnRtn": "1"}, {"ExeRtn": "1"}]
        up.send_realtime(T0, {"a34013": {"Rtd": 2.5, "Flag": "N"}})
        await plat.wait_for(lambda: len(plat.data("2011")) == 1)
        assert plat.data("2011")[0].cp.factors["a34013"]["Rtd"] == "2.5"
        # 1000 timeouts and retries: applied and stored
        r = await ask(plat, "1000", "20240501100000003", {"OverTime": "5", "ReCount": "2"})
        assert r[-1].cp.params == {"ExeRtn": "1"}
        assert (link.timeout, link.retries) == (5.0, 2)
        assert up.outbox.state("p0", "timeouts") == "5/2"
        r = await ask(plat, "1000", "20240501100000004", {"OverTime": "0", "ReCount": "2"})
        assert r[-1].cp.params == {"ExeRtn": "3"}
        # 1001 is the 2025 logger's own upload: a 2017 platform cannot ask it
        r = await ask(plat, "1001", "20240501100000005", {})
        assert r[0].cp.params == {"QnRtn": "8"}
        # 3020 logger information, by InfoId
        r = await ask(plat, "3020", "20240501100000006", {"PolId": "", "InfoId": "i23005"})
        assert [p.cn for p in r] == ["9011", "3020", "9012"]
        assert r[1].cp.factors == {"i23005": {"Info": "LOGGER01"}}
        r = await ask(plat, "3020", "20240501100000007", {"InfoId": "i13004"})
        assert r[1].cp.factors["i13004"]["Info"] == "//zero drift 0.2%, span 1.5//"
        r = await ask(plat, "3020", "20240501100000008", {"InfoId": "i99999"})
        assert [p.cp.params for p in r] == [{"QnRtn": "1"}, {"ExeRtn": "100"}]
        # data a logger does not keep: answered "no data"
        window = {"BeginTime": "20240501090000", "EndTime": "20240501100000"}
        for n, cn in enumerate(("2013", "2062", "2111")):
            r = await ask(plat, cn, f"2024050110000101{n}", window)
            assert [p.cp.params for p in r] == [{"QnRtn": "1"}, {"ExeRtn": "100"}], cn
        # what a logger cannot do: refused with QnRtn=2
        for n, cn in enumerate(("3022", "3024", "1072")):
            r = await ask(plat, cn, f"2024050110000102{n}", {})
            assert [p.cp.params for p in r] == [{"QnRtn": "2"}], cn
        # 1014 and 1002 are 2025 commands: unknown to a 2017 link
        r = await ask(plat, "1014", "20240501100001030", {"NewSK": KEY.hex()})
        assert r[0].cp.params == {"QnRtn": "8"}

    run(tmp_path, [plat], body, source=Source(), identity=IDENTITY)


def test_wrongly_encrypted_or_plain_packets_are_refused(tmp_path: Path) -> None:
    p17 = PlatformSimulator(key=None)
    p25 = PlatformSimulator(version="2025", key=KEY)

    def cfgs(ps: list[PlatformSimulator]) -> list[PlatformConfig]:
        return [
            pcfg("old", ps[0].port),
            pcfg("new", ps[1].port, version="2025", sm4_key=KEY.hex(), heartbeat_s=0),
        ]

    async def body(up: Uplink, clock: ManualClock) -> None:
        window = {"BeginTime": "20240501090000", "EndTime": "20240501100000"}
        p17.version, p17.key = "2025", KEY  # sends encrypted to a 2017 link
        r = await ask(p17, "2051", "20240501100000001", window)
        assert [p.cp.params for p in r] == [{"QnRtn": "2"}]
        p25.key = None  # sends in plain text to a link that has a key
        r = await ask(p25, "2051", "20240501100000002", window)
        assert [p.cp.params for p in r] == [{"QnRtn": "2"}]
        p25.key = KEY
        r = await ask(p25, "2051", "20240501100000003", window)
        assert r[0].cp.params == {"QnRtn": "1"} and r[-1].cn == "9012"

    class Empty:
        def records(self, cn: str, begin: Any, end: Any) -> list:
            return []

    run(tmp_path, [p17, p25], body, cfgs=cfgs, source=Empty(), identity=IDENTITY)


def test_what_platforms_set_survives_a_restart_until_the_config_changes(tmp_path: Path) -> None:
    store = tmp_path / "o.sqlite"

    def uplink(**kw: Any) -> Uplink:
        opts: dict[str, Any] = {"version": "2025", "sm4_key": KEY.hex(), "mn": MN, **kw}
        cfg = Hj212Config(platforms=[PlatformConfig(name="p", host="h", port=1, **opts)])
        return Uplink(cfg, store, identity=IDENTITY)

    up = uplink()
    link = up.links[0]
    up.outbox.set_state("p", "mn", "010000A8900016F000169DC0")
    link.keys.offer(bytes(16), "20240501100000")
    up.outbox.close()
    up = uplink()
    link = up.links[0]
    assert link.out.mn == "010000A8900016F000169DC0"
    assert link.keys.pending == bytes(16) and link.keys.current == KEY  # old key kept
    assert link.keys.for_decrypt() == [bytes(16), KEY]
    link.keys.link_broken()  # a session broke before the platform used the new key
    assert link.keys.for_send() == KEY
    up.outbox.close()
    up = uplink(sm4_key="ff" * 16, mn="MN2")  # the technician enters a new key and MN
    link = up.links[0]
    assert link.keys.current == bytes.fromhex("ff" * 16) and link.keys.pending is None
    assert link.out.mn == "MN2"
    up.outbox.close()


def test_each_platform_sets_its_own_intervals_kept_across_restarts(tmp_path: Path) -> None:
    """CN 1062/1064 change the asking platform's cadence only, durably and audited; a
    restart keeps it; a technician's new config value wins again."""
    city, province = PlatformSimulator(), PlatformSimulator()
    audits: list[tuple[str, str, dict[str, Any]]] = []

    async def body(up: Uplink, clock: ManualClock) -> None:
        a, b = up.links
        assert (a.intervals.rtd_interval, a.intervals.min_interval) == (30, 5)
        r = await ask(city, "1062", "20240501100000001", {"RtdInterval": "120"})
        assert r[-1].cp.params == {"ExeRtn": "1"}
        r = await ask(city, "1064", "20240501100000002", {"MinInterval": "15"})
        assert r[-1].cp.params == {"ExeRtn": "1"}
        r = await ask(province, "1064", "20240501100000003", {"MinInterval": "61"})
        assert r[-1].cp.params == {"ExeRtn": "3"}
        assert (a.intervals.rtd_interval, a.intervals.min_interval) == (120, 15)
        assert (b.intervals.rtd_interval, b.intervals.min_interval) == (30, 5)
        r = await ask(province, "1063", "20240501100000004", {})
        assert r[1].cp.params == {"MinInterval": "5"}  # each platform reads its own
        r = await ask(city, "1061", "20240501100000005", {})
        assert r[1].cp.params == {"RtdInterval": "120"}
        status = {s.name: s for s in up.status()}
        assert (status["p0"].rtd_interval_s, status["p0"].min_interval_min) == (120, 15)
        assert (status["p1"].rtd_interval_s, status["p1"].min_interval_min) == (30, 5)

    run(tmp_path, [city, province], body, audit=lambda *a: audits.append(a))
    assert [(a[0], a[1], a[2]["key"], a[2]["old"], a[2]["new"]) for a in audits] == [
        ("hj212:p0", "hj212_interval_set", "RtdInterval", 30, 120),
        ("hj212:p0", "hj212_interval_set", "MinInterval", 5, 15),
    ]

    def restarted(**options: Any) -> Uplink:
        cfgs = [pcfg("p0", city.port), pcfg("p1", province.port)]
        return Uplink(
            Hj212Config(platforms=cfgs, **options), tmp_path / "outbox.sqlite", identity=IDENTITY
        )

    up = restarted()
    assert [(lk.intervals.rtd_interval, lk.intervals.min_interval) for lk in up.links] == [
        (120, 15),
        (30, 5),
    ]
    up.outbox.close()
    up = restarted(rtd_interval_s=60)  # the technician changes the shared real-time interval
    assert [(lk.intervals.rtd_interval, lk.intervals.min_interval) for lk in up.links] == [
        (60, 15),
        (60, 5),
    ]
    up.outbox.close()
