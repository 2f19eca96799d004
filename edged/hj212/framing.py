"""Cut a byte stream (TCP or serial) into HJ 212 packet candidates.

Streams carry noise: a half packet after a reconnect, line noise on RS485,
a platform that sends a banner. The framer keeps only ``##...\\n`` spans and
counts what it throws away, so the caller can log garbage without ever
holding an unbounded buffer.
"""

from __future__ import annotations

from edged.hj212.crc import crc16_hex

MAX_PACKET = 6 + 9999 + 4 + 2


class PacketFramer:
    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self.max_packet = max_packet
        self._buf = bytearray()
        self.garbage_bytes = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Complete candidates (``##`` up to and including ``\\n``) found so far."""
        self._buf += data
        out: list[bytes] = []
        while True:
            start = self._buf.find(b"##")
            if start < 0:
                keep = 1 if self._buf.endswith(b"#") else 0
                self.garbage_bytes += len(self._buf) - keep
                del self._buf[: len(self._buf) - keep]
                return out
            if start:
                self.garbage_bytes += start
                del self._buf[:start]
            end = self._buf.find(b"\n")
            if end < 0:
                if len(self._buf) > self.max_packet:
                    # No line end within any possible packet length: drop the
                    # '##' and look for the next one.
                    self.garbage_bytes += 2
                    del self._buf[:2]
                    continue
                return out
            # A packet cut short (cable pulled, reconnect) runs into the next
            # one: unless the span is one whole packet (length and CRC agree),
            # restart at the next '##' inside it so the good packet survives.
            nxt = self._buf.find(b"##", 1, end)
            if nxt > 0 and not self._whole(end):
                self.garbage_bytes += nxt
                del self._buf[:nxt]
                continue
            out.append(bytes(self._buf[: end + 1]))
            del self._buf[: end + 1]

    def _whole(self, end: int) -> bool:
        """Whether ``_buf[: end + 1]`` is exactly one packet with a matching CRC."""
        head = bytes(self._buf[2:6])
        if not head.isdigit():
            return False
        length = int(head)
        if end - (self._buf[end - 1 : end] == b"\r") != 6 + length + 4:
            return False
        data = bytes(self._buf[6 : 6 + length])
        return bytes(self._buf[6 + length : 10 + length]).upper() == crc16_hex(data).encode()
