"""Refusals of unverified commands: counted, summarised once a period, answered on a budget.

Anyone who can publish on the broker can send the gate junk, so what it
costs must not grow with what is sent: each refusal of traffic not signed by
the key is a counter and at most a few clipped examples, summarised in one
event per ``cmd_refusal_report_s``, and answered at most
``cmd_refusal_replies_per_min`` times a minute. A flood never becomes an
audit row per message or an outbox full of replies.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from edged.logs import get_logger
from edged.mqtt.commands import Verdict
from edged.mqtt.config import MqttConfig
from edged.mqtt.topics import now_iso

log = get_logger("mqtt")

Publish = Callable[..., str]
Reply = Callable[[str, dict[str, Any]], None]
RecordEvent = Callable[[str, str, str, dict[str, Any]], None]
EventCallback = Callable[[str, dict[str, Any]], None]

_REPLY_BACKLOG = 1000  # most refusals waiting for a reply token; older ones are only counted
_EXAMPLES = 5  # refused commands quoted in each summary
_NAMES = 20  # distinct command names counted in each summary; the rest as "(other)"


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


class RefusalDesk:
    """Counts refusals of unverified traffic, answers them on a budget, reports them.

    ``refuse`` runs on paho's network thread and the command workers; ``answer``
    and ``report`` run on the signed-command worker, once a tick, and ``report``
    once more (forced) when the link stops, so nothing refused goes unreported.
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        reply: Reply,
        publish: Publish,
        record_event: RecordEvent | None,
        event: EventCallback,
    ) -> None:
        self.config = config
        self._reply = reply
        self._publish = publish
        self._record_event = record_event
        self._event = event
        self._tally = RefusalTally()
        # no more waiting than a minute's budget can answer: the rest is only counted
        self._to_reply: deque[Verdict] = deque(
            maxlen=max(1, min(config.cmd_refusal_replies_per_min, _REPLY_BACKLOG))
        )
        self._tokens = float(config.cmd_refusal_replies_per_min)
        self._token_time = time.monotonic()
        self._last_report = -float("inf")
        self.unverified = 0
        self.replies_skipped = 0

    def refuse(self, verdict: Verdict, size: int, reply: bool = True) -> None:
        """Count one refusal; queue its reply unless ``reply`` is false (retained commands)."""
        self._tally.add(verdict, size)
        self.unverified += 1
        if reply:
            if len(self._to_reply) == self._to_reply.maxlen:
                self.replies_skipped += 1
            self._to_reply.append(verdict)

    def answer(self) -> None:
        """Answer queued refusals while the per-minute budget lasts; skip (count) the rest."""
        rate = self.config.cmd_refusal_replies_per_min
        now = time.monotonic()
        self._tokens = min(float(rate), self._tokens + (now - self._token_time) * rate / 60.0)
        self._token_time = now
        while self._to_reply:
            if self._tokens < 1.0:
                skipped = len(self._to_reply)
                self._to_reply.clear()
                self.replies_skipped += skipped
                return
            verdict = self._to_reply.popleft()
            self._tokens -= 1.0
            self._reply(verdict.name, verdict.reply())

    def report(self, force: bool = False) -> None:
        """One summary per ``cmd_refusal_report_s``: log line, event log, ``events`` topic."""
        now = time.monotonic()
        if not force and now - self._last_report < self.config.cmd_refusal_report_s:
            return
        summary = self._tally.take()
        if summary is None:
            return
        self._last_report = now
        summary["replies_skipped_total"] = self.replies_skipped
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
            self._publish(
                "events",
                {"kind": "mqtt_commands_refused", "severity": "warning", "message": message}
                | summary,
                durable=True,
            )
        except Exception as exc:
            log.error("event_not_sent", kind="mqtt_commands_refused", error=repr(exc))
        self._event("commands_refused", summary)
