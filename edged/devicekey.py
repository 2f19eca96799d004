"""The box's own signing key (Ed25519): it vouches for what the box wrote.

The ledger's hash chain proves rows were not changed *relative to each
other*; someone with a shell can still rebuild the whole chain or put an
older copy back. A signature by a key only this box holds, over the chain
heads at a given time (an attestation), pins the ledger down: a backend that
archives the attestations can tell a rebuilt or rolled-back ledger from the
real one. Signed USB exports use the same key.

The private key lives in one file under the data directory, created once
(``edged key create``, or the daemon's first start), mode 0600 in a 0700
folder, so only the service user (and root) can read it. It never leaves the
box; ``edged key show`` prints the public key to register with the backend.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_FILE = Path("keys") / "device-ed25519.pem"
"""Where the key lives, relative to ``daemon.data_dir``."""


class DeviceKeyError(Exception):
    """The key file is missing, unreadable or not an Ed25519 key; the message says which."""


@dataclass(frozen=True)
class DeviceKey:
    """A loaded private key and what others need to check its signatures."""

    path: Path
    private: Ed25519PrivateKey

    @property
    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def public_hex(self) -> str:
        """The 32-byte public key as 64 hex digits: what a backend registers per box."""
        return self.public_raw.hex()

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the raw public key, first 16 hex digits: short enough to read aloud."""
        return hashlib.sha256(self.public_raw).hexdigest()[:16]

    def sign(self, data: bytes) -> str:
        """Ed25519 signature of ``data``, base64 (standard alphabet, padded)."""
        return base64.b64encode(self.private.sign(data)).decode("ascii")


def key_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / KEY_FILE


def create(path: str | Path) -> tuple[DeviceKey, bool]:
    """Load the key at ``path``, or make it if there is none; returns (key, created).

    Idempotent: an existing key is never replaced (a new key would orphan every
    attestation the backend holds). The file is written with O_EXCL at mode
    0600 in a 0700 folder, so it is never readable by others, not even briefly.
    """
    path = Path(path)
    if path.exists():
        return load(path), False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use that one
        return load(path), False
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    return load(path), True


def load(path: str | Path) -> DeviceKey:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DeviceKeyError(
            f"device key {path} not found: run `edged key create` (the daemon makes it on"
            " its first start)"
        ) from None
    except PermissionError:
        raise DeviceKeyError(
            f"device key {path}: permission denied; run as the service user (edged) or root"
        ) from None
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise DeviceKeyError(
            f"device key {path} is readable by others (mode {mode:o}): anyone on the box"
            f" could sign as it. Run `chmod 600 {path}` and consider the key exposed"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError as exc:
        raise DeviceKeyError(f"device key {path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise DeviceKeyError(f"device key {path}: expected an Ed25519 key")
    return DeviceKey(path, key)


def verify(public_hex: str, data: bytes, signature_b64: str) -> bool:
    """Does ``signature_b64`` sign ``data`` under the raw public key ``public_hex``?"""
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        public.verify(base64.b64decode(signature_b64, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True


# -- edged key create|show ----------------------------------------------------------------


def _data_dir(args: argparse.Namespace) -> Path:
    if args.data_dir:
        return Path(args.data_dir)
    from edged.config.load import load_config

    return Path(load_config(getattr(args, "config", None)).daemon.data_dir)


def _create(args: argparse.Namespace) -> int:
    try:
        key, made = create(key_path(_data_dir(args)))
    except (DeviceKeyError, OSError) as exc:
        print(f"edged: {exc}", file=sys.stderr)
        return 1
    print(("created" if made else "exists:") + f" {key.path}")
    print(f"public key {key.public_hex} (fingerprint {key.fingerprint})")
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        key = load(key_path(_data_dir(args)))
    except (DeviceKeyError, OSError) as exc:
        print(f"edged: {exc}", file=sys.stderr)
        return 1
    if args.pem:
        print(
            key.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii"),
            end="",
        )
    else:
        print(f"public key {key.public_hex} (fingerprint {key.fingerprint})")
    return 0


def register(sub: Any) -> None:
    """``edged key create|show``."""
    p = sub.add_parser("key", help="the box's Ed25519 signing key (attestations, exports)")
    ks = p.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    for name, func, text in (
        ("create", _create, "make the key if there is none (idempotent), print its public key"),
        ("show", _show, "print the public key to register with the backend"),
    ):
        q = ks.add_parser(name, help=text)
        q.add_argument("--data-dir", help="data directory (default: daemon.data_dir)")
        if name == "show":
            q.add_argument("--pem", action="store_true", help="print it as a PEM public key")
        q.set_defaults(func=func)
