"""Signed commands from the backend: verify, validate, then (and only then) act.

Broker ACLs are often wrong in the field, so being able to publish on
``.../cmd/open`` must never be enough to open a barrier. Every command carries
an HMAC-SHA256 over a canonical string that binds site, gate, command name,
timestamp, nonce, actor and parameters; stale timestamps and reused nonces are
refused, so a recorded command cannot be replayed to this or another gate.

This module is pure apart from the nonce store it is given: it turns a raw
MQTT payload into either accepted ``(params, actor)`` or a refusal with a
machine-readable ``error`` code and a human ``detail``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

CANONICAL_TAG = "edged-cmd-v1"

# ---------------------------------------------------------------------------
# A small JSON-Schema subset validator (type, required, properties,
# additionalProperties, enum, min/maxLength, pattern, minimum/maximum,
# items, min/maxItems). Enough for command parameters, and the schemas stay
# real JSON Schema a backend can reuse.
# ---------------------------------------------------------------------------

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _kind(value: Any) -> str:
    for name in ("boolean", "integer", "number", "string", "array", "object", "null"):
        if _TYPES[name](value):
            return name
    return type(value).__name__


def validate(value: Any, schema: dict[str, Any], path: str = "params") -> list[str]:
    """Every way ``value`` breaks ``schema``, as ``path: expected ..., found ...``."""
    errors: list[str] = []
    want = schema.get("type")
    if want is not None:
        wants = want if isinstance(want, list) else [want]
        if not any(_TYPES[w](value) for w in wants):
            return [f"{path}: expected {' or '.join(wants)}, found {_kind(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(json.dumps(e, ensure_ascii=False) for e in schema["enum"])
        found = json.dumps(value, ensure_ascii=False)
        errors.append(f"{path}: expected one of {allowed}, found {found}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(
                f"{path}: expected at least {schema['minLength']} characters, found {len(value)}"
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(
                f"{path}: expected at most {schema['maxLength']} characters, found {len(value)}"
            )
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: expected to match {schema['pattern']}, found {value!r}")
    if _TYPES["number"](value):
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(f"{path}: expected a finite number, found {value}")
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: expected >= {schema['minimum']}, found {value}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: expected <= {schema['maximum']}, found {value}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(
                f"{path}: expected at least {schema['minItems']} items, found {len(value)}"
            )
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(
                f"{path}: expected at most {schema['maxItems']} items, found {len(value)}"
            )
        if "items" in schema:
            for i, item in enumerate(value):
                errors.extend(validate(item, schema["items"], f"{path}[{i}]"))
                if len(errors) > 20:
                    break
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}.{key}: required, missing")
        for key, item in value.items():
            if key in props:
                errors.extend(validate(item, props[key], f"{path}.{key}"))
            elif schema.get("additionalProperties", True) is False:
                errors.append(
                    f"{path}.{key}: unknown field (allowed: {', '.join(props) or 'none'})"
                )
    return errors


# ---------------------------------------------------------------------------
# Command schemas
# ---------------------------------------------------------------------------

_PLATE = {"type": "string", "minLength": 6, "maxLength": 10, "pattern": r"^\S+$"}
_COLOUR = {"type": "string", "enum": ["blue", "yellow", "green", "yellow_green", "white", "black"]}
_DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
_DATETIME = {
    "type": "string",
    "pattern": r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$",
}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 500}
_LANE = {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,64}$"}
_TAGS = {
    "type": "array",
    "maxItems": 8,
    "items": {"type": "string", "minLength": 1, "maxLength": 64},
}

# Every property listed here is honoured by the gate (``parse_items`` maps it
# onto a registry field); anything else is refused, never accepted and dropped:
# a signed field the gate ignored would be a promise it did not keep. Field
# names are the passages' own (plate_colour, registered_on, fleet, rfid_tags,
# valid_until): one name per concept across the whole contract.
VEHICLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    # fuel: the registry refuses a vehicle without one (the policy decides on it)
    "required": ["plate", "plate_colour", "fuel"],
    "properties": {
        "plate": _PLATE,
        "plate_colour": _COLOUR,
        "vin": {"type": "string", "pattern": r"^[A-HJ-NPR-Z0-9]{17}$"},
        "registered_on": _DATE,
        "brand_model": {"type": "string", "maxLength": 100},
        "vehicle_type": {"type": "string", "maxLength": 50},
        "vehicle_class": {"type": "string", "maxLength": 50},
        "fuel": {
            "type": "string",
            "enum": ["diesel", "petrol", "gas", "electric", "hybrid", "hydrogen"],
        },
        "emission_stage": {
            "type": "string",
            # the passages' own form (国5, 国6b) or the bare stage
            "enum": [
                *("国0", "国1", "国2", "国3", "国4", "国5", "国6a", "国6b"),
                *("0", "1", "2", "3", "4", "5", "6", "6a", "6b"),
            ],
        },
        "hazardous": {"type": "boolean"},
        "fleet": {"type": "string", "maxLength": 100},
        "engine_no": {"type": "string", "maxLength": 32},
        "cargo": {"type": "string", "maxLength": 32},
        "rfid_tags": _TAGS,
        "valid_until": _DATETIME,
    },
    "additionalProperties": False,
}

# Non-road machinery (非道路移动机械); its stage is 国1..国4 (国一..国四), bare 1..4, or x (none).
MACHINE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["registry_no"],
    "properties": {
        "registry_no": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^\S+$"},
        "env_code": {"type": "string", "maxLength": 64},
        "machine_type": {"type": "string", "maxLength": 50},
        "emission_stage": {
            "type": "string",
            "enum": ["x", *("国1", "国2", "国3", "国4"), *("1", "2", "3", "4")],
        },
        "made_on": _DATE,
        "fuel": {
            "type": "string",
            "enum": ["diesel", "petrol", "gas", "electric", "hybrid", "hydrogen"],
        },
        "owner": {"type": "string", "maxLength": 100},
        "plate": _PLATE,
        "rfid_tags": _TAGS,
        "valid_until": _DATETIME,
    },
    "additionalProperties": False,
}

BLACKLIST_ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["plate", "reason"],
    "properties": {
        "plate": _PLATE,
        "reason": _TEXT,
        "source": {"type": "string", "maxLength": 100},
        "valid_from": _DATETIME,
        "valid_until": _DATETIME,
    },
    "additionalProperties": False,
}

#: Earlier names of list-item fields, still accepted and renamed before the
#: schema check; the reply's ``detail`` says which were used. Backends written
#: against the first contract keep working while they move to the new names.
DEPRECATED_FIELDS: dict[str, dict[str, str]] = {
    "vehicles": {
        "plate_color": "plate_colour",
        "registered": "registered_on",
        "rfid": "rfid_tags",
    },
    "entries": {"until": "valid_until"},
}
_ITEMS_OF = {
    "registry_upsert": "vehicles",
    "registry_replace": "vehicles",
    "blacklist_upsert": "entries",
}

_PLATES = {"type": "array", "minItems": 1, "maxItems": 10000, "items": _PLATE}
_VEHICLES = {"type": "array", "minItems": 1, "maxItems": 10000, "items": VEHICLE_SCHEMA}

SCHEMAS: dict[str, dict[str, Any]] = {
    "registry_upsert": {
        "type": "object",
        "required": ["vehicles"],
        "properties": {"vehicles": _VEHICLES},
        "additionalProperties": False,
    },
    "registry_delete": {
        "type": "object",
        "required": ["plates"],
        "properties": {"plates": _PLATES},
        "additionalProperties": False,
    },
    "registry_replace": {
        "type": "object",
        "required": ["vehicles", "version"],
        "properties": {
            "vehicles": {"type": "array", "maxItems": 200000, "items": VEHICLE_SCHEMA},
            "version": {"type": "string", "minLength": 1, "maxLength": 64},
        },
        "additionalProperties": False,
    },
    "blacklist_upsert": {
        "type": "object",
        "required": ["entries"],
        "properties": {
            "entries": {
                "type": "array",
                "minItems": 1,
                "maxItems": 10000,
                "items": BLACKLIST_ENTRY_SCHEMA,
            }
        },
        "additionalProperties": False,
    },
    "blacklist_delete": {
        "type": "object",
        "required": ["plates"],
        "properties": {"plates": _PLATES},
        "additionalProperties": False,
    },
    "plant_vehicles_upsert": {
        "type": "object",
        "required": ["vehicles"],
        "properties": {"vehicles": _VEHICLES},
        "additionalProperties": False,
    },
    "plant_vehicles_delete": {
        "type": "object",
        "required": ["plates"],
        "properties": {"plates": _PLATES},
        "additionalProperties": False,
    },
    "machinery_upsert": {
        "type": "object",
        "required": ["machines"],
        "properties": {
            "machines": {"type": "array", "minItems": 1, "maxItems": 10000, "items": MACHINE_SCHEMA}
        },
        "additionalProperties": False,
    },
    "machinery_delete": {
        "type": "object",
        "required": ["registry_nos"],
        "properties": {
            "registry_nos": {
                "type": "array",
                "minItems": 1,
                "maxItems": 10000,
                "items": MACHINE_SCHEMA["properties"]["registry_no"],
            }
        },
        "additionalProperties": False,
    },
    "cargo": {
        "type": "object",
        "required": ["cargo", "valid_until"],
        "properties": {
            "plate": _PLATE,
            "tag": {"type": "string", "minLength": 1, "maxLength": 64},
            "cargo": {"type": "string", "minLength": 1, "maxLength": 32},
            "valid_from": _DATETIME,
            "valid_until": _DATETIME,
            "uses": {"type": "integer", "minimum": 1, "maximum": 1000},
        },
        "additionalProperties": False,
    },
    "approval": {
        "type": "object",
        "required": ["plate", "applicant", "approver", "reason", "valid_from", "valid_until"],
        "properties": {
            "approval_id": {"type": "string", "minLength": 1, "maxLength": 64},
            "plate": _PLATE,
            "applicant": _TEXT,
            "approver": _TEXT,
            "reason": _TEXT,
            "valid_from": _DATETIME,
            "valid_until": _DATETIME,
            "direction": {"type": "string", "enum": ["in", "out", "any"]},
            "uses": {"type": "integer", "minimum": 1, "maximum": 100},
            "approved_at": _DATETIME,
        },
        "additionalProperties": False,
    },
    "open": {
        "type": "object",
        "required": ["reason"],
        "properties": {
            "reason": _TEXT,
            "direction": {"type": "string", "enum": ["in", "out"]},
            "plate": _PLATE,
            "hold_s": {"type": "integer", "minimum": 1, "maximum": 120},
            "lane": _LANE,
            "cargo": {"type": "string", "minLength": 1, "maxLength": 32},
        },
        "additionalProperties": False,
    },
    "alert_level": {
        "type": "object",
        "required": ["level"],
        "properties": {
            "level": {"type": "string", "enum": ["none", "blue", "yellow", "orange", "red"]},
            "reason": {"type": "string", "maxLength": 500},
            "valid_from": _DATETIME,
            "valid_until": _DATETIME,
        },
        "additionalProperties": False,
    },
    "resend": {
        "type": "object",
        "required": ["from_seq", "to_seq"],
        "properties": {
            "from_seq": {"type": "integer", "minimum": 1},
            "to_seq": {"type": "integer", "minimum": 1},
            "kind": {"type": "string", "enum": ["passage"]},
        },
        "additionalProperties": False,
    },
    "ping": {
        "type": "object",
        "properties": {"echo": {"type": "string", "maxLength": 200}},
        "additionalProperties": False,
    },
    "correct": {
        "type": "object",
        "required": ["seq", "reason"],
        "properties": {
            "seq": {"type": "integer", "minimum": 1},
            "reason": _TEXT,
            "plate": _PLATE,
            "plate_colour": _COLOUR,
            "direction": {"type": "string", "enum": ["in", "out"]},
            "cargo": {"type": "string", "minLength": 1, "maxLength": 32},
            "weight_kg": {"type": "integer", "minimum": 0, "maximum": 200000},
        },
        "additionalProperties": False,
    },
}

MAX_RESEND_RANGE = 100_000


def _extra_checks(name: str, params: dict[str, Any]) -> list[str]:
    """Rules across fields that a schema cannot say."""
    if name == "resend":
        lo, hi = params["from_seq"], params["to_seq"]
        if hi < lo:
            return [f"params.to_seq: expected >= from_seq ({lo}), found {hi}"]
        if hi - lo + 1 > MAX_RESEND_RANGE:
            return [
                f"params.to_seq: range expected at most {MAX_RESEND_RANGE} rows,"
                f" found {hi - lo + 1}"
            ]
    if name == "cargo" and ("plate" in params) == ("tag" in params):
        found = "both" if "plate" in params else "neither"
        return [
            f"params.plate, params.tag: expected a plate or a waybill card's tag, found {found}"
        ]
    if name in ("approval", "alert_level", "cargo"):
        a, b = params.get("valid_from"), params.get("valid_until")
        if a and b and b < a:
            return [f"params.valid_until: expected after valid_from ({a}), found {b}"]
    return []


def upgrade(name: str, params: dict[str, Any]) -> tuple[dict[str, Any], list[str], list[str]]:
    """Rename deprecated item fields of ``name``'s params to today's names.

    Returns the params as the schema expects them, the old names that were
    used (for the deprecation note) and problems (an old and a new name for
    the same field in one item). Items without old names are not copied.
    """
    key = _ITEMS_OF.get(name)
    items = params.get(key) if key else None
    if not isinstance(items, list):
        return params, [], []
    renames = DEPRECATED_FIELDS[key]
    used: dict[str, None] = {}
    problems: list[str] = []
    out: list[Any] = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and not renames.keys().isdisjoint(item):
            item = dict(item)
            for old, new in renames.items():
                if old not in item:
                    continue
                if new in item:
                    problems.append(
                        f"params.{key}[{i}].{old}: the old name of {new}, which is given too;"
                        f" send only {new}"
                    )
                value = item.pop(old)
                item[new] = [value] if new == "rfid_tags" and isinstance(value, str) else value
                used[old] = None
        out.append(item)
    if not used:
        return params, [], problems
    return {**params, key: out}, list(used), problems


def deprecation_note(name: str, old_names: list[str]) -> str:
    """The reply's ``detail`` when a command used old field names."""
    renames = DEPRECATED_FIELDS[_ITEMS_OF[name]]
    pairs = ", ".join(f"{old} (now {renames[old]})" for old in old_names)
    return f"deprecated field names accepted: {pairs}; send the new names (docs/MQTT.md)"


