"""Correcting a row without changing it: a new chained row points at the original.

A misread plate, a wrong direction, a cargo the guard knows better: the
original row is never touched (it is what the box decided, and its hash is
in every later one). A correction is appended as a new row with
``correction_of`` set and an audit entry naming who and why, in one
transaction (:meth:`edged.ledger.store.LedgerStore.append_correction`).
Queries, reports, exports and MQTT then use the corrected values and say a
correction exists (:func:`effective`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from edged.ledger.record import PassageRecord

#: What may be corrected, and what each means.
CORRECTABLE = {
    "plate": "the plate as it really was (a misread)",
    "plate_colour": "the plate colour",
    "direction": "in or out",
    "cargo": "运输货物名称",
    "weight_kg": "the gross weight, weighed again by hand",
}


class CorrectionError(ValueError):
    """A correction that cannot be made; the message says why."""


def corrected(
    original: PassageRecord,
    changes: dict[str, Any],
    vehicle_fields: Callable[[str], dict[str, Any]] | None = None,
) -> PassageRecord:
    """The original row with ``changes``; a new plate brings that vehicle's registry fields.

    Pure apart from ``vehicle_fields(plate)``, which answers the national fields of
    a plate from the registry (or nothing when there is no registry at hand).
    """
    unknown = sorted(set(changes) - set(CORRECTABLE))
    if unknown:
        raise CorrectionError(
            f"cannot correct {', '.join(unknown)}; correctable: {', '.join(CORRECTABLE)}"
        )
    if not changes:
        raise CorrectionError("nothing to correct: give at least one new value")
    fields = dict(changes)
    if "plate" in changes and vehicle_fields is not None:
        for key, value in vehicle_fields(changes["plate"]).items():
            fields.setdefault(key, value)
    if "plate" in changes:
        fields.setdefault("id_source", "manual")
        fields.setdefault("raw_plate", original.raw_plate or original.plate)
    try:
        fixed = dataclasses.replace(original, **fields)
        # a field the correction filled no longer needs its reason for being empty
        gone = [k for k in fixed.missing if getattr(fixed, k, None) not in (None, "", (), {})]
        if gone:
            fixed = dataclasses.replace(
                fixed, missing={k: v for k, v in fixed.missing.items() if k not in gone}
            )
        return fixed
    except ValueError as exc:  # the record's own checks (a bad direction, a negative weight)
        raise CorrectionError(str(exc)) from None


def effective(rows: Iterator[Any], corrections: dict[int, int]) -> Iterator[tuple[Any, int | None]]:
    """Rows as they stand after corrections: ``(row, corrected_by_seq or None)``.

    ``rows`` are stored rows in seq order (originals and corrections mixed);
    ``corrections`` maps an original seq to its latest correction's seq. A
    superseded original is left out, and its latest correction stands in its
    place carrying the original's seq in ``correction_of``; earlier
    corrections of the same row are left out too.
    """
    latest = set(corrections.values())
    for row in rows:
        fix_of = row.record.correction_of
        if fix_of is None:
            if row.seq in corrections:
                continue  # its correction stands for it
            yield row, None
        elif row.seq in latest:
            yield row, row.seq
