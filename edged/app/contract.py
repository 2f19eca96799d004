"""The box's MQTT contract as JSON Schema: every topic it publishes, every command it takes.

Each schema comes from the code that builds or checks the message, so the
files a backend reads (``docs/schemas/``, written by ``edged mqtt schemas``)
cannot drift from what the gate sends:

* ``passage``: the fields of :class:`edged.ledger.record.PassageRecord` (its
  type hints: a field added to the record appears here by itself) plus what
  the feed adds, ``ledger_seq``, ``hash`` and ``resent``;
* commands: :data:`edged.mqtt.commands.SCHEMAS`, the schemas the gate checks
  parameters with, and the command envelope the verifier checks;
* replies: the reply the link builds, with each handler's ``result``;
* ``ledger/head`` and ``ledger/attestation``: the ledger's chains and the
  attestation message; ``events``: the event sink's ``kind``, ``severity``,
  ``message``; ``status``: :meth:`edged.app.box.Box.health`, declared here
  and checked against a running gate's real status by the tests.

Payload schemas of published topics are open (a consumer must ignore fields
it does not know: new ones may be added without a new envelope version);
commands are closed, because the gate refuses fields it would not honour.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

from edged.app.commands import RESULT_SCHEMAS
from edged.ledger.record import PassageRecord
from edged.ledger.store import CHAINS, SEVERITIES
from edged.mqtt import commands
from edged.mqtt.topics import ENVELOPE_VERSION

DIALECT = "https://json-schema.org/draft/2020-12/schema"

_HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_TIME = {"type": "string", "format": "date-time"}
_LEVEL = {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def obj(
    properties: Mapping[str, dict[str, Any]],
    required: tuple[str, ...] | list[str] | None = None,
    *,
    closed: bool = False,
    description: str | None = None,
) -> dict[str, Any]:
    """An object schema; ``required`` defaults to every property."""
    out: dict[str, Any] = {"type": "object"}
    if description:
        out["description"] = description
    out["properties"] = dict(properties)
    out["required"] = list(properties if required is None else required)
    if closed:
        out["additionalProperties"] = False
    return out


# -- from type hints ----------------------------------------------------------------------


def from_type(tp: Any) -> dict[str, Any]:
    """JSON Schema of a Python type as the record serialises it (dataclasses as objects)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is type(None):
        return {"type": "null"}
    if tp is Any:
        return {}
    if origin is Literal:
        return {"type": "string", "enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        inner = (
            from_type(members[0]) if len(members) == 1 else {"anyOf": [*map(from_type, members)]}
        )
        if type(None) not in args:
            return inner
        if set(inner) <= {"type", "enum"} and isinstance(inner.get("type"), str):
            out = {"type": [inner["type"], "null"]}
            if "enum" in inner:
                out["enum"] = [*inner["enum"], None]
            return out
        return nullable(inner)
    if origin in (tuple, list):
        item = args[0] if args else Any
        return {"type": "array", "items": from_type(item)}
    if origin is dict:
        return {"type": "object", "additionalProperties": from_type(args[1])}
    if dataclasses.is_dataclass(tp):
        return dataclass_schema(tp)
    raise TypeError(f"no JSON Schema for {tp!r}: teach edged.app.contract.from_type")


def dataclass_schema(
    cls: type, descriptions: Mapping[str, str] | None = None, formats: Mapping[str, Any] = {}
) -> dict[str, Any]:
    """Every field of ``cls``; required: the keys its serialiser always writes."""
    hints = typing.get_type_hints(cls)
    props: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(cls):
        schema = {**from_type(hints[f.name]), **formats.get(f.name, {})}
        if descriptions and f.name in descriptions:
            schema = {"description": descriptions[f.name], **schema}
        props[f.name] = schema
    return obj(props, written_keys(cls))