COMMAND_NAMES: tuple[str, ...] = tuple(SCHEMAS)

#: Commands that carry lists (thousands of records): too big to check on the
#: network thread, so they are verified one at a time on their own worker.
BULK_COMMANDS: frozenset[str] = frozenset(
    {
        "registry_upsert",
        "registry_delete",
        "registry_replace",
        "blacklist_upsert",
        "blacklist_delete",
        "plant_vehicles_upsert",
        "plant_vehicles_delete",
        "machinery_upsert",
        "machinery_delete",
    }
)

#: Largest payload accepted per command, checked on the raw bytes before any
#: parsing. Each is a few times the largest valid command (every text at its
#: maximum length, written with ``\u`` escapes), so a real command always
#: fits and a hostile one costs at most this much to look at.
#: ``registry_replace`` takes ``cmd_max_bytes`` from the config instead.
MAX_BYTES: dict[str, int] = {
    "ping": 4 * 1024,
    "open": 16 * 1024,
    "alert_level": 8 * 1024,
    "resend": 4 * 1024,
    "cargo": 4 * 1024,
    "correct": 8 * 1024,
    "approval": 32 * 1024,
    "registry_delete": 1024 * 1024,
    "blacklist_delete": 1024 * 1024,
    "plant_vehicles_delete": 1024 * 1024,
    "machinery_delete": 1024 * 1024,
    "registry_upsert": 8 * 1024 * 1024,
    "blacklist_upsert": 8 * 1024 * 1024,
    "plant_vehicles_upsert": 8 * 1024 * 1024,
    "machinery_upsert": 8 * 1024 * 1024,
}
#: A name that is no command gets the smallest cap: it is refused anyway.
UNKNOWN_MAX_BYTES = 4 * 1024

