"""HJ 212 (2005 read, 2017 and 2025 spoken): codec, SM4, serial analyser input and the
multi-platform uplink (一点多传), each platform in its own version (docs/HJ212.md)."""

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
