"""Heavy-pollution alert levels (重污染天气预警) with their time windows.

Authorities announce a level with a start and an end ("orange from 20:00 on
the 1st to 24:00 on the 3rd"), and change it while it runs ("red from noon
on the 2nd"). Each announcement is one entry; the level in force at a moment
is derived by a pure function: among the entries whose window contains it,
the one set last wins; none gives ``"none"``. So a scheduled alert starts
and ends on time with nobody at the box, and a later announcement overrides
an earlier one exactly where their windows overlap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from edged.admission import rows
from edged.admission.audit import Auditor
from edged.admission.lists import now_local
from edged.admission.model import ALERT_LEVELS, AlertEntry
from edged.admission.tables import RegistryDb

KEEP_ENDED = timedelta(days=31)
"""Entries that ended longer ago than this are left out of snapshots (the file keeps them)."""


def _order(e: AlertEntry) -> tuple[datetime, int]:
    return (e.set_at, e.id)


def entry_at(entries: Iterable[AlertEntry], t: datetime) -> AlertEntry | None:
    """The entry in force at ``t``: the one set last among those whose window holds ``t``."""
    covering = [e for e in entries if e.covers(t)]
    return max(covering, key=_order) if covering else None


def level_at(entries: Iterable[AlertEntry], t: datetime) -> str:
    """The alert level in force at ``t``; ``"none"`` where no entry covers it."""
    e = entry_at(entries, t)
    return "none" if e is None else e.level


def next_change(entries: Iterable[AlertEntry], t: datetime) -> datetime | None:
    """The first moment after ``t`` at which the level in force differs from the one at
    ``t``; None if it never does. A caller schedules its "level changed" event by it."""
    entries = list(entries)
    now = level_at(entries, t)
    edges = sorted(
        {e.valid_from for e in entries if e.valid_from > t}
        | {e.valid_until for e in entries if e.valid_until is not None and e.valid_until > t}
    )
    return next((b for b in edges if level_at(entries, b) != now), None)


def covered_by(later: AlertEntry, earlier: AlertEntry, since: datetime | None = None) -> bool:
    """True if ``later`` holds every moment of ``earlier``'s window (from ``since`` on, if
    given): ``earlier`` can then never be in force again (from ``since`` on)."""
    if _order(later) <= _order(earlier):
        return False
    start = earlier.valid_from if since is None else max(earlier.valid_from, since)
    if later.valid_from > start:
        return False
    if later.valid_until is None:
        return True
    return earlier.valid_until is not None and later.valid_until >= earlier.valid_until


@dataclass(frozen=True)
class AlertState:
    """The alert level in force at one moment, and who set it for which window."""

    level: str = "none"
    set_by: str = ""
    set_at: datetime | None = None
    reason: str = ""
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @classmethod
    def of(cls, entry: AlertEntry | None) -> AlertState:
        if entry is None:
            return cls()
        return cls(
            entry.level,
            entry.set_by,
            entry.set_at,
            entry.reason,
            entry.valid_from,
            entry.valid_until,
        )


class AlertSchedule:
    """The alert entries in the registry file: set (now or scheduled), list, prune."""

    def __init__(self, rdb: RegistryDb, audit: Auditor, changed: Callable[[str], None]) -> None:
        self.rdb = rdb
        self.m = rdb.m.alert
        self.audit = audit
        self.changed = changed
        self.tidy()

    def set(
        self,
        level: str,
        actor: str,
        reason: str = "",
        *,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        now: datetime | None = None,
    ) -> AlertEntry:
        """Announce ``level`` from ``valid_from`` (default now) until ``valid_until``
        (default: until another entry replaces it)."""
        now = now or now_local()
        start = valid_from or now
        problems = []
        if level not in ALERT_LEVELS:
            problems.append(f"level: expected one of {', '.join(ALERT_LEVELS)}, found {level!r}")
        if not actor.strip():
            problems.append("actor: who set the alert level is required")
        if valid_until is not None and valid_until <= start:
            problems.append(f"valid_until: must be after valid_from ({start.isoformat()})")
        elif valid_until is not None and valid_until <= now:
            problems.append(f"valid_until: {valid_until.isoformat()} has passed; nothing to set")
        if problems:
            raise ValueError("; ".join(problems))
        with self.rdb.lock, self.rdb.db.atomic():
            before = self._live()
            current = entry_at(before, now)
            repeat = (
                valid_from is None
                and valid_until is None
                and current is not None
                and current.valid_until is None
                and (current.level, current.reason) == (level, reason or current.reason)
            )
            if repeat:  # a backend repeating the level in force: nothing to add
                assert current is not None
                entry, gone = current, []
            else:
                row = self.m.create(
                    level=level,
                    set_by=actor,
                    set_at=rows.iso(now),
                    reason=reason,
                    valid_from=rows.iso(start),
                    valid_until=rows.iso(valid_until),
                )
                entry = rows.alert(row)
                gone = [e.id for e in before if covered_by(entry, e)]
                if gone:
                    self.m.update(superseded_by=entry.id).where(self.m.id << gone).execute()
                self.changed("alerts")
        self.audit(
            actor,
            "alert.set",
            {
                "id": entry.id,
                "level": level,
                "reason": reason,
                "set_at": rows.iso(now),
                "valid_from": rows.iso(start),
                "valid_until": rows.iso(valid_until),
                "unchanged": repeat,
                "superseded": gone,
                "before": level_at(before, now),
                "after": level_at([*before, entry], now),
            },
        )
        return entry

    def _live(self) -> list[AlertEntry]:
        """Entries no later one covers entirely: the only ones that can still be in force."""
        q = self.m.select().where(self.m.superseded_by.is_null()).order_by(self.m.id)
        return [rows.alert(r) for r in q]

    def entries(self, now: datetime | None = None) -> tuple[AlertEntry, ...]:
        """What a snapshot needs: live entries, less those that could only be in force
        over a month ago."""
        cutoff = (now or now_local()) - KEEP_ENDED
        with self.rdb.lock:
            live = self._live()
        return tuple(
            e
            for e in live
            if (e.valid_until is None or e.valid_until > cutoff)
            and not any(covered_by(f, e, cutoff) for f in live)
        )

    def list(self, include_superseded: bool = False) -> list[AlertEntry]:
        with self.rdb.lock:
            if not include_superseded:
                return self._live()
            return [rows.alert(r) for r in self.m.select().order_by(self.m.id)]

    def state(self, now: datetime | None = None) -> AlertState:
        now = now or now_local()
        return AlertState.of(entry_at(self.entries(now), now))

    def tidy(self) -> None:
        """Mark entries a later one covers entirely (after an upgrade, or two processes)."""
        with self.rdb.lock, self.rdb.db.atomic():
            live = self._live()
            for e in live:
                by = next((f for f in live if covered_by(f, e)), None)
                if by is not None:
                    self.m.update(superseded_by=by.id).where(self.m.id == e.id).execute()
