"""Which way is a vehicle going? Told by the loop it reaches first. Pure.

A one-way lane knows its direction. A two-way lane (one barrier, traffic
both ways) has a loop on each side: ``ground_loop`` on the road side and
``inner_loop`` on the plant side. A vehicle from the road reaches the road
loop first and is entering; one from the plant reaches the inner loop first
and is leaving. The passage starts on that first loop; the second loop,
crossed while the barrier is up, belongs to the same vehicle, so nothing
new starts until both loops are clear again.

A two-way lane with the ``presence`` rule decides later, from the vehicle
(in the plant now: it is leaving). Where direction cannot be told the
ledger says ``unknown`` rather than guess: an exit recorded as an entry is
the error an inspector finds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FIRST_LOOP_DIRECTION = {"ground_loop": "in", "inner_loop": "out"}


@dataclass(frozen=True)
class Arrival:
    """A new vehicle on the lane; ``direction`` None: decide from the vehicle (presence)."""

    loop: str
    direction: str | None


def rule_of(direction: str, both_rule: str) -> str:
    """The tracker's rule for a lane: ``in``, ``out``, ``loop_order`` or ``presence``."""
    return both_rule if direction == "both" else direction


@dataclass
class DirectionTracker:
    """Loop edges in, :class:`Arrival` out (at most one per vehicle)."""

    rule: str = "in"
    _active: set[str] = field(default_factory=set)
    _busy: bool = False

    def edge(self, loop: str, active: bool) -> Arrival | None:
        """Feed one loop edge; returns an :class:`Arrival` when a new vehicle comes."""
        was_clear = not self._active
        if active:
            self._active.add(loop)
        else:
            self._active.discard(loop)
        if not self._active:
            self._busy = False  # both loops clear: the next rise is a new vehicle
            return None
        if not active or not was_clear or self._busy:
            return None
        if self.rule in ("in", "out"):
            if loop != "ground_loop":
                return None  # a one-way lane starts at its road-side loop only
            self._busy = True
            return Arrival(loop, self.rule)
        self._busy = True
        if self.rule == "presence":
            return Arrival(loop, None)
        return Arrival(loop, FIRST_LOOP_DIRECTION.get(loop, "unknown"))
