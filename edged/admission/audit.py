"""Who changed the registry, when, and what it was before and after.

Every change path of the registry (lists, machinery, in-plant vehicles,
documents, approvals, alert levels, cargo declarations, imports) reports
through one :class:`Auditor` as ``audit(actor, action, details)``; the ledger
owns the hash-chained audit log the callable writes to. A bulk change names
its records with before and after while they are few (``DETAIL_RECORDS``);
a bigger one gives its counts, its mode and the SHA-256 of what was applied,
so one audit row stays small whatever the import.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from edged.logs import get_logger

log = get_logger("registry")

Audit = Callable[[str, str, dict[str, Any]], None]

DETAIL_RECORDS = 20
"""A change of at most this many records lists each one's before and after."""


class Auditor:
    """Logs each change and hands it to the audit callable; never loses one silently.

    The change is already saved when it is reported: a failing audit is logged as
    an error and counted in ``failures`` so a command-line caller can exit non-zero.
    """

    def __init__(self, sink: Audit | None) -> None:
        self.sink = sink
        self.failures: list[str] = []

    def __call__(self, actor: str, action: str, details: dict[str, Any]) -> None:
        log.info(
            "registry_change",
            actor=actor,
            action=action,
            **{k: v for k, v in details.items() if isinstance(v, str | int | float | bool)},
        )
        if self.sink is None:
            return
        try:
            self.sink(actor, action, details)
        except Exception as exc:  # the change is made; losing the audit must be loud
            self.failures.append(f"{action}: {exc}")
            log.error(
                "audit_failed",
                action=action,
                error=repr(exc),
                hint="the registry change was saved but not audited; check the ledger",
            )


class BatchChanges:
    """Before and after of the records one bulk change touches, while there are few.

    ``note`` is called before a record is written (with what was there) and
    ``settle`` after (with what is there now). Past ``limit`` records it stops
    keeping them and the audit gives counts and a digest instead.
    """

    def __init__(self, limit: int = DETAIL_RECORDS) -> None:
        self.limit = limit
        self.before: dict[str, dict[str, Any] | None] | None = {}
        self.after: dict[str, dict[str, Any] | None] = {}
        self._digest = hashlib.sha256()

    @property
    def tracking(self) -> bool:
        return self.before is not None

    def tracked(self) -> list[str]:
        return [] if self.before is None else list(self.before)

    def note(self, key: str, before: dict[str, Any] | None) -> None:
        if self.before is None:
            return
        if key not in self.before and len(self.before) >= self.limit:
            self.before = None  # too many to list: counts and a digest
            return
        self.before.setdefault(key, before)

    def give_up(self) -> None:
        self.before = None

    def hash_rows(self, rows: list[dict[str, Any]]) -> None:
        """Feed what is applied to the digest a big change is audited by."""
        for row in rows:
            self._digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
            self._digest.update(b"\n")

    def hash_keys(self, keys: list[str]) -> None:
        for key in keys:
            self._digest.update(key.encode() + b"\n")

    def details(self, count: int, digest: str | None = None, **extra: Any) -> dict[str, Any]:
        """The audit details: each record's before/after, or the counts and a SHA-256."""
        out: dict[str, Any] = {"count": count, **extra}
        if self.before is not None:
            out["changes"] = [
                {"key": k, "before": b, "after": self.after.get(k)} for k, b in self.before.items()
            ]
        else:
            out["sha256"] = digest or self._digest.hexdigest()
            if digest is None:
                out["sha256_of"] = "the records applied, as JSON lines"
        return out
