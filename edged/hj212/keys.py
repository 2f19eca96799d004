"""One platform's SM4 keys: the key in use and a new one until it is confirmed.

HJ 212-2025 rotates keys with CN 1014: the platform sends ``NewSK``, the
logger answers "done" and both sides switch. If the switch goes wrong on
one side (the answer is lost, the platform rolls back) a logger that had
dropped the old key could never talk to that platform again. So the new key
stays *pending* -- stored durably next to the old one -- until the platform
proves it uses it: a packet from it that opens with the new key (the CRC is
over the plain text, so a wrong key is never mistaken for a right one), or a
reply to a packet the logger encrypted with it. Until then the logger opens
packets with either key, and after a session that broke with the new key it
tries the old one for sending, and the other way round.

A key the technician puts in the config wins over what is stored: a changed
``sm4_key`` resets the ring.
"""

from __future__ import annotations

from edged.hj212.store import Outbox


class KeyRing:
    def __init__(self, outbox: Outbox, platform: str, configured: str) -> None:
        self._outbox = outbox
        self._platform = platform
        configured = configured.lower()
        if outbox.state(platform, "sk@config") != configured:
            outbox.set_state(platform, "sk", configured or None)
            outbox.set_state(platform, "sk_new", None)
            outbox.set_state(platform, "sk@config", configured)
        current = outbox.state(platform, "sk")
        pending = outbox.state(platform, "sk_new")
        self.current: bytes | None = bytes.fromhex(current) if current else None
        self.pending: bytes | None = bytes.fromhex(pending) if pending else None
        self.prefer_pending = True

    @property
    def enabled(self) -> bool:
        return self.current is not None or self.pending is not None

    def for_decrypt(self) -> list[bytes]:
        """Keys to try on an encrypted packet, the new one first."""
        return [k for k in (self.pending, self.current) if k is not None]

    def for_send(self) -> bytes | None:
        if self.pending is not None and (self.prefer_pending or self.current is None):
            return self.pending
        return self.current

    def offer(self, key: bytes, created: str) -> None:
        """A new key from the platform (CN 1014): stored before the logger says done."""
        self.pending = key
        self.prefer_pending = True
        self._outbox.set_state(self._platform, "sk_new", key.hex())
        self._outbox.set_state(self._platform, "sk_created", created)

    def confirm_if_pending(self, key: bytes | None) -> bool:
        """The platform used ``key``; if it is the pending one, it becomes the key."""
        if key is None or self.pending is None or key != self.pending:
            return False
        self.current, self.pending = self.pending, None
        self._outbox.set_state(self._platform, "sk", self.current.hex())
        self._outbox.set_state(self._platform, "sk_new", None)
        return True

    def link_broken(self) -> None:
        """A session ended with the new key unconfirmed: send with the other key next time."""
        if self.pending is not None and self.current is not None:
            self.prefer_pending = not self.prefer_pending
