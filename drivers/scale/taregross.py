"""Pairing weigh-in and weigh-out of one vehicle into gross, tare and net (皮重/毛重). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Weighing:
    """Result of one weighing of a vehicle.

    ``kind`` is ``first`` (waiting for the second weighing) or ``complete``.
    When complete, gross is the heavier and tare the lighter of the two, so a
    delivery (in loaded) and a shipment (in empty) both come out right.
    """

    plate: str
    kind: Literal["first", "complete"]
    kg: float
    time: float
    gross_kg: float | None = None
    tare_kg: float | None = None
    net_kg: float | None = None
    first_time: float | None = None


class TareGross:
    """Pair weigh-in and weigh-out per plate. Open tickets expire after ``max_open_s``."""

    def __init__(self, max_open_s: float = 24 * 3600.0) -> None:
        self.max_open_s = max_open_s
        self._open: dict[str, tuple[float, float]] = {}

    def weigh(
        self, plate: str, kg: float, t: float, preset_tare_kg: float | None = None
    ) -> Weighing:
        """Record a stable weight; ``preset_tare_kg`` (from the registry) completes at once."""
        if preset_tare_kg is not None:
            gross, tare = max(kg, preset_tare_kg), min(kg, preset_tare_kg)
            return Weighing(plate, "complete", kg, t, gross, tare, gross - tare)
        prev = self._open.pop(plate, None)
        if prev is not None and 0 <= t - prev[1] <= self.max_open_s:
            first_kg, first_t = prev
            gross, tare = max(kg, first_kg), min(kg, first_kg)
            return Weighing(plate, "complete", kg, t, gross, tare, gross - tare, first_t)
        self._open[plate] = (kg, t)
        return Weighing(plate, "first", kg, t)

    def open_tickets(self) -> dict[str, tuple[float, float]]:
        """plate -> (kg, time) of first weighings, for persisting across restarts."""
        return dict(self._open)

    def restore(self, tickets: dict[str, tuple[float, float]]) -> None:
        self._open.update(tickets)
