"""Special approvals (特批放行): entered with who asked, who approved, why and until when.

A regulator reads every approval later, so a vague or incomplete one is refused
at entry, as is one approved by the person who asked for it (unless the site's
config allows it: ``[policy] approval_self_approve``). Each use is tied to the
passage that needed it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from edged.admission import rows
from edged.admission.audit import Auditor
from edged.admission.lists import MIN_REASON_CHARS, now_local
from edged.admission.model import APPROVAL_DIRECTIONS, Approval, normalize_plate
from edged.admission.tables import RegistryDb
from edged.logs import get_logger

log = get_logger("gate")


class ApprovalRefused(ValueError):
    """A special approval that a regulator would not accept (vague reason, bad window)."""


class ApprovalBook:
    """The approvals table: entry, use, and the unused ones for the snapshot."""

    def __init__(self, rdb: RegistryDb, audit: Auditor, changed: Callable[[str], None]) -> None:
        self.rdb = rdb
        self.m = rdb.m.approval
        self.audit = audit
        self.changed = changed

    def add(
        self,
        plate: str,
        reason: str,
        applicant: str,
        approver: str,
        valid_from: datetime,
        valid_until: datetime,
        actor: str = "system",
        *,
        direction: str = "any",
        uses: int = 1,
        ref: str | None = None,
        approved_at: datetime | None = None,
        allow_self_approve: bool = False,
    ) -> Approval:
        """Record a pass for ``uses`` passages in ``direction`` (in, out or any); ``ref`` is
        the backend's id for it, ``approved_at`` when it was approved (default: now)."""
        plate = normalize_plate(plate)
        now = now_local()
        approved_at = approved_at or now
        problems = []
        if not plate:
            problems.append("plate: empty")
        if len(reason.strip()) < MIN_REASON_CHARS:
            problems.append(
                f"reason: at least {MIN_REASON_CHARS} characters saying why, found {reason!r}"
            )
        if not applicant.strip():
            problems.append("applicant: who asked for the pass is required")
        if not approver.strip():
            problems.append("approver: who authorised the pass is required")
        elif applicant.strip().casefold() == approver.strip().casefold() and not allow_self_approve:
            problems.append(
                f"approver: {approver.strip()!r} also asked for the pass; another person must"
                " approve it (or set [policy] approval_self_approve = true)"
            )
        if valid_until <= valid_from:
            problems.append(f"valid_until: must be after valid_from ({valid_from.isoformat()})")
        if direction not in APPROVAL_DIRECTIONS:
            problems.append(f"direction: expected in, out or any, found {direction!r}")
        if not isinstance(uses, int) or isinstance(uses, bool) or not 1 <= uses <= 100:
            problems.append(f"uses: expected 1..100 passages, found {uses!r}")
        if ref is not None and not 0 < len(ref) <= 64:
            problems.append("approval_id: expected 1-64 characters")
        if problems:
            raise ApprovalRefused("; ".join(problems))
        with self.rdb.lock:
            if ref is not None:
                clash = self.m.get_or_none(self.m.ref == ref)
                if clash is not None:
                    raise ApprovalRefused(
                        f"approval_id: {ref!r} already entered (local id {clash.id}, plate"
                        f" {clash.plate}); an approval is entered once"
                    )
            row = self.m.create(
                plate=plate,
                reason=reason.strip(),
                applicant=applicant.strip(),
                approver=approver.strip(),
                valid_from=rows.iso(valid_from),
                valid_until=rows.iso(valid_until),
                created_at=rows.iso(now),
                created_by=actor,
                direction=direction,
                uses=uses,
                used=0,
                ref=ref,
                approved_at=rows.iso(approved_at),
            )
            self.changed("approvals")
            approval = rows.approval(row)
        self.audit(
            actor,
            "approval.add",
            {
                "id": approval.id,
                "plate": plate,
                "reason": approval.reason,
                "applicant": approval.applicant,
                "approver": approval.approver,
                "approved_at": rows.iso(approved_at),
                "valid_from": rows.iso(valid_from),
                "valid_until": rows.iso(valid_until),
                "direction": direction,
                "uses": uses,
                "ref": ref,
                "before": None,
                "after": {"used": 0, "uses": uses},
            },
        )
        return approval

    def consume(
        self, approval_id: int, passage_id: str, now: datetime | None = None, actor: str = "gate"
    ) -> bool:
        """Use one passage of an approval. Returns False if none was left (a second
        passage racing for the last use loses): the caller must then not open on it."""
        now = now or now_local()
        m = self.m
        with self.rdb.lock:
            before = m.get_or_none(m.id == approval_id)
            n = (
                m.update(used_at=rows.iso(now), used_by_passage=passage_id, used=m.used + 1)
                .where((m.id == approval_id) & (m.used < m.uses))
                .execute()
            )
            self.changed("approvals")
        if n and before is not None:
            self.audit(
                actor,
                "approval.consume",
                {
                    "id": approval_id,
                    "plate": before.plate,
                    "passage_id": passage_id,
                    "used_at": rows.iso(now),
                    "before": {"used": before.used, "uses": before.uses},
                    "after": {"used": before.used + 1, "uses": before.uses},
                },
            )
        else:
            log.warning(
                "approval_already_used",
                id=approval_id,
                passage_id=passage_id,
                hint="a one-time pass can open the barrier once; enter a new approval",
            )
        return bool(n)

    def get(self, approval_id: int) -> Approval | None:
        with self.rdb.lock:
            r = self.m.get_or_none(self.m.id == approval_id)
            return None if r is None else rows.approval(r)

    def list(self, include_used: bool = True) -> list[Approval]:
        with self.rdb.lock:
            q = self.m.select().order_by(self.m.id)
            if not include_used:
                q = q.where(self.m.used < self.m.uses)
            return [rows.approval(r) for r in q]

    def unused(self) -> dict[str, tuple[Approval, ...]]:
        """Approvals with uses left, by plate, for the snapshot."""
        out: dict[str, list[Approval]] = {}
        with self.rdb.lock:
            for r in self.m.select().where(self.m.used < self.m.uses):
                a = rows.approval(r)
                out.setdefault(a.plate, []).append(a)
        return {k: tuple(v) for k, v in out.items()}
