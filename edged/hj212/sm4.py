"""SM4 encryption of the CP area, as HJ 212-2025 lays it out -- pure, no I/O.

What the standard says (§6.4.2 and Appendix A.2, as quoted by two
independent peer implementations; see docs/HJ212.md):

* SM4, 16-byte (128-bit) key, ECB mode, "Nopadding", over the characters
  between ``CP=&&`` and the closing ``&&`` of the data segment;
* the CP text is cut into groups of 16; every whole group is encrypted, the
  part shorter than 16 at the end **stays plain text** (that is what
  "Nopadding" means there: no zero or PKCS#7 padding is added);
* the CRC is computed over the plain data segment first, then the CP area is
  encrypted -- so a receiver decrypts, then checks the CRC, and a wrong key
  shows up as a CRC mismatch;
* the encrypted bytes are written as ``{0xE4,0x3E,...}`` (upper-case, comma
  separated, in braces) followed by the plain tail, e.g.
  ``CP=&&{0xE4,...,0xA4}g=N&&``.

Groups are 16 *bytes* of the UTF-8 text: for the ASCII that CP areas carry
this is the standard's "16 characters"; for Chinese free text it keeps the
cipher well defined (a tail may end inside a character, which is why the
codec decrypts before it decodes text).

Which commands: 2000-2999 (data), 1014 (key update) and 3020 (logger
information). Everything else (9011..9015 replies, 1001/1002 identity,
1011/1012 time, ...) travels in plain text.
"""

from __future__ import annotations

import re

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16
KEY_BYTES = 16

_WIRE_RE = re.compile(rb"\{((?:0[xX][0-9A-Fa-f]{2},)*0[xX][0-9A-Fa-f]{2})\}")


class Sm4Error(ValueError):
    """A key or an encrypted CP area that cannot be used, with why."""


def applies(cn: str) -> bool:
    """Whether HJ 212-2025 encrypts the CP of this command (2000-2999, 1014, 3020)."""
    if not cn.isdigit():
        return False
    return 2000 <= int(cn) <= 2999 or cn in ("1014", "3020")


def parse_key(text: str) -> bytes:
    """A 16-byte key from 32 hex digits (how platforms hand keys out)."""
    cleaned = text.strip()
    if not re.fullmatch(r"[0-9A-Fa-f]{32}", cleaned):
        raise Sm4Error(
            f"an SM4 key is 32 hex digits (16 bytes), found {len(cleaned)} characters"
            + ("" if re.fullmatch(r"[0-9A-Fa-f]*", cleaned) else " with non-hex ones")
        )
    return bytes.fromhex(cleaned)


def _check_key(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise Sm4Error(f"an SM4 key is {KEY_BYTES} bytes, found {len(key)}")


def _ecb(key: bytes, data: bytes, encrypt: bool) -> bytes:
    _check_key(key)
    cipher = Cipher(algorithms.SM4(key), modes.ECB())
    ctx = cipher.encryptor() if encrypt else cipher.decryptor()
    return ctx.update(data) + ctx.finalize()


def encrypt(plain: bytes, key: bytes) -> tuple[bytes, bytes]:
    """(cipher bytes of the whole 16-byte groups, plain tail shorter than 16)."""
    whole = len(plain) - len(plain) % BLOCK
    return _ecb(key, plain[:whole], True) if whole else b"", plain[whole:]


def looks_encrypted(region: bytes) -> bool:
    """Whether a CP area starts with the ``{0x..`` form of encrypted bytes."""
    return region[:3] in (b"{0x", b"{0X")


def encrypt_region(plain: bytes, key: bytes) -> bytes:
    """The CP area as it goes on the wire: ``{0x..,..}`` then the plain tail."""
    body, tail = encrypt(plain, key)
    if not body:
        _check_key(key)
        return tail
    return b"{" + b",".join(b"0x%02X" % b for b in body) + b"}" + tail


def decrypt_region(wire: bytes, key: bytes) -> bytes:
    """Inverse of :func:`encrypt_region`; a CP without ``{0x`` is returned as is."""
    if not looks_encrypted(wire):
        _check_key(key)
        return wire
    match = _WIRE_RE.match(wire)
    if match is None:
        raise Sm4Error("encrypted CP is not {0xNN,0xNN,...} followed by plain text")
    body = bytes(int(item[2:], 16) for item in match.group(1).split(b","))
    if len(body) % BLOCK:
        raise Sm4Error(f"encrypted CP holds {len(body)} bytes, not a multiple of {BLOCK}")
    tail = wire[match.end() :]
    if len(tail) >= BLOCK:
        raise Sm4Error(
            f"{len(tail)} plain bytes after the encrypted ones; the standard leaves"
            f" fewer than {BLOCK} in plain text"
        )
    return _ecb(key, body, False) + tail


def wire_length(plain_len: int) -> int:
    """Bytes the CP area takes on the wire once encrypted (5 per encrypted byte + braces)."""
    whole = plain_len - plain_len % BLOCK
    return (5 * whole + 1 if whole else 0) + plain_len % BLOCK