#: Most JSON containers (``[`` or ``{``) a command may hold: the envelope, its
#: params and one per list item. Counted on the raw bytes (C speed) before
#: parsing, because a few MB of ``[],[],…`` become millions of Python objects
#: and hundreds of MB while ``json.loads`` runs. Brackets inside strings are
#: counted too, which only makes the bound looser.
_SMALL_CONTAINERS = 32
_LIST_ITEMS = {
    "registry_upsert": 10000,
    "registry_delete": 0,
    "registry_replace": 200000,
    "blacklist_upsert": 10000,
    "blacklist_delete": 0,
    "plant_vehicles_upsert": 10000,
    "plant_vehicles_delete": 0,
    "machinery_upsert": 10000,
    "machinery_delete": 0,
}


def max_bytes(name: str, bulk_max: int) -> int:
    """The payload cap for command ``name``; ``bulk_max`` is ``cmd_max_bytes``."""
    if name == "registry_replace":
        return bulk_max
    return min(MAX_BYTES.get(name, UNKNOWN_MAX_BYTES), bulk_max)


def max_containers(name: str) -> int:
    return _SMALL_CONTAINERS + 2 * _LIST_ITEMS.get(name, 0)


#: The signed command around its params, as the verifier checks it (``sig`` is
#: checked for presence first, to answer ``unsigned``).
ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["ts", "nonce", "actor", "params"],
    "properties": {
        "id": {"type": "string", "maxLength": 64},
        "ts": {"type": "integer", "minimum": 0},
        "nonce": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{16,64}$"},
        "actor": {"type": "string", "minLength": 1, "maxLength": 100},
        "params": {"type": "object"},
        "sig": {"type": "string", "maxLength": 128},
    },
    "additionalProperties": False,
}

