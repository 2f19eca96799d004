"""The packets this logger sends one platform: MN, password, system code, Flag, QN, SM4.

Both the session (:mod:`edged.hj212.platform_link`) and the answers to
platform commands (:mod:`edged.hj212.platform_commands`) build packets, and
the MN a platform assigns (CN 1002) must change them all at once, so how a
packet to this platform looks is decided here, in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from edged.hj212 import sm4
from edged.hj212.codec import (
    FLAG_REPLY,
    Cp,
    Hj212Error,
    Packet,
    encode,
    encode_all,
    make_qn,
    version_flag,
)
from edged.hj212.config import PlatformConfig
from edged.hj212.keys import KeyRing


class Outgoing:
    """Builds and encodes this logger's packets for one platform."""

    def __init__(
        self,
        cfg: PlatformConfig,
        keys: KeyRing,
        mn: str,
        site_now: Callable[[], datetime],
        split: bool,
        log: Any,
    ) -> None:
        """``mn``: what the platform knows the logger by (it may assign another, CN 1002);
        ``split``: split data over 1024 bytes into sub-packets, else refuse it."""
        self.cfg = cfg
        self.keys = keys
        self.mn = mn
        self.v2025 = cfg.version == "2025"
        self.version_bits = version_flag(cfg.version)
        self._site_now = site_now
        self._split = split
        self._last_qn: datetime | None = None
        self.log = log

    def next_qn(self) -> str:
        """Unique per link even if the clock stands still or is set backwards."""
        now = self._site_now()
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

    def encode(self, packet: Packet) -> tuple[list[bytes], bytes | None]:
        """Wire chunks and the SM4 key used. Data over 1024 bytes is split into PNUM/PNO
        sub-packets, or with ``split_mode = "refuse"`` raises :class:`Hj212Error`."""
        key = self.keys.for_send() if self.v2025 and sm4.applies(packet.cn) else None
        if not self._split:
            return [encode(packet, sm4_key=key)], key
        return encode_all(packet, sm4_key=key), key

    def too_long(self, packet: Packet, exc: Hj212Error) -> None:
        """A packet refused by ``split_mode = "refuse"``: said, never silently lost."""
        self.log.warning(
            "hj212_packet_too_long",
            cn=packet.cn,
            data_time=packet.cp.params.get("DataTime"),
            reason=exc.reason,
            hint='not sent to this platform (split_mode = "refuse" in [hj212]); set split_mode'
            ' = "split" if the platform reassembles PNUM/PNO sub-packets, or send fewer factors',
        )