def written_keys(cls: type) -> list[str]:
    """The keys ``cls``'s ``to_dict`` writes even when every optional field is unset.

    A record that writes a key only when it has a value (so rows recorded before
    the key existed hash as they did) has that key optional; one whose minimal
    instance cannot be built (its checks refuse placeholders) writes every key.
    """
    names = [f.name for f in dataclasses.fields(cls)]
    serialise = getattr(cls, "to_dict", None) or getattr(cls, "to_fields", None)
    placeholders = {str: "x", int: 1, float: 0.0, bool: False}
    hints = typing.get_type_hints(cls)
    needed = {}
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            tp = hints[f.name]
            options = typing.get_args(tp) or (tp,)
            value = next((placeholders[t] for t in options if t in placeholders), None)
            if value is None:
                return names
            needed[f.name] = value
    try:
        written = serialise(cls(**needed)) if serialise else {}
    except (TypeError, ValueError):
        return names
    return [n for n in names if n in written]


# -- published payloads -------------------------------------------------------------------

#: What each passage field means; a field without a line here is still in the schema.
PASSAGE_FIELDS = {
    "time": "when the vehicle passed, ISO 8601 with the site's UTC offset",
    "site": "site id (the plant)",
    "gate": "gate id (the box)",
    "lane": "lane of the box the vehicle used",
    "direction": "in, out, or unknown (a two-way lane that could not tell)",
    "plate": "plate as identified; null when no plate was read",
    "plate_colour": "plate colour",
    "vehicle_type": "vehicle type from the registry (行驶证 车辆类型), or its class"
    " (heavy_truck, …) where the registry has no type",
    "vin": "vehicle identification number from the registry",
    "fuel": "fuel from the registry",
    "emission_stage": "emission stage from the registry, canonical (国5, 国6a, 国6b)",
    "decision": "allow (barrier opened), deny, or hold (for a guard)",
    "reason_code": "machine-readable reason of the decision",
    "reason_zh": "reason as shown to the guard (Chinese)",
    "reason_en": "reason in English",
    "snapshots": "snapshot images: path under the images folder and SHA-256",
    "rfid_tag": "RFID tag read with the vehicle",
    "weight_kg": "stable weighbridge reading, kg",
    "cargo": "cargo as declared",
    "approval": "special approval (特批放行) the passage used",
    "id_source": "what identified the vehicle",
    "id_confidence": "confidence of the identification, 0..1",
    "flags": "notes on the passage (tag_plate_mismatch, unsure_read, …), sorted",
    "correction_of": "ledger_seq of the row this one corrects (a guard's fix)",
    "operator": "who opened or corrected by hand",
    "event_id": "UUID of the passage, the same in the ledger and on every resend",
    "raw_plate": "the recogniser's own read, where it differs from plate or was unsure",
    "identified_by": "how an unsure read was matched: exact, registry, rfid, rfid_tag",
    "category": "transport (运输车辆), in_plant (厂内运输车辆) or machinery (非道路移动机械)",
    "registered_on": "registration date (注册日期), YYYY-MM-DD",
    "engine_no": "engine number (发动机号码)",
    "stage_code": "emission stage as the national table codes it: 0-6, d (electric), x",
    "fleet": "fleet or haulier (车队名称)",
    "documents": "SHA-256 of the vehicle's document photos (随车清单, 行驶证) by kind",
    "machinery": "non-road machinery's registration (登记编码, 机械环保代码, …)",
    "alert_level": "heavy-pollution alert level in force at the passage",
    "net_t": "tonnes carried (运输量), on the exit row of a paired trip",
    "entry_seq": "ledger_seq of the entry row this exit pairs with",
    "entry_time": "entry time (进厂时间) of that entry",
    "dwell_s": "seconds in the plant",
    "missing": "why each empty national field is empty, by field",
    "video": "where the passage's video is: recorder, channel, window, the box's clip (null:"
    " none configured); the clip's SHA-256 follows in the audit log (clip_recorded)",
}


