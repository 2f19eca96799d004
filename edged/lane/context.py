"""What every lane of a box shares, handed to each lane explicitly.

One ledger, one registry, one outbox, one recogniser for the box, however
many lanes: a lane reaches them only through this context, never through
the daemon, so the dependencies of a passage are visible in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from edged.admission.policy import PolicyConfig
from edged.config.site import SiteConfig


@dataclass
class LaneContext:
    """The box's shared parts as a lane sees them."""

    site: SiteConfig
    tz: tzinfo
    policy: PolicyConfig
    sink: Any  # EventSink: event(), audit()
    ledger_service: Any  # LedgerService
    registry_service: Any  # RegistryService
    recognizer: Any = None  # RecognizerService, or None on a box without cameras
    passage_feed: Any = None  # PassageFeed, or None without MQTT
    clips: Any = None  # ClipStore, where a lane keeps clips of its passages
    simulation_moves_barrier: bool = False
    on_in_plant: Any = None  # called with the in-plant status when a passage changes it

    @property
    def ledger(self) -> Any:
        return self.ledger_service.store

    @property
    def registry(self) -> Any:
        return self.registry_service.registry

    @property
    def trips(self) -> Any:
        return self.ledger_service.trips

    def publish_passage(self, seq: int, payload: dict[str, Any]) -> None:
        """A recorded passage: into the in-plant index, then to MQTT (never fails the passage)."""
        changed = self.trips.note(seq, payload)
        if self.passage_feed is not None:
            self.passage_feed.publish(seq, payload)
        if changed and self.on_in_plant is not None:
            self.on_in_plant(self.trips.status())