_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_ENVELOPE_KEYS = frozenset(ENVELOPE_SCHEMA["properties"])


def _envelope_ok(body: dict[str, Any]) -> bool:
    """``ENVELOPE_SCHEMA`` written out: the check runs for every arriving message, and the
    generic validator is ten times slower. On False, ``validate`` says what is wrong."""
    ts, nonce, actor = body.get("ts"), body.get("nonce"), body.get("actor")
    cmd_id, sig = body.get("id", ""), body.get("sig")
    return (
        _ENVELOPE_KEYS.issuperset(body)
        and type(ts) is int
        and ts >= 0
        and isinstance(nonce, str)
        and _NONCE_RE.fullmatch(nonce) is not None
        and isinstance(actor, str)
        and 1 <= len(actor) <= 100
        and isinstance(body.get("params"), dict)
        and isinstance(sig, str)
        and len(sig) <= 128
        and isinstance(cmd_id, str)
        and len(cmd_id) <= 64
    )


_ID_MAX = 64
_ACTOR_MAX = 100


def _printable(text: str) -> bool:
    return text.isprintable()


def identity(body: dict[str, Any]) -> dict[str, Any]:
    """The envelope's ``id``, ``nonce`` and ``actor`` if they are within their limits.

    Only these are ever echoed in a reply or written to a log or the event
    log; a value over its limit (or with control characters) is replaced by
    None / ``"unknown"``, so a 5 MB ``id`` costs nothing downstream.
    """
    cmd_id, nonce, actor = body.get("id"), body.get("nonce"), body.get("actor")
    return {
        "cmd_id": cmd_id
        if isinstance(cmd_id, str) and len(cmd_id) <= _ID_MAX and _printable(cmd_id)
        else None,
        "nonce": nonce if isinstance(nonce, str) and _NONCE_RE.fullmatch(nonce) else None,
        "actor": actor
        if isinstance(actor, str) and 0 < len(actor) <= _ACTOR_MAX and _printable(actor)
        else "unknown",
    }


