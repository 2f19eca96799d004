"""The in-plant index: entries open stays, exits end them, late rows end none that began later."""

from __future__ import annotations

from edged.ledger.trips import Trips


def test_a_late_exit_ends_no_stay_that_began_after_it() -> None:
    trips = Trips()
    entry = {"plate": "冀B12345", "direction": "in", "decision": "allow", "lane": "main"}
    assert trips.note(1, {**entry, "time": "2026-12-01T10:00:00.000+08:00"})
    late_exit = {"plate": "冀B12345", "direction": "out", "time": "2026-12-01T09:00:00.000+08:00"}
    assert not trips.note(2, late_exit), "an exit read before the entry ends nothing"
    assert trips.open_entry("冀B12345") is not None
    assert trips.note(3, {**late_exit, "time": "2026-12-01T02:00:00.000Z"}), "10:00+08:00 is 02:00Z"
    assert trips.open_entry("冀B12345") is None