def passage_payload() -> dict[str, Any]:
    """A ledger row as the feed publishes it: the hashed fields plus seq and hash."""
    schema = dataclass_schema(
        PassageRecord,
        PASSAGE_FIELDS,
        formats={
            "time": {"format": "date-time"},
            "event_id": {"format": "uuid"},
            "id_confidence": {"minimum": 0, "maximum": 1},
        },
    )
    snap = schema["properties"]["snapshots"]["items"]["properties"]
    snap["sha256"] = {**snap["sha256"], "pattern": _HEX64["pattern"]}
    schema["properties"]["ledger_seq"] = {
        "type": "integer",
        "minimum": 1,
        "description": "the row's seq in the ledger's passages chain: dedupe rows by"
        " (site, gate, ledger_seq), ask for a resend where one is missing",
    }
    schema["properties"]["hash"] = {**_HEX64, "description": "the row's hash in the chain"}
    schema["properties"]["resent"] = {
        "const": True,
        "description": "present when the row was sent again (catch-up after a restart, or a"
        " resend command): a consumer may already hold it",
    }
    schema["required"] += ["ledger_seq", "hash"]
    schema["description"] = (
        "One ledger row (通行记录). The fields before ledger_seq are the row's hashed fields"
        " (docs/LEDGER.md)."
    )
    return schema


_HEAD = obj({"seq": {"type": "integer", "minimum": 0}, "hash": _HEX64})
_HEADS = obj({chain: _HEAD for chain in CHAINS}, description="head (seq, hash) of each chain")


def ledger_head_payload() -> dict[str, Any]:
    return {
        **_HEADS,
        "description": "Heads of the ledger's hash chains, retained: compare with the rows held"
        " (a row cut off the end shows as a head past them). Audit seq 0 with an all-zero hash"
        " is an empty chain.",
    }


def attestation_payload() -> dict[str, Any]:
    return obj(
        {
            "n": {"type": "integer", "minimum": 1, "description": "attestation number, 1, 2, …"},
            "time": _TIME,
            "heads": _HEADS,
            "payload": {
                "type": "string",
                "description": "the signed text (canonical JSON), byte for byte: verify sig over"
                " its UTF-8 bytes, never over a re-encoding",
            },
            "sig": {"type": "string", "description": "Ed25519 signature of payload, base64"},
            "public_key": {
                "type": "string",
                "pattern": "^[0-9a-f]{64}$",
                "description": "the box's Ed25519 public key (edged key show)",
            },
        },
        description="Signed chain heads; archive every one (JSON Lines, docs/SECURITY.md).",
    )


def events_payload() -> dict[str, Any]:
    return obj(
        {
            "kind": {
                "type": "string",
                "pattern": "^[a-z0-9_]+$",
                "description": "what happened (started, previous_stop, telemetry_dropped,"
                " mqtt_commands_refused, …); the one type key of every event",
            },
            "severity": {"type": "string", "enum": list(SEVERITIES)},
            "message": {"type": "string", "description": "one line for people"},
        },
        description="An event of the box's event log; further keys are the event's details.",
    )


def availability_payload() -> dict[str, Any]:
    return obj(
        {"state": {"type": "string", "enum": ["online", "offline"]}},
        closed=True,
        description="online on connect; offline on a clean stop, and as the last will the"
        " broker publishes when the gate dies",
    )


def alert_level_payload() -> dict[str, Any]:
    return obj(
        {
            "level": {"type": "string", "enum": ["none", "blue", "yellow", "orange", "red"]},
            "was": {
                "type": ["string", "null"],
                "description": "the level before; null on the first announcement after a start",
            },
        },
        description="The heavy-pollution alert level in force, retained, announced when it"
        " changes (and at start).",
    )


_VEHICLE_IN = obj(
    {
        "plate": {
            "type": ["string", "null"],
            "description": "the plate, or a machine's registry code (登记编码) when it has none",
        },
        "since": _TIME,
        "entry_seq": {"type": "integer", "minimum": 1},
        "lane": {"type": ["string", "null"]},
    }
)


def in_plant_payload() -> dict[str, Any]:
    return in_plant_status() | {
        "description": "The vehicles in the plant now (entered, not yet out), retained,"
        " whenever an entry or exit changes them."
    }


def in_plant_status() -> dict[str, Any]:
    return obj(
        {
            "count": {"type": "integer", "minimum": 0},
            "vehicles": {
                "type": "array",
                "items": _VEHICLE_IN,
                "description": "the longest there first; the first ones only when many",
            },
        }
    )


