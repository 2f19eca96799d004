"""Chain-head attestations: the box signs where its ledger stands, at a time.

A hash chain shows that rows agree with each other, not that they are the rows
the box wrote: someone with a shell can rebuild a chain from edited rows, or
put an older backup back. An attestation is the device key's signature
(:mod:`edged.devicekey`) over both chains' heads (seq and hash), the time and
the previous attestation's hash. Stored in the ledger, kept beside it in
``<ledger>.attestation`` (so a restored or rebuilt database cannot take the
latest one with it) and published on MQTT as a sequence a backend archives,
each attestation lets anyone with the public key check that a ledger still
holds the attested rows unchanged (``edged ledger verify``) and was not
rolled back past it.

The signed text is canonical JSON (:func:`edged.ledger.chain.canonical`)::

    {"heads":{"audit":{"hash":…,"seq":…},"passages":{"hash":…,"seq":…}},
     "kind":"edged-ledger-attestation/1","gate":…,"key":<public key hex>,
     "n":<1, 2, …>,"prev":<sha256 hex of the previous attestation's text, or null>,
     "site":…,"time":<ISO 8601 with offset>}

and the signature is Ed25519 over its UTF-8 bytes, base64.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edged.devicekey import DeviceKey
from edged.devicekey import verify as verify_signature
from edged.ledger.chain import canonical
from edged.ledger.store import CHAINS, LedgerStore, now_iso

KIND = "edged-ledger-attestation/1"


@dataclass(frozen=True)
class Attestation:
    """One signed statement of the chain heads; ``payload`` is exactly the signed text."""

    n: int
    payload: str
    sig: str

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.payload)

    @property
    def heads(self) -> dict[str, tuple[int, str]]:
        return {c: (int(h["seq"]), str(h["hash"])) for c, h in self.body["heads"].items()}

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.payload.encode("utf-8")).hexdigest()

    def signed_by(self, public_hex: str | None = None) -> bool:
        """Signature valid under ``public_hex`` (default: the key the text names)."""
        try:
            body = self.body
        except ValueError:
            return False
        key = public_hex or body.get("key")
        if not isinstance(key, str) or body.get("key") != key or body.get("kind") != KIND:
            return False
        return verify_signature(key, self.payload.encode("utf-8"), self.sig)

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "payload": self.payload, "sig": self.sig}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attestation:
        return cls(int(data["n"]), str(data["payload"]), str(data["sig"]))


def sidecar_path(db_path: str | Path) -> Path:
    """Where the box keeps its latest attestation outside the database it attests."""
    p = Path(db_path)
    return p.with_name(p.name + ".attestation")


def attest(
    store: LedgerStore, key: DeviceKey, site: str, gate: str, time: str | None = None
) -> Attestation:
    """Sign the current heads, store the attestation in the ledger and beside it."""
    last = store.last_attestation()
    prev = Attestation(*last) if last else None
    heads = store.heads()
    body = {
        "kind": KIND,
        "site": site,
        "gate": gate,
        "n": (prev.n + 1) if prev else 1,
        "time": time or now_iso(),
        "heads": {c: {"seq": heads[c][0], "hash": heads[c][1]} for c in CHAINS},
        "key": key.public_hex,
        "prev": prev.digest if prev else None,
    }
    payload = canonical(body).decode("utf-8")
    sig = key.sign(payload.encode("utf-8"))
    n = store.append_attestation(payload, sig)
    if n != body["n"]:  # another writer attested in between: sign again with the right n
        return attest(store, key, site, gate, time)
    att = Attestation(n, payload, sig)
    write_sidecar(store.path, att)
    return att


def write_sidecar(db_path: str | Path, att: Attestation) -> None:
    path = sidecar_path(db_path)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(att.to_json(), ensure_ascii=False) + "\n", encoding="utf-8")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_known(paths: list[Path]) -> list[Attestation]:
    """Attestations from files: the sidecar (one JSON object) or a backend's archive
    (JSON Lines, one per line, as published on MQTT). Missing files give none."""
    out: list[Attestation] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        for line in text.splitlines():
            line = line.strip()
            if line:
                data = json.loads(line)
                if isinstance(data.get("payload"), dict):  # a whole MQTT envelope
                    data = data["payload"]
                out.append(Attestation.from_json(data))
    return out


def message(att: Attestation, public_hex: str) -> dict[str, Any]:
    """The MQTT payload (topic ``ledger/attestation``, durable, not retained): the signed
    text byte for byte, its signature, and the fields for convenience."""
    body = att.body
    return {
        "n": att.n,
        "time": body["time"],
        "heads": body["heads"],
        "payload": att.payload,
        "sig": att.sig,
        "public_key": public_hex,
    }
