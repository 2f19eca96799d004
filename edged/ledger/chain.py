"""Canonical encoding and the hash chain. Pure: no I/O, so an inspector can re-implement it.

Each row's hash is SHA-256 over ``prev_hash ":" seq ":" canonical_json(fields)``
(UTF-8). Putting the previous hash in means a changed, removed or inserted
row breaks every hash after it; putting ``seq`` in means a row moved to
another position no longer matches (and tells where it came from).

Canonical JSON: keys sorted, no whitespace, UTF-8 (Chinese kept as is, not
``\\u`` escapes), nulls written out, no NaN/Infinity. Python's ``json`` with
those settings writes floats in shortest round-trip form, the same as
JavaScript; the ledger keeps floats to confidences in 0..1 and weights in
whole kg so no other language can disagree.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: prev_hash of the first row of every chain.
GENESIS_HASH = "0" * 64


def canonical(fields: Any) -> bytes:
    """Stable bytes for a JSON-able value: the only encoding ever hashed or stored."""
    return json.dumps(
        fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def hash_bytes(prev_hash: str, seq: int, encoded: bytes) -> str:
    """The chain step over already-encoded fields (verify uses this on stored bytes)."""
    h = hashlib.sha256(f"{prev_hash}:{seq}:".encode("ascii"))
    h.update(encoded)
    return h.hexdigest()


def row_hash(prev_hash: str, seq: int, fields: Any) -> str:
    """Hash of row ``seq`` given the previous row's hash (``GENESIS_HASH`` for the first)."""
    return hash_bytes(prev_hash, seq, canonical(fields))