def device_key_payload() -> dict[str, Any]:
    return obj(
        {
            "public_key": {
                "type": "string",
                "pattern": "^[0-9a-f]{64}$",
                "description": "the Ed25519 public key, 32 bytes as hex: checks attestations"
                " and signed exports (edged export verify --key)",
            },
            "fingerprint": {
                "type": "string",
                "pattern": "^[0-9a-f]{16}$",
                "description": "SHA-256 of the raw public key, first 16 hex digits",
            },
            "alg": {"const": "ed25519"},
        },
        description="The box's public key, retained, published at start. A change is an event"
        " to investigate (docs/SECURITY.md).",
    )


def probe_payload() -> dict[str, Any]:
    return obj({"nonce": {"type": "string"}}, description="edged probe mqtt's round trip only")


_NUM = {"type": "number"}
_INT = {"type": "integer", "minimum": 0}
_STR = {"type": "string"}


def status_payload() -> dict[str, Any]:
    """:meth:`edged.app.box.Box.health`: every key; each part's figures as the part gives them."""
    part = obj(
        {
            "state": {"type": "string", "enum": ["stopped", "running", "failed"]},
            "error": _STR,
            "failures": _INT,
        },
        ["state"],
    )
    lane = obj(
        {
            "direction": {"type": "string", "enum": ["in", "out", "both"]},
            "passages": _INT,
            "last_passage": nullable(
                obj(
                    {
                        "plate": {"type": ["string", "null"]},
                        "decision": {"type": "string", "enum": ["allow", "deny", "hold"]},
                        "direction": _STR,
                        "seq": _INT,
                        "time": nullable(_TIME),
                    }
                )
            ),
            "last_read": nullable(
                obj(
                    {
                        "plate": {"type": ["string", "null"]},
                        "confidence": _NUM,
                        "valid": {"type": "boolean"},
                        "source": _STR,
                        "time": _TIME,
                    }
                )
            ),
            "queue": _INT,
            "camera": nullable(
                obj(
                    {
                        "state": _STR,
                        "fps": _NUM,
                        "source": _STR,
                        "error": {"type": ["string", "null"]},
                        "silent_s": {
                            "type": ["number", "null"],
                            "description": "a pushing camera: seconds since its last push",
                        },
                        "certificate_expires": {
                            **_TIME,
                            "description": "an https snapshot camera: when the certificate"
                            " it showed ends (camera_certificate_expiring 30 days before)",
                        },
                        "clock_offset_s": {
                            "type": ["number", "null"],
                            "description": "a pushing camera: its clock minus the box's at its"
                            " last live read, seconds (null: none yet); over 30 s is"
                            " camera_clock_off",
                        },
                        "pushes": {
                            "type": "object",
                            "additionalProperties": _INT,
                            "description": "a pushing camera: pushes by what they became (new,"
                            " duplicate_id, duplicate_window, offline, offline_record,"
                            " offline_joined, offline_failed, stale, heartbeat, bad, …)",
                        },
                    },
                    ["state", "source", "error"],
                )
            ),
            "rfid": {"type": ["string", "null"], "description": "the RFID reader part it uses"},
            "display": nullable(
                obj(
                    {
                        "type": _STR,
                        "state": {"type": "string", "enum": ["starting", "ok", "failed"]},
                        "error": {"type": ["string", "null"]},
                        "showing": {"type": "array", "items": _STR},
                        "shown": _INT,
                        "spoken": _INT,
                        "failures": _INT,
                        "dropped": _INT,
                    },
                    description="the driver's display and voice it feeds (docs/DISPLAY.md)",
                )
            ),
            "video": nullable(
                obj(
                    {
                        "recorder": {"type": ["string", "null"]},
                        "channel": _STR,
                        "clips": nullable(
                            obj(
                                {
                                    "state": {"type": "string", "enum": ["starting", "ok", "lost"]},
                                    "error": {"type": ["string", "null"]},
                                    "source": _STR,
                                    "buffered_s": _NUM,
                                    "clips": _INT,
                                    "failed": _INT,
                                    "pending": _INT,
                                }
                            )
                        ),
                    },
                    description="where its video is, and its clip recorder (docs/VIDEO.md)",
                )
            ),
            "scale": nullable(
                obj(
                    {
                        "kg": {"type": ["integer", "null"]},
                        "stable_kg": {"type": ["integer", "null"]},
                    }
                )
            ),
        }
    )
    outbox = obj(
        {
            "connected": {"type": "boolean"},
            "listening": {
                "type": "boolean",
                "description": "the broker acknowledged the command subscription",
            },
            "protocol": {"type": "string", "enum": ["5", "3.1.1"]},
            "connect_error": {
                "type": ["string", "null"],
                "description": "why the last connection attempt failed, while not connected",
            },
            "inflight": _INT,
            "commands_queued": _INT,
            "backlog": _INT,
            "backlog_bytes": _INT,
            "dropped": _INT,
            "next_seq": _INT,
            "sent": _INT,
            "possible_duplicates": _INT,
            "commands_accepted": _INT,
            "commands_refused": _INT,
            "commands_refused_unverified": _INT,
            "refusal_replies_skipped": _INT,
            "connects": _INT,
        },
        ["connected", "listening", "backlog"],
        description="the MQTT link's own figures (MqttLink.stats)",
    )
    platform = obj(
        {
            "connected": {"type": "boolean"},
            "backlog": _INT,
            "sent": _INT,
            "acked": _INT,
            "last_error": {"type": ["string", "null"]},
            "realtime": {"type": "boolean", "description": "real-time data (CN 2011) on"},
            "rtd_interval_s": {
                "type": "integer",
                "minimum": 30,
                "maximum": 3600,
                "description": "this platform's real-time interval (config, or its CN 1062)",
            },
            "min_interval_min": {
                "type": "integer",
                "minimum": 1,
                "maximum": 60,
                "description": "this platform's minute-data interval (config, or its CN 1064)",
            },
            "last_realtime": nullable(_TIME),
        }
    )
    return obj(
        {
            "site": obj(
                {
                    "id": _STR,
                    "name": _STR,
                    "gate": _STR,
                    "gate_name": _STR,
                }
            ),
            "time": _TIME,
            "uptime_s": _NUM,
            "components": {"type": "object", "additionalProperties": part},
            "passages": _INT,
            "lanes": {"type": "object", "additionalProperties": lane},
            "queues": obj(
                {
                    "lanes": {"type": "object", "additionalProperties": _INT},
                    "mqtt_outbox": {"type": ["integer", "null"]},
                    "hj212_outbox": nullable({"type": "object", "additionalProperties": _INT}),
                }
            ),
            "outbox": nullable(outbox),
            "hj212": nullable({"type": "object", "additionalProperties": platform}),
            "datalogger": nullable(
                {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "state per Modbus device: ok, comm_fault, device_fault",
                }
            ),
            "meters": nullable(
                {
                    "type": "object",
                    "additionalProperties": obj(
                        {
                            "state": {"enum": ["unknown", "ok", "comm_fault", "device_fault"]},
                            "polls": _INT,
                            "ok": _INT,
                            "success_rate": {"type": ["number", "null"]},
                            "recent_success_rate": {"type": ["number", "null"]},
                            "last_ok": nullable(_TIME),
                            "last_error": {"type": ["string", "null"]},
                        }
                    ),
                    "description": "per Modbus device: state and collection success rate"
                    " (since start, last 100 polls), last error",
                }
            ),
            "disk": nullable(
                obj(
                    {
                        "path": _STR,
                        "total_mb": _NUM,
                        "free_mb": _NUM,
                        "used_pct": {"type": ["number", "null"]},
                    }
                )
            ),
            "cpu_temp_c": {"type": ["number", "null"]},
            "memory": obj(
                {
                    "resident_mb": _NUM,
                    "model_memory_releases": {"type": ["integer", "null"]},
                }
            ),
            "clock": obj(
                {
                    "ntp_synchronized": {"type": ["boolean", "null"]},
                    "platform_offset_s": {"type": ["number", "null"]},
                    "platform_set_at": nullable(_TIME),
                }
            ),
            "alert_level": {
                "type": ["string", "null"],
                "enum": ["none", "blue", "yellow", "orange", "red", None],
            },
            "in_plant": nullable(in_plant_status()),
            "receiver": nullable(
                obj(
                    {
                        "listening": {"type": ["string", "null"]},
                        "in_flight": _INT,
                        "refused": {"type": "object", "additionalProperties": _INT},
                        "spool_mb": {"type": ["number", "null"]},
                    },
                    description="the HTTP receiver of pushing cameras (docs/CAMERAS.md)",
                )
            ),
            "clips": nullable(
                obj(
                    {
                        "clips": _INT,
                        "mb": _NUM,
                        "days_held": {"type": ["number", "null"]},
                        "retention_days": _INT,
                        "short": {"type": "boolean"},
                    },
                    description="the clips folder: how many days it holds at the current rate",
                )
            ),
            "ledger_head": {"type": "object", "additionalProperties": _HEAD},
            "device_key": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
        },
        description="The box's health (edged status --json prints the same object), retained."
        " Every key is listed in docs/FIELD.md.",
    )


