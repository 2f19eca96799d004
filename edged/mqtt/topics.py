"""Topic tree and message envelope of the MQTT link (pure: no I/O).

One gate owns one subtree ``<prefix>/<site>/<gate>/...``. Site and gate are
always the 2nd and 3rd levels so a backend can subscribe to a whole fleet with
one wildcard (``<prefix>/+/+/passage``) or share the load between workers with
``$share/<group>/<prefix>/+/+/passage``; nothing here depends on MQTT 5
features, so the same tree works on 3.1.1 brokers.

Every message is a JSON envelope carrying a unique ``id`` (to drop the
duplicates QoS 1 allows) and the gate's ``seq`` (to detect gaps), so a
consumer never has to trust the broker to be exactly-once.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from edged import sitetime

ENVELOPE_VERSION = 1

#: Kinds a daemon may publish, mapped to their topic suffix.
PUBLISH_KINDS: dict[str, str] = {
    "passage": "passage",
    "status": "status",
    "events": "events",
    "sensors": "sensors",
    "ledger_head": "ledger/head",
    "attestation": "ledger/attestation",
    "in_plant": "in_plant",
    "alert_level": "alert_level",
    "device_key": "device_key",
}

#: Kinds the link publishes itself.
INTERNAL_KINDS: dict[str, str] = {"availability": "availability", "reply": "cmd"}

_LEVEL_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}(/[A-Za-z0-9_.-]{1,64}){0,3}$")


def check_level(name: str, value: str) -> str:
    """A topic level must not contain wildcards, ``/`` or a leading ``$``.

    Those characters would silently change which subscriptions match (or make
    the broker refuse the publish), so they are rejected up front.
    """
    if not isinstance(value, str) or not _LEVEL_RE.match(value):
        raise ValueError(
            f"{name}: expected 1-64 characters from A-Z a-z 0-9 _ . - (no '/', '+', '#', '$'),"
            f" found {value!r}"
        )
    return value


def check_prefix(value: str) -> str:
    if not isinstance(value, str) or not _PREFIX_RE.match(value):
        raise ValueError(
            "prefix: expected 1-4 topic levels of A-Z a-z 0-9 _ . - separated by '/',"
            f" found {value!r}"
        )
    return value


@dataclass(frozen=True)
class Topics:
    """The topic names of one gate."""

    prefix: str
    site: str
    gate: str

    def __post_init__(self) -> None:
        check_prefix(self.prefix)
        check_level("site", self.site)
        check_level("gate", self.gate)

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.site}/{self.gate}"

    @property
    def passage(self) -> str:
        return f"{self.base}/passage"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def ledger_head(self) -> str:
        return f"{self.base}/ledger/head"

    def sensors(self, device: str) -> str:
        return f"{self.base}/sensors/{check_level('device', device)}"

    def cmd(self, name: str) -> str:
        return f"{self.base}/cmd/{check_level('command', name)}"

    def cmd_reply(self, name: str) -> str:
        return f"{self.cmd(name)}/reply"

    @property
    def cmd_subscription(self) -> str:
        """One filter for all commands; ``+`` does not match the ``/reply`` level."""
        return f"{self.base}/cmd/+"

    def for_kind(self, kind: str, subtopic: str | None = None) -> str:
        """Topic of a message kind the daemon publishes."""
        if kind == "sensors":
            if not subtopic:
                raise ValueError("subtopic: sensors messages need the device name, found none")
            return self.sensors(subtopic)
        if kind == "reply":
            if not subtopic:
                raise ValueError("subtopic: replies need the command name, found none")
            return self.cmd_reply(subtopic)
        if kind not in PUBLISH_KINDS:
            raise ValueError(
                f"kind: expected one of {', '.join(sorted(PUBLISH_KINDS))}, found {kind!r}"
            )
        if subtopic is not None:
            return f"{self.base}/{PUBLISH_KINDS[kind]}/{check_level('subtopic', subtopic)}"
        return f"{self.base}/{PUBLISH_KINDS[kind]}"

    def command_name(self, topic: str) -> str | None:
        """Name of the command a topic addresses, or None if it is not ours."""
        head = f"{self.base}/cmd/"
        if not topic.startswith(head):
            return None
        rest = topic[len(head) :]
        if not rest or "/" in rest:
            return None
        return rest


def new_id() -> str:
    return str(uuid.uuid4())


def now_iso() -> str:
    """Site time with its UTC offset: readable at the plant, unambiguous at the backend."""
    return sitetime.now_iso()


def build_envelope(
    *,
    msg_id: str,
    seq: int,
    ts: str,
    site: str,
    gate: str,
    type: str,
    payload: Any,
) -> dict[str, Any]:
    return {
        "v": ENVELOPE_VERSION,
        "id": msg_id,
        "seq": seq,
        "ts": ts,
        "site": site,
        "gate": gate,
        "type": type,
        "payload": payload,
    }


def encode(envelope: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON: plates are Chinese, escaping them would only cost bytes."""
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode(data: bytes) -> dict[str, Any]:
    """Parse an envelope (used by tests, the bench and backend examples)."""
    obj = json.loads(data.decode("utf-8"))
    if not isinstance(obj, dict) or "id" not in obj or "seq" not in obj:
        raise ValueError("not an edged envelope: expected a JSON object with id and seq")
    return obj
