"""An HJ 212-2025 platform (TCP, SM4 on) and an HJ 212-2017 one served side by side (一点多传)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from edged.hj212.clock import ManualClock
from edged.hj212.codec import Cp, Packet, merge
from edged.hj212.config import PlatformConfig
from edged.hj212.hardware import HardwareIdentity
from edged.hj212.platform_sim import PlatformSimulator
from edged.hj212.uplink import Uplink
from tests.hj212.test_uplink import MN, T0, History, minute, pcfg, run

KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")
NEW_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
IDENTITY = HardwareIdentity(
    "LOGGER01", "10000000ABCDEF01", ("B8:27:EB:12:34:56", "02:42:AC:11:00:02")
)
ASSIGNED = "010000A8900016F000169DC0"


def test_2025_platform_with_sm4_works_next_to_a_2017_one(tmp_path: Path) -> None:
    p17 = PlatformSimulator()
    p25 = PlatformSimulator(version="2025", key=KEY)
    audits: list[tuple[str, str, dict[str, Any]]] = []
    source = History()

    def cfgs(ps: list[PlatformSimulator]) -> list[PlatformConfig]:
        return [
            pcfg("city", ps[0].port),
            pcfg("province", ps[1].port, version="2025", sm4_key=KEY.hex(), heartbeat_s=1.0),
        ]

    async def body(up: Uplink, clock: ManualClock) -> None:
        link17, link25 = up.links
        # -- joining: hardware identity (1001) answered 9013, heartbeat (9015) -------------
        await p25.wait_for(lambda: len(p25.data("1001")) == 1)
        (ident,) = p25.data("1001")
        assert ident.st == "91" and ident.flag == 9 and not ident.encrypted
        assert ident.cp.factors == {
            "i23005": {"Info": "LOGGER01"},
            "i23006": {"Info": "10000000ABCDEF01"},
            "i23007": {"Info": "B8:27:EB:12:34:56"},
            "i23008": {"Info": "02:42:AC:11:00:02"},
        }
        await p25.wait_for(lambda: bool(p25.data("9015")), 4)
        beat = p25.data("9015")[0]
        assert beat.flag == 9 and beat.st == "91" and beat.cp.text() == ""
        await p25.wait_for(lambda: up.outbox.state("province", "identity_acked") is not None)

        # -- MN assignment (1002), addressed by logger id -----------------------------------
        qn = "20240501100001001"
        assign = Packet(
            "1002", ASSIGNED, "123456", "91", qn, 9, cp=Cp.build({}, IDENTITY.cp_factors())
        )
        await p25.send(assign)
        await p25.wait_for(lambda: any(p.cn == "9012" for p in p25.replies(qn)))
        assert [p.cp.params for p in p25.replies(qn)] == [{"QnRtn": "1"}, {"ExeRtn": "1"}]
        assert link25.out.mn == ASSIGNED and up.outbox.state("province", "mn") == ASSIGNED
        assert link17.out.mn == MN  # the other platform keeps its own MN
        p25.mn = ASSIGNED

        # -- minute / hour / day data, acknowledged by both ---------------------------------
        up.publish("2051", T0, minute(12.5))
        up.publish("2061", T0, {"a34013": {"Avg": 12.25, "Flag": "N"}})
        up.publish("2031", T0, {"a34013": {"Avg": 11.75, "Cou": 0.3, "Flag": "N"}})
        await p25.wait_for(lambda: up.outbox.backlog("province") == 0)
        await p17.wait_for(lambda: up.outbox.backlog("city") == 0)
        for cn in ("2051", "2061", "2031"):
            (new,) = p25.data(cn)
            (old,) = p17.data(cn)
            assert new.encrypted and new.flag == 9 and new.mn == ASSIGNED and not new.rf
            assert not old.encrypted and old.flag == 5 and old.mn == MN
            assert new.cp == old.cp
        wire25 = next(r for r in p25.raw if b"CN=2051" in r)
        wire17 = next(r for r in p17.raw if b"CN=2051" in r)
        assert b"CP=&&{0x" in wire25 and b"a34013" not in wire25
        assert b"a34013-Avg=12.5" in wire17
        assert not p17.data("1001") and not p17.data("9015")

        # -- key update (1014, encrypted with the old key) ----------------------------------
        qn = "20240501100002001"
        await p25.send(
            p25.command("1014", qn, {"SKCreateTime": "20240501100000", "NewSK": NEW_KEY.hex()})
        )
        await p25.wait_for(lambda: any(p.cn == "9012" for p in p25.replies(qn)))
        assert [p.cp.params for p in p25.replies(qn)] == [{"QnRtn": "1"}, {"ExeRtn": "1"}]
        assert up.outbox.state("province", "sk_new") == NEW_KEY.hex()
        assert up.outbox.state("province", "sk") == KEY.hex()  # kept until confirmed
        p25.key = NEW_KEY  # the platform switches; it no longer opens the old key
        up.publish("2051", T0 + timedelta(minutes=1), minute(13.0))
        await p25.wait_for(lambda: up.outbox.backlog("province") == 0)
        assert up.outbox.state("province", "sk") == NEW_KEY.hex()
        assert up.outbox.state("province", "sk_new") is None
        assert ("hj212:province", "hj212_key_offered") in [(a, b) for a, b, _ in audits]
        assert ("hj212:province", "hj212_key_confirmed") in [(a, b) for a, b, _ in audits]
        assert all(NEW_KEY.hex() not in repr(d) for _, _, d in audits)  # keys never audited

        # -- a record too long for one packet goes out split, each part encrypted -----------
        big = {
            f"a{i:05d}": {"Avg": 1000.125 + i, "Min": 1.5, "Max": 2000.5, "Flag": "N"}
            for i in range(40)
        }
        up.publish("2061", T0 + timedelta(hours=1), big)
        await p25.wait_for(lambda: up.outbox.backlog("province") == 0)
        parts = [p for p in p25.data("2061") if p.pnum]
        assert len(parts) > 1 and all(p.encrypted for p in parts)
        assert all(len(r) <= 1024 + 12 for r in p25.raw)
        assert merge(parts).cp.factors == up.build_cp({}, big).factors

        # -- outage: backfilled records carry RF=1 on the 2025 link only ---------------------
        await p25.stop()
        await p25.wait_for(lambda: not link25.connected, 10)
        for i in range(3):
            up.publish("2051", T0 + timedelta(minutes=10 + i), minute(float(i)))
        await p25.start()
        await p25.wait_for(lambda: up.outbox.backlog("province") == 0, 10)
        await p17.wait_for(lambda: up.outbox.backlog("city") == 0)
        late = [p for p in p25.data("2051") if p.cp.data_time >= T0 + timedelta(minutes=10)]
        assert [p.cp.data_time for p in late] == [T0 + timedelta(minutes=10 + i) for i in range(3)]
        assert all(p.rf for p in late) and all(p.encrypted for p in late)
        assert not any(p.rf for p in p17.received)
        assert len(p25.data("1001")) == 2  # identity again on the new connection

        # -- history asked by the 2025 platform, answered encrypted -------------------------
        qn = "20240501100003001"
        ask = {"BeginTime": "20240501090000", "EndTime": "20240501100000"}
        await p25.send(p25.command("2051", qn, ask))
        await p25.wait_for(lambda: any(p.cn == "9012" for p in p25.replies(qn)))
        replies = p25.replies(qn)
        assert [p.cn for p in replies] == ["9011", "2051", "2051", "2051", "9012"]
        assert all(p.encrypted for p in replies[1:4]) and not replies[0].encrypted
        assert source.asked[-1][0] == "2051"
        status = {s.name: s for s in up.status()}
        assert status["province"].version == "2025" and status["province"].encrypted
        assert status["city"].version == "2017" and not status["city"].encrypted
        assert not p25.bad and not p17.bad

    run(
        tmp_path,
        [p17, p25],
        body,
        cfgs=cfgs,
        source=source,
        identity=IDENTITY,
        audit=lambda actor, action, details: audits.append((actor, action, details)),
        timeout=40,
    )
