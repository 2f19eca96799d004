"""The command inbox: sort commands as they arrive, run the signed ones, reply to each.

Commands are sorted on paho's network thread by checks that cost
microseconds: the size cap of the command's name on the raw bytes, then (for
all but list commands) the HMAC, the age and a read of the nonce cache. Only
signed, fresh commands are queued; everything else goes to the
:class:`~edged.mqtt.refusals.RefusalDesk`, so a flood of junk costs a
counter, never a queue slot a signed command needs.

Two workers run the handlers, so a slow one never delays keepalives: one
runs signed commands (a ping, an open, an alert level), one checks and runs
the list commands (registry, blacklist), which are too big to check on
arrival and wait in their own small queue (``cmd_max_bytes`` in all).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from typing import Any

from edged.lane.worker import WorkerTimeout
from edged.logs import get_logger
from edged.mqtt.commands import BULK_COMMANDS, CommandVerifier, Signed, Verdict, refusal
from edged.mqtt.config import MqttConfig
from edged.mqtt.refusals import EventCallback, Publish, RecordEvent, RefusalDesk

log = get_logger("mqtt")

AuditCallback = Callable[[str, str, dict[str, Any]], None]
CommandHandler = Callable[[dict[str, Any], str], dict[str, Any] | None]

_SIGNED_QUEUE = 256  # signed commands waiting for the worker (only the key holder fills it)
_BULK_QUEUE = 64  # list commands waiting to be checked, and together at most cmd_max_bytes
_TICK_S = 0.2


class CommandInbox:
    """Arrival checks, the signed and list queues, and the workers that run handlers."""

    def __init__(
        self,
        config: MqttConfig,
        verifier: CommandVerifier,
        *,
        publish: Publish,
        backlog: Callable[[], int],
        audit: AuditCallback | None,
        record_event: RecordEvent | None,
        event: EventCallback,
    ) -> None:
        """``publish(kind, payload, ...)`` sends replies and events through the outbox;
        ``backlog()`` is what ``ping`` reports; ``audit(actor, action, details)`` gets
        one chained entry per signed, fresh command."""
        self.config = config
        self.verifier = verifier
        self._publish = publish
        self._backlog = backlog
        self._audit = audit
        self.refusals = RefusalDesk(
            config, reply=self._send_reply, publish=publish, record_event=record_event, event=event
        )
        self._handlers: dict[str, CommandHandler] = {"ping": self._ping}
        self._signed: queue.Queue[Signed | None] = queue.Queue(maxsize=_SIGNED_QUEUE)
        self._queued_nonces: set[str] = set()  # nonces in _signed, so copies are not queued
        self._queued_lock = threading.Lock()
        self._bulk: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._bulk_bytes = 0  # raw bytes waiting in _bulk (paho's thread adds, the worker takes)
        self._bulk_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._bulk_worker: threading.Thread | None = None
        self.accepted = 0
        self.refused = 0  # every refusal, signed or not

    def on_command(self, name: str, handler: CommandHandler) -> None:
        """Register the daemon's handler: ``handler(params, actor) -> result dict``."""
        if name not in self.verifier.allowed and name not in self._handlers:
            log.warning("mqtt_handler_for_disabled_command", command=name)
        self._handlers[name] = handler

    def start(self) -> None:
        self._worker = threading.Thread(target=self._command_loop, name="mqtt-cmd", daemon=True)
        self._bulk_worker = threading.Thread(
            target=self._bulk_loop, name="mqtt-cmd-bulk", daemon=True
        )
        self._worker.start()
        self._bulk_worker.start()

    def stop(self) -> None:
        """Stop both workers, then report what was refused since the last summary."""
        if self._worker:
            self._signed.put(None)
            self._worker.join(5)
        if self._bulk_worker:
            self._bulk.put(None)
            self._bulk_worker.join(5)
        self.refusals.report(force=True)  # nothing refused goes unreported

    def queued(self) -> int:
        return self._signed.qsize() + self._bulk.qsize()

    # -- arrival (paho's network thread) -------------------------------------------
    def receive(self, name: str, raw: bytes, retained: bool) -> None:
        """One message on a command topic; a retained one is refused without a reply."""
        if retained:
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
            self._intake_bulk(name, raw)
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

    def _intake_bulk(self, name: str, raw: bytes) -> None:
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

    def _refuse(self, verdict: Verdict, size: int, reply: bool = True) -> None:
        """Count a refusal of unverified traffic; maybe reply later (rate-limited)."""
        self.refused += 1
        self.refusals.refuse(verdict, size, reply)

    # -- workers ------------------------------------------------------------------
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
                self.refusals.answer()
                self.refusals.report()
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
                self._handle(name, raw)
            except Exception as exc:  # never let a command kill the worker
                log.error("mqtt_command_crashed", command=name, error=repr(exc))
            finally:
                del item, raw  # a list command may be cmd_max_bytes: do not keep it

    def _handle(self, name: str, raw: bytes) -> dict[str, Any]:
        """Verify, dispatch and reply to one list command; returns the reply payload."""
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
        if ok:
            self.accepted += 1
        else:
            self.refused += 1
        self._audit_command(verdict, ok, error, detail)
        self._send_reply(name, reply)
        return reply

    def _audit_command(self, verdict: Verdict, ok: bool, error: str | None, detail: str) -> None:
        name = verdict.name
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

    def _send_reply(self, name: str, reply: dict[str, Any]) -> None:
        try:
            self._publish("reply", reply, subtopic=name, durable=False)
        except ValueError as exc:  # a topic level no reply can be sent on
            log.debug("mqtt_reply_not_sent", command=name[:64], error=str(exc)[:200])

    def _ping(self, params: dict[str, Any], _actor: str) -> dict[str, Any]:
        return {"pong": True, "echo": params.get("echo"), "backlog": self._backlog()}
