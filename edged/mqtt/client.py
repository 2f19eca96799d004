"""``MqttLink``: the gate's store-and-forward connection to its backend.

Three kinds of thread, each with one job, so no slow part can stall another:

* paho's network thread: socket, keepalive, reconnect backoff, PUBACKs.
  Its callbacks only set flags and queue things (paho holds its own locks
  while calling them).
* the sender: moves messages from the SQLite outbox into the bounded QoS 1
  window (:mod:`edged.mqtt.window`), deletes them after PUBACK (batched),
  prunes the outbox, and falls back to MQTT 3.1.1 when a broker asks.
* the command workers of the inbox (:mod:`edged.mqtt.inbox`), so a slow
  handler (a registry replace) never delays keepalives, a ping or an open;
  refusals of unverified traffic are summarised by :mod:`edged.mqtt.refusals`.

Ordering: live messages (enqueued while connected) go first, in order; the
backlog left from an outage or a previous run drains in order beside them at
``drain_rate`` so a long backlog never holds up today's passages. Consumers
that need one total order sort by ``seq``.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edged.logs import get_logger
from edged.mqtt.commands import CommandVerifier
from edged.mqtt.config import MqttConfig
from edged.mqtt.inbox import AuditCallback, CommandHandler, CommandInbox
from edged.mqtt.outbox import Outbox
from edged.mqtt.refusals import EventCallback, RecordEvent
from edged.mqtt.topics import Topics, build_envelope, encode, new_id, now_iso
from edged.mqtt.window import SendWindow

__all__ = ["MqttLink", "fallback_needed", "paho_client"]

log = get_logger("mqtt")

_MAINTAIN_S = 10.0
_DROP_REPORT_S = 60.0


class _Client(mqtt.Client):
    """paho's client, keeping why the last connection attempt failed.

    paho retries a failed connect on its own thread and only tells
    ``on_connect_fail`` that it failed, not why; the reason (refused, no
    route, DNS, TLS) is what a technician needs.
    """

    last_connect_error: OSError | None = None

    def reconnect(self) -> Any:
        try:
            return super().reconnect()
        except OSError as exc:
            self.last_connect_error = exc
            raise


def unreachable_hint(exc: BaseException | None, host: str, port: int) -> str:
    """What to check when the broker at ``host:port`` cannot be reached for ``exc``."""
    where = f"{host}:{port}"
    if isinstance(exc, ConnectionRefusedError):
        what = f"nothing listens on {where}: check mqtt.host / mqtt.port and that the broker runs"
    elif isinstance(exc, socket.gaierror):
        what = f"the name {host!r} does not resolve: check mqtt.host and the box's DNS"
    elif isinstance(exc, ssl.SSLError):
        what = (
            "the TLS handshake failed: check mqtt.ca_file, cert_file, key_file and the"
            " broker's certificate"
        )
    elif isinstance(exc, TimeoutError | socket.timeout):
        what = f"no answer from {where}: check the network route and firewalls to the broker"
    else:
        what = f"check the network to {where} and the broker"
    return f"{what}; messages wait in the outbox and the link keeps retrying quietly"


def fallback_needed(setting: str, using_v5: bool, reason: int) -> bool:
    """Should ``auto`` retry with MQTT 3.1.1 after this CONNACK reason?

    A 3.1.1-only broker answers a v5 CONNECT with return code 1 ("unacceptable
    protocol version"); a v5 broker that refuses the version says 0x84.
    """
    return setting == "auto" and using_v5 and reason in (1, 0x84)


def paho_client(cfg: MqttConfig, client_id: str, use_v5: bool) -> mqtt.Client:
    """A paho client set up from ``[mqtt]``: protocol, credentials, TLS, backoff, window."""
    proto = mqtt.MQTTv5 if use_v5 else mqtt.MQTTv311
    kwargs: dict[str, Any] = {"client_id": client_id, "protocol": proto}
    if not use_v5:
        kwargs["clean_session"] = True
    client = _Client(CallbackAPIVersion.VERSION2, **kwargs)
    if cfg.username:
        client.username_pw_set(cfg.username, cfg.password or None)
    if cfg.tls:
        client.tls_set(
            ca_certs=cfg.ca_file or None,
            certfile=cfg.cert_file or None,
            keyfile=cfg.key_file or None,
        )
    client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)
    client.max_inflight_messages_set(cfg.max_inflight + 2)
    return client


class ConnectFailures:
    """Failed connection attempts since the last success, told once per new reason.

    paho retries with backoff (``reconnect_min_s`` doubling to
    ``reconnect_max_s``); a warning each time would bury the journal during
    an outage that is already known. A new reason is worth a line again.
    """

    def __init__(self, cfg: MqttConfig) -> None:
        self.config = cfg
        self.count = 0
        self.last: str | None = None  # why the last attempt failed

    def failed(self, event: str, reason: str, hint: str) -> None:
        self.count += 1
        repeated = self.last == reason
        self.last = reason
        if self.count == 1 or not repeated:
            log.warning(
                event,
                host=self.config.host,
                port=self.config.port,
                reason=reason,
                retry_s=f"{self.config.reconnect_min_s:g}..{self.config.reconnect_max_s:g}",
                hint=hint,
            )
        else:
            log.debug(event, reason=reason, attempt=self.count)

    def succeeded(self) -> None:
        if self.count:
            log.info("mqtt_reachable_again", failed_attempts=self.count)
        self.count = 0
        self.last = None


class MqttLink:
    """Publish with no loss through outages; receive signed commands."""

    def __init__(
        self,
        config: MqttConfig,
        identity: tuple[str, str],
        outbox_path: str | Path,
        on_event: EventCallback | None = None,
        audit: AuditCallback | None = None,
        record_event: RecordEvent | None = None,
    ) -> None:
        """``audit(actor, action, details)`` gets one chained entry per signed, fresh
        command (accepted or refused for its content); ``record_event(kind,
        severity, message, details)`` stores the link's own events in the bounded
        event log (the link publishes them on ``events`` itself)."""
        self.config = config
        self.site, self.gate = identity
        self.topics = Topics(config.prefix, self.site, self.gate)
        self.client_id = config.client_id or f"edged-{self.site}-{self.gate}"
        self.outbox = Outbox(
            outbox_path,
            max_messages=config.outbox_max_messages,
            max_bytes=int(config.outbox_max_mb * 1024 * 1024),
            max_age_s=config.outbox_max_age_h * 3600,
            synchronous=config.outbox_sync,
        )
        self._on_event = on_event
        self.verifier = CommandVerifier(
            self.site,
            self.gate,
            [config.hmac_key, config.hmac_key_previous],
            self.outbox,
            max_skew_s=config.cmd_max_skew_s,
            allowed=list(config.commands_allowed),
            bulk_max_bytes=config.cmd_max_bytes,
        )
        self.inbox = CommandInbox(
            config,
            self.verifier,
            publish=self.publish,
            backlog=lambda: len(self.outbox),
            audit=audit,
            record_event=record_event,
            event=self._event,
        )
        self.window = SendWindow(self.outbox, config.max_inflight, config.drain_rate)
        self._use_v5 = config.protocol != "3.1.1"
        self._client: mqtt.Client | None = None
        self._connected = False
        self._listening = False  # the broker acknowledged the command subscription
        self._subscribe_mid: int | None = None
        self._last_drop_report = -_DROP_REPORT_S
        self._fallback_requested = False
        self.failures = ConnectFailures(config)
        self._wake = threading.Event()
        self._stopping = False
        self._stop_deadline = 0.0
        self._sender: threading.Thread | None = None
        self._possible_duplicates = 0
        self._connects = 0
        self._restored = len(self.outbox)

    # -- public API -------------------------------------------------------------
    def publish(
        self,
        kind: str,
        payload: Any,
        *,
        retain: bool = False,
        durable: bool = True,
        subtopic: str | None = None,
    ) -> str:
        """Queue one message durably; returns its envelope id.

        ``durable=True`` for ledger-derived messages (never dropped);
        ``False`` for telemetry the outbox may drop when full or old.
        """
        topic = self.topics.for_kind(kind, subtopic)
        msg_id = new_id()

        def build(seq: int) -> bytes:
            return encode(
                build_envelope(
                    msg_id=msg_id,
                    seq=seq,
                    ts=now_iso(),
                    site=self.site,
                    gate=self.gate,
                    type=kind,
                    payload=payload,
                )
            )

        self.outbox.enqueue(topic, build, retain=retain, durable=durable)
        self._wake.set()
        return msg_id

    def on_command(self, name: str, handler: CommandHandler) -> None:
        """Register the daemon's handler: ``handler(params, actor) -> result dict``."""
        self.inbox.on_command(name, handler)

    def start(self) -> None:
        self._stopping = False
        self._client = self._make_client()
        self._connect(self._client)
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self._sender.start()
        self.inbox.start()
        if self._restored:
            log.info("mqtt_backlog_restored", messages=self._restored)

    def stop(self, timeout: float = 5.0) -> int:
        """Send what can be sent within ``timeout``; the rest stays in the outbox.

        Returns how many messages are left for the next start.
        """
        self._stop_deadline = time.monotonic() + max(timeout, 0.0)
        self._stopping = True
        self._wake.set()
        if self._sender:
            self._sender.join(timeout + 5)
        self.inbox.stop()
        client = self._client
        if client is not None:
            if self._connected:
                info = client.publish(
                    self.topics.availability, self._availability("offline"), qos=1, retain=True
                )
                info.wait_for_publish(timeout=1.0)
            client.disconnect()
            client.loop_stop()
        left = len(self.outbox)
        self.outbox.close()
        self._connected = False
        log.info("mqtt_stopped", left_in_outbox=left)
        return left

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def listening(self) -> bool:
        """True once the broker has acknowledged the command subscription.

        ``connected`` turns true before that: a command a backend publishes in
        between is not delivered to this session (clean start), so anything
        that must not lose its first command waits for this instead.
        """
        return self._connected and self._listening

    def stats(self) -> dict[str, Any]:
        """Counters for the status page and the ``status`` topic."""
        out: dict[str, Any] = {
            "connected": self._connected,
            "listening": self.listening,
            "protocol": "5" if self._use_v5 else "3.1.1",
            "inflight": len(self.window.inflight),
            "commands_queued": self.inbox.queued(),
            "connect_error": None if self._connected else self.failures.last,
        }
        out.update(self.outbox.stats())
        out["backlog"] = max(out["backlog"] - len(self.window.acked), 0)
        out.update(
            sent=self.window.sent,
            possible_duplicates=self._possible_duplicates,
            commands_accepted=self.inbox.accepted,
            commands_refused=self.inbox.refused,
            commands_refused_unverified=self.inbox.refusals.unverified,
            refusal_replies_skipped=self.inbox.refusals.replies_skipped,
            connects=self._connects,
        )
        return out

    # -- paho client --------------------------------------------------------------
    def _availability(self, state: str) -> bytes:
        """Availability does not consume a seq: it is a presence flag the broker sets."""
        return encode(
            build_envelope(
                msg_id=new_id(),
                seq=self.outbox.next_seq - 1,
                ts=now_iso(),
                site=self.site,
                gate=self.gate,
                type="availability",
                payload={"state": state},
            )
        )

    def _make_client(self) -> mqtt.Client:
        client = paho_client(self.config, self.client_id, self._use_v5)
        client.will_set(self.topics.availability, self._availability("offline"), 1, True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _connect(self, client: mqtt.Client) -> None:
        kw: dict[str, Any] = {}
        if self._use_v5:
            kw["clean_start"] = True
        client.connect_async(self.config.host, self.config.port, self.config.keepalive_s, **kw)
        client.loop_start()

    def _on_connect(self, client: mqtt.Client, _u: Any, _flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            if fallback_needed(self.config.protocol, self._use_v5, rc.value):
                self._fallback_requested = True
                self._wake.set()
                return
            self.failures.failed(
                "mqtt_connect_refused",
                str(rc),
                "check username/password, client id, TLS files and broker ACLs; the link"
                " keeps retrying quietly",
            )
            return
        self.failures.succeeded()
        window = self.config.max_inflight
        rmax = getattr(props, "ReceiveMaximum", None) if props is not None else None
        if isinstance(rmax, int) and rmax > 0:
            window = min(window, rmax)
        self.window.connected(window)
        self._connects += 1
        self._connected = True
        client.publish(self.topics.availability, self._availability("online"), qos=1, retain=True)
        self._listening = False
        _rc, self._subscribe_mid = client.subscribe(self.topics.cmd_subscription, qos=1)
        log.info(
            "mqtt_connected",
            host=self.config.host,
            port=self.config.port,
            protocol="5" if self._use_v5 else "3.1.1",
            backlog=len(self.outbox),
            window=window,
        )
        self._event("connected", {"backlog": len(self.outbox)})
        self._wake.set()

    def _on_connect_fail(self, client: mqtt.Client, _u: Any) -> None:
        exc = getattr(client, "last_connect_error", None)
        self.failures.failed(
            "mqtt_unreachable",
            str(exc) if exc is not None else "connection failed",
            unreachable_hint(exc, self.config.host, self.config.port),
        )

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, codes: Any, _props: Any) -> None:
        if mid != self._subscribe_mid:
            return
        refused = [c for c in codes if getattr(c, "is_failure", False)]
        if refused:
            self._listening = False
            log.error(
                "mqtt_command_subscribe_refused",
                topic=self.topics.cmd_subscription,
                reason=str(refused[0]),
                hint="the broker refused the command topic: allow this client id to"
                " subscribe to it in the broker ACL; until then no command reaches the gate",
            )
            return
        self._listening = True
        log.info("mqtt_commands_listening", topic=self.topics.cmd_subscription)

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, rc: Any, _props: Any) -> None:
        was = self._connected
        self._connected = False
        self._listening = False
        if was and not self._stopping:
            n = len(self.window.inflight)
            self._possible_duplicates += n
            log.warning(
                "mqtt_disconnected",
                reason=str(rc),
                inflight=n,
                backlog=len(self.outbox),
                hint="messages stay in the outbox; the link reconnects by itself."
                " If this repeats, check the network / broker",
            )
            self._event("disconnected", {"reason": str(rc), "backlog": len(self.outbox)})

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: Any, _props: Any) -> None:
        # Called under paho's lock: only queue, never touch the outbox here.
        self.window.puback(mid, bool(getattr(rc, "is_failure", False)))
        self._wake.set()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        name = self.topics.command_name(msg.topic)
        if name is None:
            return
        self.inbox.receive(name, bytes(msg.payload), retained=bool(msg.retain))

    def _event(self, name: str, details: dict[str, Any]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(name, details)
        except Exception as exc:
            log.error("mqtt_event_callback_failed", event_name=name, error=repr(exc))

    # -- sender thread ------------------------------------------------------------
    def _send_loop(self) -> None:
        window = self.window
        last_maintain = 0.0
        while True:
            self._wake.wait(window.wait_s(self._stopping))
            self._wake.clear()
            try:
                now = time.monotonic()
                window.collect(now)
                if self._fallback_requested:
                    self._fall_back()
                window.flush_due(now)
                if now - last_maintain >= _MAINTAIN_S:
                    last_maintain = now
                    self._maintain()
                self._report_drops(now)
                if self._stopping and (
                    window.drained() or now >= self._stop_deadline or not self._connected
                ):
                    break
                if self._connected:
                    window.fill(self._client, now)
            except Exception as exc:  # the link must never die of one bad row
                log.error("mqtt_sender_error", error=repr(exc), hint="retrying in 1 s")
                time.sleep(1.0)
        window.collect(time.monotonic())
        window.flush()

    def _fall_back(self) -> None:
        self._fallback_requested = False
        old = self._client
        log.warning(
            "mqtt_protocol_fallback",
            host=self.config.host,
            hint='broker refused MQTT 5; using 3.1.1 (set protocol = "3.1.1" to skip the try)',
        )
        self._use_v5 = False
        if old is not None:
            old.loop_stop()
            old.disconnect()
        self.window.forget_inflight()
        self._client = self._make_client()
        self._connect(self._client)
        self._event("protocol_fallback", {"protocol": "3.1.1"})

    def _maintain(self) -> None:
        self.outbox.prune_age()  # nonces are pruned as newer commands arrive (claim_nonce)

    def _report_drops(self, now: float) -> None:
        # At most one event a minute: the event is itself a message, and at a
        # full outbox each new message drops one more telemetry row.
        if now - self._last_drop_report < _DROP_REPORT_S:
            return
        report = self.outbox.take_drop_report()
        if report is None:
            return
        details = {
            "kind": "telemetry_dropped",
            "severity": "warning",
            "message": f"{report.count} telemetry messages dropped ({report.reason}),"
            f" seq {report.first_seq}..{report.last_seq}",
            "count": report.count,
            "first_seq": report.first_seq,
            "last_seq": report.last_seq,
            "reason": report.reason,
            "dropped_total": self.outbox.dropped_total,
        }
        log.warning(
            "mqtt_telemetry_dropped",
            count=report.count,
            first_seq=report.first_seq,
            last_seq=report.last_seq,
            reason=report.reason,
            hint="the outbox hit its size/age limit during a long outage; ledger messages are kept",
        )
        self._last_drop_report = now
        self.publish("events", details, durable=True)
        self._event("telemetry_dropped", details)
