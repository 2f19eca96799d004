"""Cargo declarations: what a plate carries on its next passage(s) (运输货物名称).

The registry holds each vehicle's usual cargo; the plant's logistics system
knows better for a given trip ("this truck brings coke today") and declares
it ahead, for a window and optionally a number of passages. The passage
takes the declaration in force, else the vehicle's default.

A declaration may name a waybill card (运单卡: an RFID tag handed to the
driver with the load) instead of a plate: the passage whose RFID window
sees the card carries that cargo, whichever vehicle brings it, before any
declaration for the plate.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from edged.admission import rows
from edged.admission.audit import Auditor
from edged.admission.lists import now_local
from edged.admission.model import CARGO_MAX, CargoDeclaration, normalize_plate
from edged.admission.tables import RegistryDb

MAX_USES = 1000
TAG_MAX = 64  # as the registry's vehicle tags


class OpenCargo(NamedTuple):
    """The declarations not yet ended and with passages left, for the snapshot."""

    by_plate: dict[str, tuple[CargoDeclaration, ...]]
    by_tag: dict[str, tuple[CargoDeclaration, ...]]


def declaration_for(
    declarations: tuple[CargoDeclaration, ...], now: datetime
) -> CargoDeclaration | None:
    """The usable declaration set last: a newer word from logistics beats an older one."""
    usable = [d for d in declarations if d.usable(now)]
    return max(usable, key=lambda d: (d.declared_at, d.id)) if usable else None


class CargoBook:
    """The cargo declarations in the registry file."""

    def __init__(self, rdb: RegistryDb, audit: Auditor, changed: Callable[[str], None]) -> None:
        self.rdb = rdb
        self.m = rdb.m.cargo
        self.audit = audit
        self.changed = changed

    def declare(
        self,
        plate: str,
        cargo: str,
        valid_until: datetime,
        actor: str,
        *,
        valid_from: datetime | None = None,
        uses: int | None = None,
        now: datetime | None = None,
        tag: str | None = None,
    ) -> CargoDeclaration:
        """Declare ``cargo`` for ``plate`` (or, with ``plate`` empty, for the waybill card
        ``tag``) until ``valid_until``, for ``uses`` passages (None: every passage in the
        window)."""
        now = now or now_local()
        start = valid_from or now
        plate, cargo = normalize_plate(plate or ""), cargo.strip()
        tag = (tag or "").strip().upper() or None
        problems = []
        if bool(plate) == bool(tag):
            problems.append(
                "plate, tag: expected a plate or a waybill card's tag (EPC), "
                + ("found both" if plate else "found neither")
            )
        if tag is not None and len(tag) > TAG_MAX:
            problems.append(f"tag: expected at most {TAG_MAX} characters, found {len(tag)}")
        if not 0 < len(cargo) <= CARGO_MAX:
            problems.append(f"cargo: expected 1-{CARGO_MAX} characters, found {len(cargo)}")
        if valid_until <= start:
            problems.append(f"valid_until: must be after valid_from ({start.isoformat()})")
        elif valid_until <= now:
            problems.append(f"valid_until: {valid_until.isoformat()} has passed")
        if uses is not None and (isinstance(uses, bool) or not 1 <= uses <= MAX_USES):
            problems.append(f"uses: expected 1..{MAX_USES} passages, found {uses!r}")
        if problems:
            raise ValueError("; ".join(problems))
        with self.rdb.lock:
            row = self.m.create(
                plate=plate,
                cargo=cargo,
                valid_from=rows.iso(start),
                valid_until=rows.iso(valid_until),
                until_ts=valid_until.timestamp(),
                uses=uses,
                used=0,
                declared_by=actor,
                declared_at=rows.iso(now),
                tag=tag,
            )
            decl = rows.cargo(row)
            self.changed("cargo")
        self.audit(
            actor,
            "cargo.declare",
            {
                "id": decl.id,
                "plate": plate,
                "tag": tag,
                "cargo": cargo,
                "valid_from": rows.iso(start),
                "valid_until": rows.iso(valid_until),
                "uses": uses,
                "before": None,
                "after": {"cargo": cargo, "used": 0},
            },
        )
        return decl

    def consume(self, declaration_id: int, passage_id: str, actor: str = "gate") -> bool:
        """Count one passage against a declaration with ``uses``; False if none was left.
        A declaration without ``uses`` is not counted (it covers its whole window)."""
        m = self.m
        with self.rdb.lock:
            before = m.get_or_none(m.id == declaration_id)
            if before is None:
                return False
            if before.uses is None:
                return True
            n = (
                m.update(used=m.used + 1, used_by_passage=passage_id)
                .where((m.id == declaration_id) & (m.used < m.uses))
                .execute()
            )
            self.changed("cargo")
        if n:
            self.audit(
                actor,
                "cargo.consume",
                {
                    "id": declaration_id,
                    "plate": before.plate,
                    "tag": before.tag,
                    "passage_id": passage_id,
                    "before": {"used": before.used},
                    "after": {"used": before.used + 1},
                },
            )
        return bool(n)

    def open(self, now: datetime | None = None) -> OpenCargo:
        """Declarations not yet ended and with passages left, by plate and by waybill
        card, for the snapshot."""
        t = (now or now_local()).timestamp()
        m = self.m
        by_plate: dict[str, list[CargoDeclaration]] = {}
        by_tag: dict[str, list[CargoDeclaration]] = {}
        with self.rdb.lock:
            q = m.select().where((m.until_ts > t) & (m.uses.is_null() | (m.used < m.uses)))
            for r in q:
                d = rows.cargo(r)
                if d.tag:
                    by_tag.setdefault(d.tag, []).append(d)
                else:
                    by_plate.setdefault(d.plate, []).append(d)
        return OpenCargo(
            {k: tuple(v) for k, v in by_plate.items()}, {k: tuple(v) for k, v in by_tag.items()}
        )

    def list(self, plate: str | None = None, tag: str | None = None) -> list[CargoDeclaration]:
        m = self.m
        with self.rdb.lock:
            q = m.select().order_by(m.id)
            if plate is not None:
                q = q.where(m.plate == normalize_plate(plate))
            if tag is not None:
                q = q.where(m.tag == tag.strip().upper())
            return [rows.cargo(r) for r in q]
