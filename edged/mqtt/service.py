"""The MQTT link as a part of the box: the outbox opens on start, commands are wired in.

The link object is rebuilt whenever the supervisor restarts the part (an
outbox on a disk that was full), so the rest of the box publishes through
this part, never through a link it kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edged.logs import get_logger
from edged.mqtt.config import MqttConfig

log = get_logger("mqtt")

Handler = Callable[[dict[str, Any], str], dict[str, Any]]


class LinkDown(RuntimeError):
    """The link is not running (its outbox could not be opened); the supervisor retries it."""


class MqttService:
    """Supervised part ``mqtt``: the link, its outbox and the command handlers."""

    name = "mqtt"

    def __init__(
        self,
        cfg: MqttConfig,
        identity: tuple[str, str],
        outbox_path: str | Path,
        audit: Callable[[str, str, dict[str, Any]], None],
        record_event: Callable[[str, str, str, dict[str, Any]], None],
        commands: Mapping[str, Handler],
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.identity = identity
        self.outbox_path = Path(outbox_path)
        self.audit = audit
        self.record_event = record_event
        self.commands = commands
        self.on_stop = on_stop
        self.link: Any = None

    def start(self) -> None:
        from edged.mqtt.client import MqttLink

        link = MqttLink(
            self.cfg,
            self.identity,
            self.outbox_path,
            on_event=lambda name, details: log.info("mqtt_" + name, **details),
            audit=self.audit,
            record_event=self.record_event,
        )
        for name, handler in self.commands.items():
            link.on_command(name, handler)
        link.start()
        self.link = link

    def stop(self) -> None:
        if self.on_stop is not None:
            self.on_stop()  # the passage feed saves its mark while the ledger is open
        link, self.link = self.link, None
        if link is not None:
            left = link.stop(timeout=3.0)
            log.info("mqtt_stopped", left_in_outbox=left)

    def publish(self, topic: str, payload: Any, **kwargs: Any) -> Any:
        link = self.link
        if link is None:
            raise LinkDown("the MQTT link is not running")
        return link.publish(topic, payload, **kwargs)

    @property
    def running(self) -> bool:
        return self.link is not None

    @property
    def connected(self) -> bool:
        return self.link is not None and self.link.connected

    @property
    def listening(self) -> bool:
        return self.link is not None and self.link.listening

    def status(self) -> dict[str, Any] | None:
        return self.link.stats() if self.link is not None else None
