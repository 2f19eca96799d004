"""HJ 212-2017: packet codec, serial analyser input and the multi-platform uplink (一点多传)."""

from edged.hj212.codec import Cp, Hj212Error, Packet, Reassembler, decode, encode, encode_all, split
from edged.hj212.config import Hj212Config, PlatformConfig

__all__ = [
    "Cp",
    "Hj212Config",
    "Hj212Error",
    "Packet",
    "PlatformConfig",
    "Reassembler",
    "decode",
    "encode",
    "encode_all",
    "split",
]
