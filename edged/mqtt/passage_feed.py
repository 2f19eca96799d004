"""Ledger rows to the MQTT ``passage`` topic, with nothing lost between two databases.

The ledger commit and the outbox commit are two databases, and the relay
pulse sits between them: a kill or power cut there leaves a row that no
message will ever carry. So the feed keeps a mark in the ledger ("every row
up to here is in the outbox"), saved every few seconds and at stop, and
queues what lies beyond it at start and after any failed publish. Rows near
the mark may go out twice; consumers dedupe on ``event_id``.

Lanes append and publish from their own workers, so rows can reach the feed
out of order (lane B's seq 11 before lane A's seq 10). The mark only moves
over rows that are all queued: seq 11 is remembered until 10 arrives. A row
that never arrives (a correction appended by ``edged ledger correct`` in
another process) leaves the feed behind: the periodic check then catches up
from the ledger.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from edged.ledger.store import LedgerError
from edged.logs import get_logger

log = get_logger("mqtt")

MARK = "mqtt_queued_seq"  # ledger export_state key: passage rows up to it are queued
TOPIC = "passage"


def row_payload(row: Any, resent: bool = False) -> dict[str, Any]:
    """The message of a stored ledger row (what consumers get for a passage)."""
    out = {**row.record.to_fields(), "ledger_seq": row.seq, "hash": row.hash}
    if resent:
        out["resent"] = True
    return out


class PassageFeed:
    """Queues passage rows on the outbox in ledger order and keeps the mark."""

    def __init__(self, ledger: Any, mqtt: Any) -> None:
        self._ledger_service = ledger  # LedgerService: its store opens and closes
        self.mqtt = mqtt
        self._lock = threading.Lock()
        self._done = 0  # every row up to here is queued
        self._ahead: set[int] = set()  # queued rows past _done (another lane's row is missing)
        self._saved: int | None = None  # None: mark not read yet, nothing to save
        self.gap = True  # rows may be missing from the outbox: catch up

    @property
    def behind(self) -> bool:
        """Rows past the mark are queued but one before them is not: a catch-up is due."""
        with self._lock:
            return bool(self._ahead)

    @property
    def _ledger(self) -> Any:
        return self._ledger_service.store

    def start(self) -> None:
        """At the first start with a mark, rows already there are not known to be missing."""
        ledger = self._ledger
        if ledger is not None and ledger.get_state(MARK) is None:
            # An upgrade must not resend a year of rows.
            ledger.set_state(MARK, str(ledger.heads()["passages"][0]))

    def publish(self, seq: int, payload: dict[str, Any]) -> None:
        """After the row is on disk; never fails the passage that calls it."""
        try:
            self.mqtt.publish(TOPIC, payload, durable=True)
        except Exception as exc:
            with self._lock:
                self.gap = True
            log.error(
                "passage_not_queued",
                seq=seq,
                error=repr(exc),
                hint="the row is in the ledger and is sent once the outbox can be written"
                " again; check free space on the data partition",
            )
            return
        with self._lock:
            self._queued(seq)

    def _queued(self, seq: int) -> None:
        if seq <= self._done:
            return
        self._ahead.add(seq)
        while self._done + 1 in self._ahead:
            self._done += 1
            self._ahead.discard(self._done)

    def catch_up(self) -> int:
        """Queue the ledger rows past the mark; returns how many were queued."""
        ledger = self._ledger
        if ledger is None:
            return 0
        with self._lock:
            self.gap = False
            mark = int(ledger.get_state(MARK) or 0)
            if self._saved is None:
                self._saved = mark
            since = self._done = max(mark, self._done)
            self._ahead = {s for s in self._ahead if s > since}
            n = 0
            try:
                for row in ledger.passages(since_seq=since):
                    self.mqtt.publish(TOPIC, row_payload(row, resent=True), durable=True)
                    self._queued(row.seq)
                    n += 1
            except Exception:
                self.gap = True
                raise
        if n:
            log.warning("mqtt_passages_requeued", rows=n, from_seq=since + 1, to_seq=since + n)
            self.save_mark()  # a crash loop must not requeue the same rows each time
        return n

    def save_mark(self) -> None:
        ledger = self._ledger
        with self._lock:
            done, saved = self._done, self._saved
        if ledger is None or saved is None or done == saved:
            return
        try:
            ledger.set_state(MARK, str(done))
            with self._lock:
                self._saved = done
        except LedgerError as exc:
            log.error("mqtt_mark_not_saved", error=str(exc))

    def resend(self, from_seq: int, to_seq: int | None) -> int:
        """A backend asked for rows again (it found a gap); returns how many were queued."""
        n = 0
        for row in self._rows(from_seq, to_seq):
            self.mqtt.publish(TOPIC, row_payload(row, resent=True), durable=True)
            n += 1
        return n

    def _rows(self, from_seq: int, to_seq: int | None) -> Iterator[Any]:
        ledger = self._ledger
        if ledger is None:
            raise LedgerError("the ledger is not open")
        return ledger.passages(since_seq=from_seq - 1, until_seq=to_seq)
