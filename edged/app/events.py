"""Where events and audit entries go: the ledger's event log, and MQTT ``events``.

Every part of the box reports through one :class:`EventSink` handed to it at
construction, instead of reaching back into the daemon. Events that happen
before the ledger is open (a camera failing at start) wait in memory and are
written when it opens; an event that cannot be written or sent is logged and
never fails what reported it.
"""

from __future__ import annotations

import threading
from typing import Any

from edged.ledger.store import LedgerError
from edged.logs import get_logger

log = get_logger("events")

_MAX_PENDING = 200  # events kept while the ledger is not open; the oldest go first


class EventSink:
    """The event log and audit trail of the box, attached to the ledger and MQTT as they start."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ledger: Any = None
        self._mqtt: Any = None
        self._pending: list[tuple[str, str, str, dict[str, Any]]] = []

    def attach_ledger(self, ledger: Any) -> None:
        with self._lock:
            self._ledger = ledger
            pending, self._pending = self._pending, []
        for kind, severity, message, details in pending:
            self._write(ledger, kind, severity, message, details)

    def detach_ledger(self) -> None:
        with self._lock:
            self._ledger = None

    def attach_mqtt(self, mqtt: Any) -> None:
        self._mqtt = mqtt

    def event(self, kind: str, severity: str, message: str, **details: Any) -> None:
        """Event log + MQTT ``events``; kept in memory until the ledger is open."""
        log.info("event", kind=kind, severity=severity, message=message, **details)
        with self._lock:
            ledger = self._ledger
            if ledger is None:
                self._pending = [
                    *self._pending[-(_MAX_PENDING - 1) :],
                    (kind, severity, message, details),
                ]
        if ledger is not None:
            self._write(ledger, kind, severity, message, details)
        mqtt = self._mqtt
        # While the link is down (not started yet, or restarting) the event is in the
        # event log, which is what a backend asks for after a gap.
        if mqtt is not None and mqtt.running:
            try:
                mqtt.publish(
                    "events",
                    {"kind": kind, "severity": severity, "message": message, **details},
                    durable=True,
                )
            except Exception as exc:  # a full outbox disk must not fail what reports it
                log.error("event_not_sent", kind=kind, error=repr(exc))

    def record(self, kind: str, severity: str, message: str, details: dict[str, Any]) -> None:
        """An event its sender publishes itself (MQTT's refusal summaries): the event log only."""
        ledger = self._ledger
        if ledger is not None:
            self._write(ledger, kind, severity, message, details)

    def audit(self, actor: str, action: str, details: dict[str, Any]) -> None:
        """A change made at the box, into the hash-chained audit log."""
        ledger = self._ledger
        if ledger is None:
            log.error(
                "audit_not_recorded",
                actor=actor,
                action=action,
                hint="the ledger is not open; the change was made but has no audit row",
            )
            return
        ledger.append_audit(actor, action, details)

    @staticmethod
    def _write(
        ledger: Any, kind: str, severity: str, message: str, details: dict[str, Any]
    ) -> None:
        try:
            ledger.append_event(kind, severity, message, **details)
        except LedgerError as exc:
            log.error("event_not_recorded", kind=kind, error=str(exc))