def reply_payload(name: str) -> dict[str, Any]:
    """The reply to command ``name``, accepted or refused."""
    result = RESULT_SCHEMAS.get(name) or commands.RESULT_SCHEMAS.get(name) or {"type": "object"}
    return obj(
        {
            "cmd_id": {
                "type": ["string", "null"],
                "description": "the command's id; null when it was missing or over its limits",
            },
            "nonce": {"type": ["string", "null"]},
            "command": {"type": "string"},
            "ok": {"type": "boolean"},
            "error": {
                "type": ["string", "null"],
                "enum": [*sorted(commands.REPLY_ERRORS), None],
            },
            "detail": {
                "type": "string",
                "description": "what was wrong (refused), or a note such as deprecated field"
                " names (accepted)",
            },
            "result": nullable(result),
        },
        description=f"Reply to every {name} command, accepted or refused: result on success.",
    )


# -- envelopes and topics -----------------------------------------------------------------

#: Published kinds: topic (under <prefix>/<site>/<gate>/), retained, what it carries.
TOPICS: dict[str, tuple[str, bool, str]] = {
    "passage": ("passage", False, "one message per ledger row (通行记录)"),
    "status": ("status", True, "the latest health snapshot"),
    "availability": ("availability", True, "online / offline (last will)"),
    "events": ("events", False, "the event log: faults, starts and stops, refusals"),
    "ledger_head": ("ledger/head", True, "heads of the hash chains"),
    "in_plant": ("in_plant", True, "the vehicles in the plant now"),
    "alert_level": ("alert_level", True, "the heavy-pollution alert level in force"),
    "attestation": ("ledger/attestation", False, "signed chain heads, archive every one"),
    "device_key": ("device_key", True, "the box's public key: attestations and exports"),
    "reply": ("cmd/<name>/reply", False, "the reply to every command"),
    "probe": ("probe", False, "edged probe mqtt's round trip; backends ignore it"),
}


