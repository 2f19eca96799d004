"""``[mqtt]`` config section: broker, TLS, outbox bounds, command signing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from drivers.config import raise_all
from edged.mqtt.commands import COMMAND_NAMES
from edged.mqtt.topics import check_prefix


@dataclass(frozen=True)
class MqttConfig:
    """How the gate talks to its backend through an MQTT broker."""

    enabled: bool = field(default=True, metadata={"doc": "Run the MQTT link at all"})
    host: str = field(default="localhost", metadata={"doc": "Broker host name or IP"})
    port: int = field(default=1883, metadata={"doc": "Broker port (1883 plain, 8883 TLS)"})
    protocol: Literal["auto", "5", "3.1.1"] = field(
        default="auto",
        metadata={"doc": "MQTT version; auto tries 5 and falls back to 3.1.1 if refused"},
    )
    prefix: str = field(
        default="edged", metadata={"doc": "First topic level(s): <prefix>/<site>/<gate>/..."}
    )
    client_id: str = field(
        default="", metadata={"doc": "MQTT client id; empty means edged-<site>-<gate>"}
    )
    username: str = field(default="", metadata={"doc": "Broker user name (empty: none)"})
    password: str = field(default="", metadata={"doc": "Broker password"})
    tls: bool = field(default=False, metadata={"doc": "Use TLS to the broker"})
    ca_file: str = field(
        default="", metadata={"doc": "CA certificate file (PEM); empty: system CAs"}
    )
    cert_file: str = field(
        default="", metadata={"doc": "Client certificate (PEM) for mutual TLS; optional"}
    )
    key_file: str = field(default="", metadata={"doc": "Client private key (PEM); optional"})
    keepalive_s: int = field(default=30, metadata={"doc": "MQTT keepalive in seconds"})
    reconnect_min_s: int = field(
        default=1, metadata={"doc": "First reconnect delay after the link drops, seconds"}
    )
    reconnect_max_s: int = field(
        default=60, metadata={"doc": "Longest reconnect delay (backoff doubles up to it)"}
    )
    max_inflight: int = field(
        default=20, metadata={"doc": "QoS 1 messages sent but not yet acknowledged (window)"}
    )
    drain_rate: float = field(
        default=500.0,
        metadata={
            "doc": "Backlog messages per second after an outage (0 = unlimited); live"
            " messages are not limited"
        },
    )
    outbox_max_messages: int = field(
        default=1_000_000,
        metadata={"doc": "Outbox size limit; over it the oldest telemetry is dropped"},
    )
    outbox_max_mb: float = field(
        default=256.0, metadata={"doc": "Outbox payload limit in MB (telemetry dropped over it)"}
    )
    outbox_max_age_h: float = field(
        default=720.0,
        metadata={"doc": "Telemetry older than this is dropped (ledger messages never)"},
    )
    outbox_sync: Literal["FULL", "NORMAL"] = field(
        default="FULL",
        metadata={"doc": "SQLite synchronous mode of the outbox; FULL survives power cuts"},
    )
    hmac_key: str = field(
        default="",
        metadata={
            "doc": "Site key for HMAC-SHA256 command signatures (命令签名密钥); empty"
            " disables commands"
        },
    )
    hmac_key_previous: str = field(
        default="",
        metadata={
            "doc": "Previous site key, still accepted during key rotation; only beside"
            " hmac_key, same rules (at least 16 characters)"
        },
    )
    cmd_max_skew_s: int = field(
        default=120, metadata={"doc": "Commands whose ts differs more from gate time are stale"}
    )
    cmd_max_bytes: int = field(
        default=16 * 1024 * 1024,
        metadata={
            "doc": "Largest registry_replace payload, bytes; every other command has its own"
            " smaller cap (docs/MQTT.md), checked before the payload is parsed"
        },
    )
    cmd_refusal_report_s: float = field(
        default=60.0,
        metadata={
            "doc": "Refused unverified commands (unsigned, bad signature, replayed, too large)"
            " are counted and summarised in one event per this many seconds, not one each"
        },
    )
    cmd_refusal_replies_per_min: int = field(
        default=60,
        metadata={
            "doc": "Most replies a minute to refused unverified commands; beyond it they are"
            " only counted (a flood must not fill the outbox)"
        },
    )
    commands_allowed: list[str] = field(
        default_factory=lambda: list(COMMAND_NAMES),
        metadata={"doc": "Commands this gate accepts (remove 'open' to forbid remote open)"},
    )

    def __post_init__(self) -> None:
        problems: list[str] = []
        try:
            check_prefix(self.prefix)
        except ValueError as exc:
            problems.append(str(exc))
        if not 1 <= self.port <= 65535:
            problems.append(f"port: expected 1..65535, found {self.port}")
        if not 5 <= self.keepalive_s <= 3600:
            problems.append(f"keepalive_s: expected 5..3600 seconds, found {self.keepalive_s}")
        if self.reconnect_min_s < 1:
            problems.append(f"reconnect_min_s: expected >= 1, found {self.reconnect_min_s}")
        if self.reconnect_max_s < self.reconnect_min_s:
            problems.append(
                f"reconnect_max_s: expected >= reconnect_min_s ({self.reconnect_min_s}),"
                f" found {self.reconnect_max_s}"
            )
        if not 1 <= self.max_inflight <= 1000:
            problems.append(f"max_inflight: expected 1..1000, found {self.max_inflight}")
        if self.drain_rate < 0:
            problems.append(f"drain_rate: expected >= 0 (0 = unlimited), found {self.drain_rate}")
        if self.outbox_max_messages < 100:
            problems.append(
                f"outbox_max_messages: expected >= 100, found {self.outbox_max_messages}"
            )
        if self.outbox_max_mb <= 0:
            problems.append(f"outbox_max_mb: expected > 0, found {self.outbox_max_mb}")
        if self.outbox_max_age_h <= 0:
            problems.append(f"outbox_max_age_h: expected > 0, found {self.outbox_max_age_h}")
        if not 5 <= self.cmd_max_skew_s <= 3600:
            problems.append(f"cmd_max_skew_s: expected 5..3600, found {self.cmd_max_skew_s}")
        if self.cmd_max_bytes < 1024:
            problems.append(f"cmd_max_bytes: expected >= 1024, found {self.cmd_max_bytes}")
        if (self.cert_file == "") != (self.key_file == ""):
            problems.append(
                "cert_file: client certificate and key_file must be set together,"
                f" found cert_file={self.cert_file!r} key_file={self.key_file!r}"
            )
        unknown = [c for c in self.commands_allowed if c not in COMMAND_NAMES]
        if unknown:
            problems.append(
                f"commands_allowed: expected names from {', '.join(COMMAND_NAMES)},"
                f" found {', '.join(unknown)}"
            )
        for name in ("hmac_key", "hmac_key_previous"):
            key = getattr(self, name)
            if key and len(key) < 16:
                problems.append(f"{name}: expected at least 16 characters, found {len(key)}")
        if self.hmac_key_previous and not self.hmac_key:
            problems.append(
                "hmac_key_previous: set without hmac_key; the previous key only works beside"
                " a current one (put the key in hmac_key, or leave both empty to disable"
                " commands)"
            )
        if self.cmd_refusal_report_s <= 0:
            problems.append(
                f"cmd_refusal_report_s: expected > 0 seconds, found {self.cmd_refusal_report_s}"
            )
        if self.cmd_refusal_replies_per_min < 0:
            problems.append(
                "cmd_refusal_replies_per_min: expected >= 0,"
                f" found {self.cmd_refusal_replies_per_min}"
            )
        raise_all(problems)
