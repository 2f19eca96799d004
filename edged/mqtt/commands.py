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
_COLOR = {"type": "string", "enum": ["blue", "yellow", "green", "yellow_green", "white", "black"]}
_DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
_DATETIME = {
    "type": "string",
    "pattern": r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$",
}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 500}

VEHICLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["plate", "plate_color"],
    "properties": {
        "plate": _PLATE,
        "plate_color": _COLOR,
        "vin": {"type": "string", "pattern": r"^[A-HJ-NPR-Z0-9]{17}$"},
        "registered": _DATE,
        "brand_model": {"type": "string", "maxLength": 100},
        "vehicle_type": {"type": "string", "maxLength": 50},
        "fuel": {
            "type": "string",
            "enum": ["diesel", "petrol", "gas", "electric", "hybrid", "hydrogen"],
        },
        "emission_stage": {
            "type": "string",
            "enum": ["0", "1", "2", "3", "4", "5", "6", "6a", "6b"],
        },
        "fleet": {"type": "string", "maxLength": 100},
        "rfid": {"type": "string", "maxLength": 64},
        "nrmm_id": {"type": "string", "maxLength": 64},
    },
    "additionalProperties": True,
}

BLACKLIST_ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["plate", "reason"],
    "properties": {
        "plate": _PLATE,
        "plate_color": _COLOR,
        "reason": _TEXT,
        "source": {"type": "string", "maxLength": 100},
        "until": _DATETIME,
    },
    "additionalProperties": False,
}

_PLATES = {"type": "array", "minItems": 1, "maxItems": 10000, "items": _PLATE}

SCHEMAS: dict[str, dict[str, Any]] = {
    "registry_upsert": {
        "type": "object",
        "required": ["vehicles"],
        "properties": {
            "vehicles": {"type": "array", "minItems": 1, "maxItems": 10000, "items": VEHICLE_SCHEMA}
        },
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
    "approval": {
        "type": "object",
        "required": ["plate", "applicant", "approver", "reason", "valid_from", "valid_until"],
        "properties": {
            "approval_id": {"type": "string", "maxLength": 64},
            "plate": _PLATE,
            "plate_color": _COLOR,
            "applicant": _TEXT,
            "approver": _TEXT,
            "reason": _TEXT,
            "valid_from": _DATETIME,
            "valid_until": _DATETIME,
            "direction": {"type": "string", "enum": ["in", "out", "any"]},
            "uses": {"type": "integer", "minimum": 1, "maximum": 100},
        },
        "additionalProperties": False,
    },
    "open": {
        "type": "object",
        "required": ["reason"],
        "properties": {
            "reason": _TEXT,
            "direction": {"type": "string", "enum": ["in", "out", "any"]},
            "plate": _PLATE,
            "hold_s": {"type": "integer", "minimum": 1, "maximum": 120},
        },
        "additionalProperties": False,
    },
    "alert_level": {
        "type": "object",
        "required": ["level"],
        "properties": {
            "level": {"type": "string", "enum": ["none", "blue", "yellow", "orange", "red"]},
            "valid_from": _DATETIME,
            "valid_until": _DATETIME,
            "reason": {"type": "string", "maxLength": 500},
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
    if name in ("approval", "alert_level"):
        a, b = params.get("valid_from"), params.get("valid_until")
        if a and b and b < a:
            return [f"params.valid_until: expected after valid_from ({a}), found {b}"]
    return []


COMMAND_NAMES: tuple[str, ...] = tuple(SCHEMAS)

_ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["ts", "nonce", "actor", "params"],
    "properties": {
        "id": {"type": "string", "maxLength": 64},
        "ts": {"type": "integer", "minimum": 0},
        "nonce": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{16,64}$"},
        "actor": {"type": "string", "minLength": 1, "maxLength": 100},
        "params": {"type": "object"},
        "sig": {"type": "string"},
    },
    "additionalProperties": False,
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
    def nonce_seen_or_add(self, nonce: str, when: float) -> bool: ...


@dataclass(frozen=True)
class Verdict:
    """Outcome of checking one command message."""

    name: str
    ok: bool
    error: str | None = None
    detail: str = ""
    cmd_id: str | None = None
    nonce: str | None = None
    actor: str = "unknown"
    params: dict[str, Any] = field(default_factory=dict)

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


class CommandVerifier:
    """Checks a raw command payload; remembers nonces through ``store``."""

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
    ) -> None:
        self.site = site
        self.gate = gate
        self.keys = [k for k in keys if k]
        self.store = store
        self.max_skew_s = max_skew_s
        self.allowed = set(COMMAND_NAMES if allowed is None else allowed)
        self.clock = clock

    def check(self, name: str, raw: bytes) -> Verdict:
        def refuse(error: str, detail: str, **kw: Any) -> Verdict:
            return Verdict(name=name, ok=False, error=error, detail=detail, **kw)

        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return refuse("malformed", f"payload is not UTF-8 JSON: {exc}")
        except RecursionError:
            return refuse("malformed", "payload: JSON nested too deeply")
        if not isinstance(body, dict):
            return refuse("malformed", f"payload: expected a JSON object, found {_kind(body)}")
        ident = {
            "cmd_id": body.get("id") if isinstance(body.get("id"), str) else None,
            "nonce": body.get("nonce") if isinstance(body.get("nonce"), str) else None,
            "actor": body.get("actor")
            if isinstance(body.get("actor"), str) and body.get("actor")
            else "unknown",
        }
        if name not in SCHEMAS:
            return refuse(
                "unknown_command",
                f"command {name!r} is not known; known: {', '.join(COMMAND_NAMES)}",
                **ident,
            )
        if not body.get("sig"):
            return refuse(
                "unsigned", "sig: required, missing (HMAC-SHA256, see docs/MQTT.md)", **ident
            )
        problems = validate(body, _ENVELOPE_SCHEMA, "command")
        if problems:
            return refuse("malformed", "; ".join(problems[:10]), **ident)
        if not self.keys:
            return refuse(
                "not_configured", "no hmac_key configured on this gate: commands disabled", **ident
            )
        ts, nonce, actor, params = body["ts"], body["nonce"], body["actor"], body["params"]
        try:
            canonical = canonical_string(self.site, self.gate, name, ts, nonce, actor, params)
        except RecursionError:
            return refuse("malformed", "params: JSON nested too deeply", **ident)
        sig = body["sig"].lower().encode("utf-8", "replace")  # compare_digest: ASCII str or bytes
        if not any(hmac.compare_digest(sign(k, canonical).encode(), sig) for k in self.keys):
            return refuse(
                "bad_signature",
                "sig does not match: check the site key and the canonical string"
                " (site, gate, command, ts, nonce, actor, params)",
                **ident,
            )
        now = self.clock()
        if abs(now - ts) > self.max_skew_s:
            return refuse(
                "stale",
                f"ts: expected within {self.max_skew_s} s of gate time {int(now)}, found {ts}"
                f" ({int(ts - now):+d} s); check clocks (NTP)",
                **ident,
            )
        if self.store.nonce_seen_or_add(nonce, now):
            return refuse("replayed", f"nonce {nonce} was already used", **ident)
        if name not in self.allowed:
            return refuse(
                "not_allowed", f"command {name!r} is disabled in this gate's config", **ident
            )
        problems = validate(params, SCHEMAS[name]) or _extra_checks(name, params)
        if problems:
            return refuse("invalid_params", "; ".join(problems[:10]), **ident)
        return Verdict(name=name, ok=True, params=params, **ident)