def envelope(kind: str, payload: dict[str, Any], title: str) -> dict[str, Any]:
    """The whole message on a published topic: the v1 envelope around ``payload``."""
    description = payload.pop("description", None)
    sequenced = kind not in ("availability", "probe")
    return {
        "$schema": DIALECT,
        "title": title,
        **({"description": description} if description else {}),
        **obj(
            {
                "v": {"const": ENVELOPE_VERSION},
                "id": {
                    "type": "string",
                    "format": "uuid",
                    "description": "unique per message: the de-duplication key",
                },
                "seq": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "the gate's message sequence number, +1 per stored message"
                    if sequenced
                    else "the last seq allocated when it was built: not a message of the"
                    " sequence, skip it in gap detection",
                },
                "ts": {**_TIME, "description": "when the message was built, with UTC offset"},
                "site": _LEVEL,
                "gate": _LEVEL,
                "type": {"const": kind},
                "payload": payload,
            },
            closed=True,
        ),
    }


def command_envelope(name: str) -> dict[str, Any]:
    """A signed command as the backend publishes it on ``cmd/<name>``."""
    env = commands.ENVELOPE_SCHEMA
    return {
        "$schema": DIALECT,
        "title": f"edged command {name}",
        "description": f"Publish on <prefix>/<site>/<gate>/cmd/{name}, QoS 1, never retained;"
        f" at most {_cap(name)}. sig is the"
        " HMAC-SHA256 of the canonical string (docs/MQTT.md, Signature).",
        **obj(
            {**env["properties"], "params": commands.SCHEMAS[name]},
            [*env["required"], "sig"],
            closed=True,
        ),
    }


