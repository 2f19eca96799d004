"""The platform simulator itself: what it tells its owner, split packets, and that it forgets."""

from __future__ import annotations

import asyncio

import pytest

from edged.hj212.codec import Cp, Packet, decode, encode, encode_all
from edged.hj212.platform_sim import PlatformSimulator

MN = "66330300010100001001"


def realtime(qn: int, flag: int = 5, factors: int = 1) -> Packet:
    cp = Cp(
        {"DataTime": "20260101080000"},
        {f"i12{n:03d}": {"Rtd": "230.1", "Flag": "N"} for n in range(1, factors + 1)},
    )
    return Packet("2011", MN, "123456", "31", f"2026010108000000{qn}", flag, cp=cp)


def test_reports_each_packet_with_its_answer_and_keeps_only_the_newest() -> None:
    seen: list[tuple[str, str | None, int]] = []
    refused: list[str] = []

    async def main() -> list[bytes]:
        plat = PlatformSimulator(mn=MN, keep=2)
        plat.on_packet = lambda packet, answer, parts: seen.append((packet.cn, answer, parts))
        plat.on_refused = lambda raw, why: refused.append(why)
        await plat.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", plat.port)
        for qn, flag in enumerate((5, 4, 5)):  # 2017 with the reply bit, without, with
            writer.write(encode(realtime(qn, flag)))
        writer.write(b"##0010QN=1;CN=20\r\n")  # not a packet: refused, and reported
        await writer.drain()
        answers = [await reader.readuntil(b"\r\n") for _ in range(2)]
        await plat.wait_for(lambda: len(seen) == 3 and len(refused) == 1)
        assert [p.qn for p in plat.received] == ["20260101080000001", "20260101080000002"]
        writer.close()
        await plat.stop()
        return answers

    answers = asyncio.run(main())
    assert seen == [("2011", "9014", 1), ("2011", None, 1), ("2011", "9014", 1)]
    assert [decode(a).cn for a in answers] == ["9014", "9014"]
    assert len(refused) == 1


@pytest.mark.parametrize("reassemble", [True, False])
def test_a_split_packet_is_taken_whole_or_part_by_part(reassemble: bool) -> None:
    big = realtime(7, factors=60)  # over 1024 bytes: goes out as PNUM/PNO sub-packets
    chunks = encode_all(big)
    assert len(chunks) > 1
    seen: list[tuple[Packet, str | None, int]] = []

    async def main() -> list[bytes]:
        plat = PlatformSimulator(mn=MN, reassemble=reassemble)
        plat.on_packet = lambda packet, answer, parts: seen.append((packet, answer, parts))
        await plat.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", plat.port)
        writer.write(b"".join(chunks))
        await writer.drain()
        want = 1 if reassemble else len(chunks)
        await plat.wait_for(lambda: len(seen) == want)
        answers = [await reader.readuntil(b"\r\n") for _ in range(want)]
        writer.close()
        await plat.stop()
        return answers

    answers = asyncio.run(main())
    assert all(decode(a).cn == "9014" and decode(a).qn == big.qn for a in answers)
    if reassemble:
        (packet, answer, parts), *_ = seen
        assert (answer, parts) == ("9014", len(chunks))
        assert packet.cp.factors == big.cp.factors
    else:
        assert [parts for _, _, parts in seen] == [1] * len(chunks)
        assert sum(len(p.cp.factors) for p, _, _ in seen) == 60
