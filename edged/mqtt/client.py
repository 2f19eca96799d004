"""``MqttLink``: the gate's store-and-forward connection to its backend.

Three threads, each with one job, so no slow part can stall another:

* paho's network thread: socket, keepalive, reconnect backoff, PUBACKs.
  Its callbacks only set flags and queue things (paho holds its own locks
  while calling them).
* the sender: moves messages from the SQLite outbox into a bounded QoS 1
  window, deletes them after PUBACK (batched), prunes the outbox.
* the command workers: one runs signed commands, one checks and runs the
  list commands (registry, blacklist), so a slow handler (a registry
  replace) never delays keepalives, a ping or an open.

Commands are sorted as they arrive, on paho's thread, by checks that cost
microseconds: the size cap of the command's name on the raw bytes, then (for
all but list commands) the HMAC. Only signed commands are queued; refusals
of unverified traffic are counted and summarised in one event per
``cmd_refusal_report_s`` and answered at most ``cmd_refusal_replies_per_min``
times a minute. So a flood of junk costs a counter, never a queue slot a
signed command needs, an audit row, or an outbox full of replies.

Ordering: live messages (enqueued while connected) go first, in order; the
backlog left from an outage or a previous run drains in order beside them at
``drain_rate`` so a long backlog never holds up today's passages. Consumers
that need one total order sort by ``seq``.
"""

from __future__ import annotations

import json
import queue
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edged.lane.worker import WorkerTimeout
from edged.logs import get_logger
from edged.mqtt.commands import (
    BULK_COMMANDS,
    CommandVerifier,
    Signed,
    Verdict,
    refusal,
)
from edged.mqtt.config import MqttConfig
from edged.mqtt.outbox import Outbox, Row
from edged.mqtt.topics import Topics, build_envelope, encode, new_id, now_iso

log = get_logger("mqtt")

EventCallback = Callable[[str, dict[str, Any]], None]
AuditCallback = Callable[[str, str, dict[str, Any]], None]
CommandHandler = Callable[[dict[str, Any], str], dict[str, Any] | None]
RecordEvent = Callable[[str, str, str, dict[str, Any]], None]

_ACK_BATCH = 256
_ACK_FLUSH_S = 0.1
_MAINTAIN_S = 10.0
_REFUSED_PAUSE_S = 5.0
_DROP_REPORT_S = 60.0
_SIGNED_QUEUE = 256  # signed commands waiting for the worker (only the key holder fills it)
_BULK_QUEUE = 64  # list commands waiting to be checked, and together at most cmd_max_bytes
_REPLY_BACKLOG = 1000  # most refusals waiting for a reply token; older ones are only counted
_EXAMPLES = 5  # refused commands quoted in each summary
_NAMES = 20  # distinct command names counted in each summary; the rest as "(other)"
_TICK_S = 0.2


