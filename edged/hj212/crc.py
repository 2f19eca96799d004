"""The CRC that HJ 212 packets carry.

HJ 212 calls it CRC-16 (reflected polynomial 0xA001, start 0xFFFF), but the
reference implementation folds each byte in as ``crc = (crc >> 8) ^ byte``
before the eight shift steps -- so it is *not* CRC-16/MODBUS, and a MODBUS
routine rejects every real packet. Because the fold leaves only the low byte
set, the eight shifts depend on that byte alone, which makes a 256-entry table
exact and fast enough for a Raspberry-Pi-class board.
"""

from __future__ import annotations


def _step8(value: int) -> int:
    for _ in range(8):
        value = (value >> 1) ^ 0xA001 if value & 1 else value >> 1
    return value


_TABLE = tuple(_step8(i) for i in range(256))


def crc16(data: bytes) -> int:
    """CRC of a data segment (the bytes between the length field and the CRC)."""
    crc = 0xFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc >> 8) ^ byte]
    return crc


def crc16_hex(data: bytes) -> str:
    """The four upper-case hex digits written at the end of a packet."""
    return f"{crc16(data):04X}"