# ---------------------------------------------------------------------------
# Signing
# ---------------------------------------------------------------------------


def canonical_params(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_string(
    site: str, gate: str, name: str, ts: int, nonce: str, actor: str, params: dict[str, Any]
) -> str:
    """The exact text that is signed; docs/MQTT.md shows it for backend developers."""
    return "\n".join(
        [CANONICAL_TAG, site, gate, name, str(ts), nonce, actor, canonical_params(params)]
    )


def sign(key: str, canonical: str) -> str:
    return hmac.new(key.encode("utf-8"), canonical.encode("utf-8"), hashlib.sha256).hexdigest()


def make_command(
    key: str,
    site: str,
    gate: str,
    name: str,
    params: dict[str, Any],
    *,
    actor: str,
    ts: int | None = None,
    nonce: str | None = None,
    cmd_id: str | None = None,
) -> dict[str, Any]:
    """Build a signed command (what a backend sends; used by tests and tools)."""
    import secrets
    import uuid

    ts = int(time.time()) if ts is None else ts
    nonce = nonce or secrets.token_hex(16)
    body: dict[str, Any] = {
        "id": cmd_id or str(uuid.uuid4()),
        "ts": ts,
        "nonce": nonce,
        "actor": actor,
        "params": params,
    }
    body["sig"] = sign(key, canonical_string(site, gate, name, ts, nonce, actor, params))
    return body


# ---------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------


class NonceStore(Protocol):
    """Durable memory of the nonces of accepted commands (see ``Outbox.claim_nonce``).

    ``claim_nonce`` answers ``"new"`` (remembered now), ``"seen"`` (a replay)
    or ``"too_old"`` (``ts`` lies more than ``horizon_s`` before the newest
    command ever accepted, so its nonce may have been forgotten: refused).
    Age is measured against signed timestamps, never the gate's clock, so
    stepping the clock cannot make a used nonce forgotten.
    """

    def claim_nonce(self, nonce: str, ts: int, horizon_s: float) -> str: ...


#: Errors decided before a command's nonce is used: they come from anyone who
#: can publish on the broker, so they are counted and summarised, never each
#: written to the chained audit log.
UNVERIFIED_ERRORS = frozenset(
    {
        "too_large",
        "malformed",
        "unknown_command",
        "unsigned",
        "not_configured",
        "bad_signature",
        "stale",
        "replayed",
        "busy",
    }
)


#: Every ``error`` a reply can carry: the unverified ones above, then those of
#: signed, fresh commands.
REPLY_ERRORS = UNVERIFIED_ERRORS | {
    "not_allowed",
    "invalid_params",
    "not_supported",
    "handler_error",
    "timeout",
}

#: ``result`` of the replies to the commands the link answers itself.
RESULT_SCHEMAS: dict[str, dict[str, Any]] = {
    "ping": {
        "type": "object",
        "properties": {
            "pong": {"const": True},
            "echo": {"type": ["string", "null"]},
            "backlog": {"type": "integer", "minimum": 0},
        },
        "required": ["pong", "echo", "backlog"],
    },
}


@dataclass(frozen=True)
class Verdict:
    """Outcome of checking one command message.

    ``fresh`` is True once the signature held and the nonce was used for the
    first time: only such commands (accepted, or refused for their content)
    come from the key holder and are audited one by one.
    """

    name: str
    ok: bool
    error: str | None = None
    detail: str = ""
    cmd_id: str | None = None
    nonce: str | None = None
    actor: str = "unknown"
    params: dict[str, Any] = field(default_factory=dict)
    fresh: bool = False

    def reply(self, result: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "cmd_id": self.cmd_id,
            "nonce": self.nonce,
            "command": self.name,
            "ok": self.ok and result is not None,
            "error": self.error,
            "detail": self.detail,
            "result": result,
        }


@dataclass(frozen=True)
class Signed:
    """A command whose HMAC holds: what the gate may then check for age and replay."""

    name: str
    ts: int
    nonce: str
    actor: str
    params: dict[str, Any]
    cmd_id: str | None


def refusal(name: str, error: str, detail: str, **ident: Any) -> Verdict:
    return Verdict(name=name, ok=False, error=error, detail=detail, **ident)


class CommandVerifier:
    """Checks a raw command payload; remembers nonces through ``store``.

    Two steps, so the cheap one can run as messages arrive: ``authenticate``
    (size, JSON, envelope, HMAC; no state) and ``admit`` (clock skew, nonce,
    allowed list, parameters). ``check`` does both.
    """

    def __init__(
        self,
        site: str,
        gate: str,
        keys: list[str],
        store: NonceStore,
        *,
        max_skew_s: int = 120,
        allowed: list[str] | None = None,
        clock: Callable[[], float] = time.time,
        bulk_max_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.site = site
        self.gate = gate
        # The previous key only ever works beside a current one: a config that
        # sets only hmac_key_previous has commands disabled.
        self.keys = [k for k in keys if k] if keys and keys[0] else []
        self.store = store
        self.max_skew_s = max_skew_s
        self.horizon_s = 2 * max_skew_s + 60
        self.allowed = set(COMMAND_NAMES if allowed is None else allowed)
        self.clock = clock
        self.bulk_max_bytes = bulk_max_bytes

    def precheck(self, name: str, raw: bytes) -> Verdict | None:
        """Size and shape limits on the raw bytes, before anything is parsed."""
        cap = max_bytes(name, self.bulk_max_bytes)
        if len(raw) > cap:
            return refusal(
                name,
                "too_large",
                f"payload: expected at most {cap} bytes for {name!r}, found {len(raw)}",
            )
        containers = raw.count(b"[") + raw.count(b"{")
        if containers > max_containers(name):
            return refusal(
                name,
                "malformed",
                f"payload: expected at most {max_containers(name)} JSON arrays/objects for"
                f" {name!r}, found {containers}",
            )
        return None

    def authenticate(self, name: str, raw: bytes) -> Signed | Verdict:
        """The signed command, or the refusal; touches no state, so it is safe anywhere."""
        early = self.precheck(name, raw)
        if early is not None:
            return early
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return refusal(name, "malformed", f"payload is not UTF-8 JSON: {str(exc)[:200]}")
        except RecursionError:
            return refusal(name, "malformed", "payload: JSON nested too deeply")
        if not isinstance(body, dict):
            return refusal(
                name, "malformed", f"payload: expected a JSON object, found {_kind(body)}"
            )
        ident = identity(body)
        if name not in SCHEMAS:
            return refusal(
                name,
                "unknown_command",
                f"command {name[:64]!r} is not known; known: {', '.join(COMMAND_NAMES)}",
                **ident,
            )
        if not body.get("sig"):
            return refusal(
                name, "unsigned", "sig: required, missing (HMAC-SHA256, see docs/MQTT.md)", **ident
            )
        if not _envelope_ok(body):
            problems = validate(body, ENVELOPE_SCHEMA, "command")
            return refusal(name, "malformed", _clip("; ".join(problems[:10])), **ident)
        if not self.keys:
            return refusal(
                name,
                "not_configured",
                "no hmac_key configured on this gate: commands disabled",
                **ident,
            )
        ts, nonce, actor, params = body["ts"], body["nonce"], body["actor"], body["params"]
        try:
            canonical = canonical_string(self.site, self.gate, name, ts, nonce, actor, params)
        except RecursionError:
            return refusal(name, "malformed", "params: JSON nested too deeply", **ident)
        sig = body["sig"].lower().encode("utf-8", "replace")  # compare_digest: bytes
        if not any(hmac.compare_digest(sign(k, canonical).encode(), sig) for k in self.keys):
            return refusal(
                name,
                "bad_signature",
                "sig does not match: check the site key and the canonical string"
                " (site, gate, command, ts, nonce, actor, params)",
                **ident,
            )
        return Signed(name, ts, nonce, actor, params, ident["cmd_id"])

    def _replay_refusal(self, cmd: Signed, status: str) -> Verdict | None:
        ident = {"cmd_id": cmd.cmd_id, "nonce": cmd.nonce, "actor": cmd.actor}
        if status == "seen":
            return refusal(cmd.name, "replayed", f"nonce {cmd.nonce} was already used", **ident)
        if status != "new":
            return refusal(
                cmd.name,
                "stale",
                f"ts: {cmd.ts} is more than {int(self.horizon_s)} s older than the newest"
                " command this gate accepted; a replay, or the backend's clock went back",
                **ident,
            )
        return None

    def _stale(self, cmd: Signed) -> Verdict | None:
        now = self.clock()
        if abs(now - cmd.ts) <= self.max_skew_s:
            return None
        return refusal(
            cmd.name,
            "stale",
            f"ts: expected within {self.max_skew_s} s of gate time {int(now)}, found {cmd.ts}"
            f" ({int(cmd.ts - now):+d} s); check clocks (NTP)",
            cmd_id=cmd.cmd_id,
            nonce=cmd.nonce,
            actor=cmd.actor,
        )

    def looks_fresh(self, cmd: Signed) -> Verdict | None:
        """The arrival check of age and replay: reads only, claims nothing (``admit`` does).

        A captured signed command replayed thousands of times is signed traffic
        too; this keeps its copies out of the queue signed commands wait in.
        """
        stale = self._stale(cmd)
        if stale is not None:
            return stale
        status = getattr(self.store, "nonce_status", None)
        return (
            None
            if status is None
            else self._replay_refusal(cmd, status(cmd.nonce, cmd.ts, self.horizon_s))
        )

    def admit(self, cmd: Signed) -> Verdict:
        """Clock skew, replay, allowed list and parameters of a signed command."""
        ident = {"cmd_id": cmd.cmd_id, "nonce": cmd.nonce, "actor": cmd.actor}
        name = cmd.name
        stale = self._stale(cmd)
        if stale is not None:
            return stale
        replay = self._replay_refusal(
            cmd, self.store.claim_nonce(cmd.nonce, cmd.ts, self.horizon_s)
        )
        if replay is not None:
            return replay
        fresh = {**ident, "fresh": True}
        if name not in self.allowed:
            return refusal(
                name, "not_allowed", f"command {name!r} is disabled in this gate's config", **fresh
            )
        params, old_names, clashes = upgrade(name, cmd.params)
        problems = clashes or validate(params, SCHEMAS[name]) or _extra_checks(name, params)
        if problems:
            return refusal(name, "invalid_params", _clip("; ".join(problems[:10])), **fresh)
        note = deprecation_note(name, old_names) if old_names else ""
        return Verdict(name=name, ok=True, params=params, detail=note, **fresh)

    def check(self, name: str, raw: bytes) -> Verdict:
        """``authenticate`` then ``admit``: one call for one message."""
        got = self.authenticate(name, raw)
        return got if isinstance(got, Verdict) else self.admit(got)


def _clip(text: str, limit: int = 1000) -> str:
    """Details quote what was sent; a reply or log line never grows with the payload."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