def _cap(name: str) -> str:
    if name in commands.MAX_BYTES:
        return f"{commands.MAX_BYTES[name]} bytes"
    return "mqtt.cmd_max_bytes bytes (16 MiB by default)"


def schemas() -> dict[str, dict[str, Any]]:
    """Every schema file of the contract, by its path under ``docs/schemas/``."""
    payloads = {
        "passage": passage_payload(),
        "status": status_payload(),
        "availability": availability_payload(),
        "events": events_payload(),
        "ledger_head": ledger_head_payload(),
        "attestation": attestation_payload(),
        "in_plant": in_plant_payload(),
        "alert_level": alert_level_payload(),
        "device_key": device_key_payload(),
        "probe": probe_payload(),
    }
    out: dict[str, dict[str, Any]] = {}
    for kind, payload in payloads.items():
        topic = TOPICS[kind][0]
        out[f"{topic.replace('/', '-')}.json"] = envelope(kind, payload, f"edged {topic}")
    for name in commands.COMMAND_NAMES:
        out[f"cmd/{name}.json"] = command_envelope(name)
        out[f"cmd/{name}.reply.json"] = envelope(
            "reply", reply_payload(name), f"edged cmd/{name}/reply"
        )
    out["topics.json"] = topic_index(out)
    return out


def topic_index(files: Mapping[str, Any]) -> dict[str, Any]:
    """Topic filter → schema file, for a consumer that validates whatever arrives."""
    topics: list[dict[str, Any]] = []
    for kind, (topic, retained, what) in TOPICS.items():
        if kind == "reply":
            continue
        topics.append(
            {
                "topic": f"<prefix>/<site>/<gate>/{topic}",
                "direction": "gate to backend",
                "retain": retained,
                "schema": f"{topic.replace('/', '-')}.json",
                "content": what,
            }
        )
    for name in commands.COMMAND_NAMES:
        topics.append(
            {
                "topic": f"<prefix>/<site>/<gate>/cmd/{name}",
                "direction": "backend to gate",
                "retain": False,
                "schema": f"cmd/{name}.json",
                "content": f"signed command {name}",
            }
        )
        topics.append(
            {
                "topic": f"<prefix>/<site>/<gate>/cmd/{name}/reply",
                "direction": "gate to backend",
                "retain": False,
                "schema": f"cmd/{name}.reply.json",
                "content": f"reply to {name}",
            }
        )
    assert all(t["schema"] in files for t in topics)
    return {
        "title": "edged MQTT topics",
        "description": "Every topic of one gate, all QoS 1. <prefix> defaults to edged;"
        " site and gate are one topic level each. docs/MQTT.md explains the contract.",
        "envelope_version": ENVELOPE_VERSION,
        "topics": topics,
    }


def schema_for(topic_suffix: str) -> str | None:
    """The schema file of a message that arrived on ``<prefix>/<site>/<gate>/<topic_suffix>``."""
    parts = topic_suffix.split("/")
    if parts[0] == "cmd" and len(parts) in (2, 3):
        name = parts[1]
        if name not in commands.SCHEMAS:
            return None
        return f"cmd/{name}.reply.json" if len(parts) == 3 else f"cmd/{name}.json"
    for topic, _retained, _what in TOPICS.values():
        if topic == topic_suffix:
            return f"{topic.replace('/', '-')}.json"
    return None