class RefusalTally:
    """Refused unverified commands since the last summary: counts and a few examples.

    Bounded whatever arrives: counters, at most ``_EXAMPLES`` examples with
    clipped fields, at most ``_NAMES`` command names.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.count = 0
        self.bytes = 0
        self.by_error: dict[str, int] = {}
        self.by_command: dict[str, int] = {}
        self.examples: list[dict[str, Any]] = []
        self.since: str | None = None

    def add(self, verdict: Verdict, size: int) -> None:
        with self._lock:
            if self.count == 0:
                self.since = now_iso()
            self.count += 1
            self.bytes += size
            err = verdict.error or "refused"
            self.by_error[err] = self.by_error.get(err, 0) + 1
            name = verdict.name[:64]
            if name not in self.by_command and len(self.by_command) >= _NAMES:
                name = "(other)"
            self.by_command[name] = self.by_command.get(name, 0) + 1
            if len(self.examples) < _EXAMPLES:
                self.examples.append(
                    {
                        "command": verdict.name[:64],
                        "error": err,
                        "detail": verdict.detail[:200],
                        "actor": verdict.actor,
                        "cmd_id": verdict.cmd_id,
                        "bytes": size,
                    }
                )

    def take(self) -> dict[str, Any] | None:
        with self._lock:
            if self.count == 0:
                return None
            out = {
                "count": self.count,
                "bytes": self.bytes,
                "by_error": dict(self.by_error),
                "by_command": dict(self.by_command),
                "examples": list(self.examples),
                "since": self.since,
            }
            self._reset()
            return out


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
        self._audit = audit
        self._record_event = record_event
        keys = [config.hmac_key, config.hmac_key_previous]
        self.verifier = CommandVerifier(
            self.site,
            self.gate,
            keys,
            self.outbox,
            max_skew_s=config.cmd_max_skew_s,
            allowed=list(config.commands_allowed),
            bulk_max_bytes=config.cmd_max_bytes,
        )
        self._handlers: dict[str, CommandHandler] = {"ping": self._ping}
        self._use_v5 = config.protocol != "3.1.1"
        self._client: mqtt.Client | None = None
        self._connected = False
        self._listening = False  # the broker acknowledged the command subscription
        self._subscribe_mid: int | None = None
        self._window = config.max_inflight
        self._live_from = self.outbox.next_seq
        self._inflight: dict[int, int] = {}  # paho mid -> seq (sender thread only)
        self._busy: set[int] = set()  # seqs in flight or acked-not-yet-deleted
        self._acks: deque[tuple[int, bool]] = deque()  # from paho's thread
        self._pending_acks: list[int] = []
        self._pending_since = 0.0
        self._tokens = float(config.max_inflight)
        self._token_time = time.monotonic()
        self._pause_until = 0.0
        self._last_drop_report = -_DROP_REPORT_S
        self._fallback_requested = False
        self._connect_failures = 0  # failed attempts since the last connection
        self.last_connect_error: str | None = None  # why the last attempt failed
        self._wake = threading.Event()
        self._stopping = False
        self._stop_deadline = 0.0
        self._sender: threading.Thread | None = None
        self._worker: threading.Thread | None = None
        self._bulk_worker: threading.Thread | None = None
        self._signed: queue.Queue[Signed | None] = queue.Queue(maxsize=_SIGNED_QUEUE)
        self._queued_nonces: set[str] = set()  # nonces in _signed, so copies are not queued
        self._queued_lock = threading.Lock()
        self._bulk: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._bulk_bytes = 0  # raw bytes waiting in _bulk (paho's thread adds, the worker takes)
        self._bulk_lock = threading.Lock()
        self._tally = RefusalTally()
        # no more waiting than a minute's budget can answer: the rest is only counted
        self._to_reply: deque[Verdict] = deque(
            maxlen=max(1, min(config.cmd_refusal_replies_per_min, _REPLY_BACKLOG))
        )
        self._reply_tokens = float(config.cmd_refusal_replies_per_min)
        self._reply_time = time.monotonic()
        self._last_refusal_report = -float("inf")
        self._counters = {
            "sent": 0,
            "possible_duplicates": 0,
            "commands_accepted": 0,
            "commands_refused": 0,
            "commands_refused_unverified": 0,
            "refusal_replies_skipped": 0,
            "connects": 0,
        }
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
        if name not in self.verifier.allowed and name not in self._handlers:
            log.warning("mqtt_handler_for_disabled_command", command=name)
        self._handlers[name] = handler

    def start(self) -> None:
        self._stopping = False
        self._client = self._make_client()
        self._connect(self._client)
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self._worker = threading.Thread(target=self._command_loop, name="mqtt-cmd", daemon=True)
        self._bulk_worker = threading.Thread(
            target=self._bulk_loop, name="mqtt-cmd-bulk", daemon=True
        )
        self._sender.start()
        self._worker.start()
        self._bulk_worker.start()
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
        if self._worker:
            self._signed.put(None)
            self._worker.join(5)
        if self._bulk_worker:
            self._bulk.put(None)
            self._bulk_worker.join(5)
        self._report_refusals(force=True)  # nothing refused goes unreported
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
            "inflight": len(self._inflight),
            "commands_queued": self._signed.qsize() + self._bulk.qsize(),
            "connect_error": None if self._connected else self.last_connect_error,
        }
        out.update(self.outbox.stats())
        out["backlog"] = max(out["backlog"] - len(self._pending_acks), 0)
        out.update(self._counters)
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
        cfg = self.config
        proto = mqtt.MQTTv5 if self._use_v5 else mqtt.MQTTv311
        kwargs: dict[str, Any] = {"client_id": self.client_id, "protocol": proto}
        if not self._use_v5:
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
        client.will_set(self.topics.availability, self._availability("offline"), 1, True)
        client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)
        client.max_inflight_messages_set(cfg.max_inflight + 2)
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
            self._connect_failed(
                "mqtt_connect_refused",
                str(rc),
                "check username/password, client id, TLS files and broker ACLs; the link"
                " keeps retrying quietly",
            )
            return
        if self._connect_failures:
            log.info("mqtt_reachable_again", failed_attempts=self._connect_failures)
        self._connect_failures = 0
        self.last_connect_error = None
        window = self.config.max_inflight
        rmax = getattr(props, "ReceiveMaximum", None) if props is not None else None
        if isinstance(rmax, int) and rmax > 0:
            window = min(window, rmax)
        self._window = window
        self._live_from = self.outbox.next_seq
        self._counters["connects"] += 1
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
        self._connect_failed(
            "mqtt_unreachable",
            str(exc) if exc is not None else "connection failed",
            unreachable_hint(exc, self.config.host, self.config.port),
        )

    def _connect_failed(self, event: str, reason: str, hint: str) -> None:
        """The first failure of a run of them is a warning with the reason; the rest are quiet.

        paho retries with backoff (``reconnect_min_s`` doubling to
        ``reconnect_max_s``); a warning each time would bury the journal during
        an outage that is already known. A new reason is worth a line again.
        """
        self._connect_failures += 1
        repeated = self.last_connect_error == reason
        self.last_connect_error = reason
        if self._connect_failures == 1 or not repeated:
            log.warning(
                event,
                host=self.config.host,
                port=self.config.port,
                reason=reason,
                retry_s=f"{self.config.reconnect_min_s:g}..{self.config.reconnect_max_s:g}",
                hint=hint,
            )
        else:
            log.debug(event, reason=reason, attempt=self._connect_failures)

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
            n = len(self._inflight)
            self._counters["possible_duplicates"] += n
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
        self._acks.append((mid, bool(getattr(rc, "is_failure", False))))
        self._wake.set()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        name = self.topics.command_name(msg.topic)
        if name is None:
            return
        raw = bytes(msg.payload)
        if msg.retain:
            self._refuse(
                refusal(
                    name,
                    "retained",
                    "a backend published a command with retain=true; clear it (publish an"
                    " empty retained message on the topic): retained commands are ignored",
                ),
                len(raw),
                reply=False,
            )
            return
        self.intake(name, raw)

    def intake(self, name: str, raw: bytes) -> None:
        """Sort one arriving command: signed to its queue, anything else counted.

        Runs on paho's network thread, so it only does what costs microseconds
        for a message within its cap; list commands are too big to check here
        and go to their own small queue.
        """
        if name in BULK_COMMANDS:
            early = self.verifier.precheck(name, raw)
            if early is not None:
                self._refuse(early, len(raw))
                return
            with self._bulk_lock:
                room = (
                    self._bulk.qsize() < _BULK_QUEUE
                    and self._bulk_bytes + len(raw) <= self.config.cmd_max_bytes
                )
                if room:
                    self._bulk_bytes += len(raw)
                    self._bulk.put_nowait((name, raw))
            if not room:
                self._refuse(
                    refusal(
                        name,
                        "busy",
                        "list commands are being handled one at a time and the queue is"
                        " full; send it again in a few seconds",
                    ),
                    len(raw),
                )
            return
        got = self.verifier.authenticate(name, raw)
        if isinstance(got, Verdict):
            self._refuse(got, len(raw))
            return
        early = self.verifier.looks_fresh(got)
        with self._queued_lock:
            if early is None and got.nonce in self._queued_nonces:
                early = refusal(
                    name,
                    "replayed",
                    f"nonce {got.nonce} is already waiting to be handled",
                    cmd_id=got.cmd_id,
                    nonce=got.nonce,
                    actor=got.actor,
                )
            if early is None:
                self._queued_nonces.add(got.nonce)
        if early is not None:  # copies of a captured command: counted like junk
            self._refuse(early, len(raw))
            return
        try:
            self._signed.put_nowait(got)
        except queue.Full:  # only the key holder can fill it: say so loudly, every time
            with self._queued_lock:
                self._queued_nonces.discard(got.nonce)
            log.error(
                "mqtt_signed_command_queue_full",
                command=name,
                hint="signed commands arrive faster than the gate handles them; the"
                " backend must wait for replies before sending more",
            )
            verdict = refusal(
                name,
                "busy",
                "the gate is handling too many signed commands; send it again shortly",
                cmd_id=got.cmd_id,
                nonce=got.nonce,
                actor=got.actor,
            )
            self._refuse(verdict, len(raw))

    def _refuse(self, verdict: Verdict, size: int, reply: bool = True) -> None:
        """Count a refusal of unverified traffic; maybe reply later (rate-limited)."""
        self._tally.add(verdict, size)
        self._counters["commands_refused"] += 1
        self._counters["commands_refused_unverified"] += 1
        if reply:
            if len(self._to_reply) == self._to_reply.maxlen:
                self._counters["refusal_replies_skipped"] += 1
            self._to_reply.append(verdict)

    def _event(self, name: str, details: dict[str, Any]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(name, details)
        except Exception as exc:
            log.error("mqtt_event_callback_failed", event_name=name, error=repr(exc))

    # -- sender thread ------------------------------------------------------------
    def _send_loop(self) -> None:
        last_maintain = 0.0
        while True:
            self._wake.wait(self._timeout())
            self._wake.clear()
            try:
                now = time.monotonic()
                self._collect_acks(now)
                if self._fallback_requested:
                    self._fall_back()
                if self._pending_acks and (
                    len(self._pending_acks) >= _ACK_BATCH
                    or now - self._pending_since >= _ACK_FLUSH_S
                ):
                    self._flush_acks()
                if now - last_maintain >= _MAINTAIN_S:
                    last_maintain = now
                    self._maintain()
                self._report_drops(now)
                if self._stopping:
                    drained = len(self.outbox) - len(self._pending_acks) <= 0
                    if drained or now >= self._stop_deadline or not self._connected:
                        break
                if self._connected and now >= self._pause_until:
                    self._fill_window(now)
            except Exception as exc:  # the link must never die of one bad row
                log.error("mqtt_sender_error", error=repr(exc), hint="retrying in 1 s")
                time.sleep(1.0)
        self._collect_acks(time.monotonic())
        self._flush_acks()

    def _timeout(self) -> float:
        if self._stopping:
            return 0.05
        if self._pending_acks:
            return _ACK_FLUSH_S
        if self.config.drain_rate > 0 and self._live_from > 1:
            return max(0.005, min(1.0, 1.0 / self.config.drain_rate))
        return 1.0

    def _collect_acks(self, now: float) -> None:
        while self._acks:
            mid, failed = self._acks.popleft()
            seq = self._inflight.pop(mid, None)
            if seq is None:
                continue
            if failed:
                self._busy.discard(seq)
                self._pause_until = now + _REFUSED_PAUSE_S
                log.error(
                    "mqtt_publish_refused",
                    seq=seq,
                    hint="the broker refused the message (ACL or quota): check broker ACLs"
                    " for this client id; retrying in 5 s",
                )
                continue
            if not self._pending_acks:
                self._pending_since = now
            self._pending_acks.append(seq)
            self._counters["sent"] += 1

    def _flush_acks(self) -> None:
        if not self._pending_acks:
            return
        done, self._pending_acks = self._pending_acks, []
        self.outbox.ack(done)
        self._busy.difference_update(done)

    def _fill_window(self, now: float) -> None:
        free = self._window - len(self._inflight)
        if free <= 0:
            return
        rows = self.outbox.fetch(self._live_from, None, free, self._busy)
        self._send(rows)
        free -= len(rows)
        if free <= 0 or self._live_from <= 1:
            return
        rate = self.config.drain_rate
        if rate > 0:
            self._tokens = min(
                float(max(self._window, 1)), self._tokens + (now - self._token_time) * rate
            )
            self._token_time = now
            free = min(free, int(self._tokens))
        if free <= 0:
            return
        rows = self.outbox.fetch(0, self._live_from, free, self._busy)
        if rate > 0:
            self._tokens -= len(rows)
        self._send(rows)

    def _send(self, rows: list[Row]) -> None:
        client = self._client
        if client is None:
            return
        for row in rows:
            info = client.publish(row.topic, row.payload, qos=1, retain=row.retain)
            if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                self._inflight[info.mid] = row.seq
                self._busy.add(row.seq)
            else:
                log.error("mqtt_publish_failed", seq=row.seq, rc=int(info.rc))
                break

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
        self._inflight.clear()
        self._busy = set(self._pending_acks)
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

    # -- command workers ------------------------------------------------------------
    def _command_loop(self) -> None:
        while True:
            try:
                item = self._signed.get(timeout=_TICK_S)
            except queue.Empty:
                item = False
            if item is None:
                return
            try:
                if isinstance(item, Signed):
                    try:
                        verdict = self.verifier.admit(item)
                    finally:
                        with self._queued_lock:
                            self._queued_nonces.discard(item.nonce)
                    self._dispatch(verdict)
                self._reply_refusals()
                self._report_refusals()
            except Exception as exc:  # never let a command kill the worker
                log.error("mqtt_command_crashed", error=repr(exc))

    def _bulk_loop(self) -> None:
        while True:
            item = self._bulk.get()
            if item is None:
                return
            name, raw = item
            with self._bulk_lock:
                self._bulk_bytes -= len(raw)
            try:
                self._handle_command(name, raw)
            except Exception as exc:  # never let a command kill the worker
                log.error("mqtt_command_crashed", command=name, error=repr(exc))
            finally:
                del item, raw  # a list command may be cmd_max_bytes: do not keep it

    def handle_command(self, name: str, raw: bytes) -> dict[str, Any]:
        """Verify, dispatch and reply to one command; returns the reply payload."""
        return self._handle_command(name, raw)

    def _handle_command(self, name: str, raw: bytes) -> dict[str, Any]:
        got = self.verifier.authenticate(name, raw)
        verdict = got if isinstance(got, Verdict) else self.verifier.admit(got)
        if not verdict.ok and not verdict.fresh:
            self._refuse(verdict, len(raw))
            return verdict.reply()
        return self._dispatch(verdict)

    def _dispatch(self, verdict: Verdict) -> dict[str, Any]:
        """Run a signed command and reply; audit it (it is fresh: the key holder sent it)."""
        name = verdict.name
        if not verdict.ok and not verdict.fresh:  # stale or replayed: counted, not audited
            self._refuse(verdict, 0)
            return verdict.reply()
        result: dict[str, Any] | None = None
        error, detail = verdict.error, verdict.detail
        if verdict.ok:
            handler = self._handlers.get(name)
            if handler is None:
                error = "not_supported"
                detail = f"this gate has no handler for {name!r}"
            else:
                try:
                    out = handler(verdict.params, verdict.actor)
                    result = dict(out) if out is not None else {}
                    json.dumps(result)
                except WorkerTimeout as exc:  # queued behind other gate work: not undone
                    result = None
                    error, detail = "timeout", str(exc)
                    log.warning("mqtt_command_timed_out", command=name, detail=detail)
                except Exception as exc:
                    result = None
                    error = "handler_error"
                    detail = f"{type(exc).__name__}: {exc}"[:1000]
                    log.error("mqtt_command_handler_failed", command=name, error=repr(exc))
        ok = error is None
        reply = {
            "cmd_id": verdict.cmd_id,
            "nonce": verdict.nonce,
            "command": name,
            "ok": ok,
            "error": error,
            "detail": detail,
            "result": result,
        }
        self._counters["commands_accepted" if ok else "commands_refused"] += 1
        audit_details = {
            "command": name,
            "cmd_id": verdict.cmd_id,
            "nonce": verdict.nonce,
            "ok": ok,
            "error": error,
            "detail": detail,
            "signature_verified": True,
        }
        if verdict.ok:
            audit_details["params"] = verdict.params
        action = "mqtt_command_accepted" if ok else "mqtt_command_refused"
        if self._audit is not None:
            try:
                self._audit(verdict.actor, action, audit_details)
            except Exception as exc:
                log.error("mqtt_audit_callback_failed", command=name, error=repr(exc))
        (log.info if ok else log.warning)(
            action, command=name, actor=verdict.actor, error=error, detail=detail
        )
        self._send_reply(name, reply)
        return reply

    def _send_reply(self, name: str, reply: dict[str, Any]) -> None:
        try:
            self.publish("reply", reply, subtopic=name, durable=False)
        except ValueError as exc:  # a topic level no reply can be sent on
            log.debug("mqtt_reply_not_sent", command=name[:64], error=str(exc)[:200])

    def _reply_refusals(self) -> None:
        """Answer queued refusals while the per-minute budget lasts; skip (count) the rest."""
        rate = self.config.cmd_refusal_replies_per_min
        now = time.monotonic()
        self._reply_tokens = min(
            float(rate), self._reply_tokens + (now - self._reply_time) * rate / 60.0
        )
        self._reply_time = now
        while self._to_reply:
            if self._reply_tokens < 1.0:
                skipped = len(self._to_reply)
                self._to_reply.clear()
                self._counters["refusal_replies_skipped"] += skipped
                return
            verdict = self._to_reply.popleft()
            self._reply_tokens -= 1.0
            self._send_reply(verdict.name, verdict.reply())

    def _report_refusals(self, force: bool = False) -> None:
        """One summary per ``cmd_refusal_report_s``: log line, event log, ``events`` topic."""
        now = time.monotonic()
        if not force and now - self._last_refusal_report < self.config.cmd_refusal_report_s:
            return
        summary = self._tally.take()
        if summary is None:
            return
        self._last_refusal_report = now
        summary["replies_skipped_total"] = self._counters["refusal_replies_skipped"]
        message = (
            f"{summary['count']} unverified commands refused since {summary['since']}"
            f" ({', '.join(f'{k} {v}' for k, v in sorted(summary['by_error'].items()))})"
        )
        log.warning(
            "mqtt_commands_refused",
            count=summary["count"],
            by_error=summary["by_error"],
            first=summary["examples"][0] if summary["examples"] else None,
            hint="someone publishes commands that are not signed with this site's key, or"
            " replays old ones: check the broker's ACL and the backend's key and clock",
        )
        if self._record_event is not None:
            try:
                self._record_event("mqtt_commands_refused", "warning", message, summary)
            except Exception as exc:
                log.error("mqtt_event_not_recorded", error=repr(exc))
        try:
            self.publish(
                "events",
                {"kind": "mqtt_commands_refused", "severity": "warning", "message": message}
                | summary,
                durable=True,
            )
        except Exception as exc:
            log.error("event_not_sent", kind="mqtt_commands_refused", error=repr(exc))
        self._event("commands_refused", summary)

    def _ping(self, params: dict[str, Any], _actor: str) -> dict[str, Any]:
        return {"pong": True, "echo": params.get("echo"), "backlog": len(self.outbox)}
