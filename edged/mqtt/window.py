"""The QoS 1 send window over the outbox: what is in flight, what is acknowledged.

Messages move from the SQLite outbox into a bounded window of QoS 1
publishes and are deleted only after their PUBACK, in batches (one SQLite
transaction per ``_ACK_BATCH`` or ``_ACK_FLUSH_S``). Live messages (enqueued
since the link last connected) go first, in order; the backlog left from an
outage or a previous run drains in order beside them at ``drain_rate``, so a
long backlog never holds up today's passages.

Everything here runs on the sender thread, except :meth:`SendWindow.puback`,
which paho calls under its own lock and which therefore only queues.
"""

from __future__ import annotations

import time
from collections import deque

import paho.mqtt.client as mqtt

from edged.logs import get_logger
from edged.mqtt.outbox import Outbox, Row

log = get_logger("mqtt")

_ACK_BATCH = 256
_ACK_FLUSH_S = 0.1
_REFUSED_PAUSE_S = 5.0


class SendWindow:
    """In-flight publishes, acknowledged rows waiting to be deleted, and the drain rate."""

    def __init__(self, outbox: Outbox, max_inflight: int, drain_rate: float) -> None:
        self.outbox = outbox
        self.drain_rate = drain_rate
        self._size = max_inflight
        self._live_from = outbox.next_seq
        self.inflight: dict[int, int] = {}  # paho mid -> seq
        self._busy: set[int] = set()  # seqs in flight or acked-not-yet-deleted
        self._acks: deque[tuple[int, bool]] = deque()  # from paho's thread
        self.acked: list[int] = []  # PUBACKed, not yet deleted from the outbox
        self._acked_since = 0.0
        self._tokens = float(max_inflight)
        self._token_time = time.monotonic()
        self._pause_until = 0.0
        self.sent = 0

    def puback(self, mid: int, failed: bool) -> None:
        """paho's thread: only queue, never touch the outbox here."""
        self._acks.append((mid, failed))

    def connected(self, size: int) -> None:
        """A new session: its window size, and what counts as live from now on."""
        self._size = size
        self._live_from = self.outbox.next_seq

    def forget_inflight(self) -> None:
        """The client was replaced: what was in flight is sent again from the outbox."""
        self.inflight.clear()
        self._busy = set(self.acked)

    def wait_s(self, stopping: bool) -> float:
        """How long the sender may sleep before the window needs it again."""
        if stopping:
            return 0.05
        if self.acked:
            return _ACK_FLUSH_S
        if self.drain_rate > 0 and self._live_from > 1:
            return max(0.005, min(1.0, 1.0 / self.drain_rate))
        return 1.0

    def drained(self) -> bool:
        return len(self.outbox) - len(self.acked) <= 0

    def collect(self, now: float) -> None:
        """Take the PUBACKs paho queued: acknowledged rows wait to be deleted in a batch."""
        while self._acks:
            mid, failed = self._acks.popleft()
            seq = self.inflight.pop(mid, None)
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
            if not self.acked:
                self._acked_since = now
            self.acked.append(seq)
            self.sent += 1

    def flush_due(self, now: float) -> None:
        if self.acked and (
            len(self.acked) >= _ACK_BATCH or now - self._acked_since >= _ACK_FLUSH_S
        ):
            self.flush()

    def flush(self) -> None:
        """Delete the acknowledged rows from the outbox, one transaction."""
        if not self.acked:
            return
        done, self.acked = self.acked, []
        self.outbox.ack(done)
        self._busy.difference_update(done)

    def fill(self, client: mqtt.Client | None, now: float) -> None:
        """Publish live rows into the free slots, then backlog rows at ``drain_rate``."""
        if client is None or now < self._pause_until:
            return
        free = self._size - len(self.inflight)
        if free <= 0:
            return
        rows = self.outbox.fetch(self._live_from, None, free, self._busy)
        self._send(client, rows)
        free -= len(rows)
        if free <= 0 or self._live_from <= 1:
            return
        rate = self.drain_rate
        if rate > 0:
            self._tokens = min(
                float(max(self._size, 1)), self._tokens + (now - self._token_time) * rate
            )
            self._token_time = now
            free = min(free, int(self._tokens))
        if free <= 0:
            return
        rows = self.outbox.fetch(0, self._live_from, free, self._busy)
        if rate > 0:
            self._tokens -= len(rows)
        self._send(client, rows)

    def _send(self, client: mqtt.Client, rows: list[Row]) -> None:
        for row in rows:
            info = client.publish(row.topic, row.payload, qos=1, retain=row.retain)
            if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                self.inflight[info.mid] = row.seq
                self._busy.add(row.seq)
            else:
                log.error("mqtt_publish_failed", seq=row.seq, rc=int(info.rc))
                break
