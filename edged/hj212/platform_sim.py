"""A monitoring platform on real TCP, in HJ 212-2017 or -2025: the demo's platform, the tests' peer.

No public HJ 212 platform can run on a test machine or at a demo, so this
one speaks the wire format byte for byte through the project's codec: in
``version="2025"`` with an SM4 key it decrypts what the logger sends,
encrypts the commands it sends, answers heartbeats (9015) and hardware
identity (1001) with 9013 and data with 9014, as a 2025 platform does.

Modes: ``ack`` answers every reply-wanted packet, ``silent`` takes packets
and never answers, ``refuse`` closes each connection as it opens,
``disconnect`` drops the connection after ``drop_after`` packets. ``stop()``
and ``start()`` on the same port simulate an outage. ``key`` is the key the
platform encrypts with; ``old_keys`` it still opens packets with.
``on_packet(packet, answer_cn, parts)`` is called for each packet it takes
(with the CN it answered, or None, and how many wire packets made it),
``on_refused(raw, why)`` for each it cannot decode: the demo prints both.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from edged.hj212.codec import (
    Cp,
    Hj212Error,
    Packet,
    Reassembler,
    decode,
    encode,
    encode_all,
    version_flag,
)
from edged.hj212.crc import crc16_hex
from edged.hj212.framing import PacketFramer

NOTICE_ACKED = ("1001", "9015", "1014")  # answered with 9013 (通知应答), data with 9014


class PlatformSimulator:
    """One platform's receiver on 127.0.0.1, served on the caller's asyncio loop."""

    def __init__(
        self,
        mode: str = "ack",
        mn: str = "66330300010100001001",
        pw: str = "123456",
        version: str = "2017",
        key: bytes | None = None,
        port: int = 0,
        keep: int = 10000,
        reassemble: bool = False,
    ) -> None:
        """``port`` 0: a free one, known after :meth:`start`; ``keep``: packets remembered
        (the newest), so a demo left running for days holds bounded memory; ``reassemble``:
        take a split packet (PNUM/PNO) as one, answered once all its parts are in, as a
        platform that reassembles does (else each part is taken and answered alone)."""
        self.mode = mode
        self.mn = mn
        self.pw = pw
        self.version = version
        self.key = key
        self.old_keys: list[bytes] = []
        self.port = port
        self.reassemble = reassemble
        self._parts = Reassembler()
        self.received: deque[Packet] = deque(maxlen=keep)
        self.raw: deque[bytes] = deque(maxlen=keep)
        self.bad: deque[tuple[bytes, str]] = deque(maxlen=keep)
        self.connections = 0
        self.drop_after = 3
        self._server: asyncio.base_events.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._changed = asyncio.Event()
        self.on_packet: Callable[[Packet, str | None, int], Any] | None = None
        self.on_refused: Callable[[bytes, str], Any] | None = None

    @property
    def flag(self) -> int:
        return version_flag(self.version)

    def keys(self) -> list[bytes]:
        return [k for k in (self.key, *self.old_keys) if k is not None]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in self._writers:
                w.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        self._writers.clear()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._touch()
        if self.mode == "refuse":
            writer.close()
            return
        self._writers.append(writer)
        framer = PacketFramer()
        count = 0
        try:
            while data := await reader.read(4096):
                for raw in framer.feed(data):
                    try:
                        packet = decode(raw, sm4_keys=self.keys(), encrypted=bool(self.key))
                    except Hj212Error as exc:
                        self._refuse(raw, str(exc))
                        continue
                    self.raw.append(raw)
                    whole, parts = self._whole(raw, packet)
                    if whole is not None:
                        self.received.append(whole)
                    count += 1
                    self._touch()
                    if self.mode == "disconnect" and count >= self.drop_after:
                        writer.close()
                        return
                    if whole is None:
                        continue  # a part of a split packet: answered once it is whole
                    answer = None
                    if self.mode == "ack" and whole.reply_wanted:
                        answer = "9013" if whole.cn in NOTICE_ACKED else "9014"
                        ack = Packet(answer, whole.mn, whole.pw, "91", whole.qn, self.flag, cp=Cp())
                        writer.write(encode(ack))
                    if self.on_packet is not None:
                        self.on_packet(whole, answer, parts)
        except (ConnectionError, OSError):
            pass
        finally:
            if writer in self._writers:
                self._writers.remove(writer)
            writer.close()

    def _refuse(self, raw: bytes, why: str) -> None:
        self.bad.append((raw, why))
        if self.on_refused is not None:
            self.on_refused(raw, why)
        self._touch()

    def _whole(self, raw: bytes, packet: Packet) -> tuple[Packet | None, int]:
        """The packet and how many wire packets made it: with ``reassemble``, a split packet
        once all its parts are in (None before); else each part as it came."""
        if not (self.reassemble and packet.is_split):
            return packet, 1
        now = time.monotonic()
        self._parts.expire(now)
        try:
            return self._parts.feed(packet, now), packet.pnum or 1
        except Hj212Error as exc:
            self._refuse(raw, str(exc))
            return None, 0

    def _touch(self) -> None:
        self._changed.set()

    async def send(self, packet: Packet | bytes) -> None:
        """Send a command to the (first) connected logger, encrypted when the platform is."""
        await self.wait_for(lambda: bool(self._writers), 5)
        data = (
            packet if isinstance(packet, bytes) else b"".join(encode_all(packet, sm4_key=self.key))
        )
        self._writers[0].write(data)
        await self._writers[0].drain()

    def frame(self, segment: str, crc: str | None = None) -> bytes:
        """Wire bytes around a hand-written data segment (to send what encode() refuses)."""
        data = segment.encode()
        return b"##%04d%s%s\r\n" % (len(data), data, (crc or crc16_hex(data)).encode())

    def command(self, cn: str, qn: str, params: dict[str, str] | None = None, **kw: str) -> Packet:
        return Packet(
            cn,
            kw.get("mn", self.mn),
            kw.get("pw", self.pw),
            "31",
            qn,
            self.flag | 1,
            cp=Cp(params or {}),
        )

    def data(self, cn: str) -> list[Packet]:
        return [p for p in self.received if p.cn == cn]

    def replies(self, qn: str) -> list[Packet]:
        return [p for p in self.received if p.qn == qn]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(
                    f"timed out after {timeout}s; received {len(self.received)} packets,"
                    f" refused {[why for _, why in self.bad][-3:]}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.05))
