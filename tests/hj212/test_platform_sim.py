"""The platform simulator itself: what it tells its owner, and that it forgets the oldest."""

from __future__ import annotations

import asyncio

from edged.hj212.codec import Cp, Packet, decode, encode
from edged.hj212.platform_sim import PlatformSimulator

MN = "66330300010100001001"


def test_reports_each_packet_with_its_answer_and_keeps_only_the_newest() -> None:
    seen: list[tuple[str, str | None]] = []
    refused: list[str] = []

    async def main() -> list[bytes]:
        plat = PlatformSimulator(mn=MN, keep=2)
        plat.on_packet = lambda packet, answer: seen.append((packet.cn, answer))
        plat.on_refused = lambda raw, why: refused.append(why)
        await plat.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", plat.port)
        flags = (5, 4, 5)  # 2017 with the reply bit, without, with
        for qn, flag in enumerate(flags):
            cp = Cp({"DataTime": "20260101080000"}, {"i12001": {"Rtd": "230.1", "Flag": "N"}})
            writer.write(
                encode(Packet("2011", MN, "123456", "31", f"2026010108000000{qn}", flag, cp=cp))
            )
        writer.write(b"##0010QN=1;CN=20\r\n")  # too short to be a packet: refused, reported
        await writer.drain()
        answers = [await reader.readuntil(b"\r\n") for _ in range(2)]
        await plat.wait_for(lambda: len(seen) == 3 and len(refused) == 1)
        assert [p.qn for p in plat.received] == ["20260101080000001", "20260101080000002"]
        writer.close()
        await plat.stop()
        return answers

    answers = asyncio.run(main())
    assert seen == [("2011", "9014"), ("2011", None), ("2011", "9014")]
    assert [decode(a).cn for a in answers] == ["9014", "9014"]
    assert len(refused) == 1
