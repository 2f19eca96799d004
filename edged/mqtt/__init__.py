"""MQTT link: topic tree, persistent outbox, signed commands (see docs/MQTT.md)."""

from edged.mqtt.client import MqttLink
from edged.mqtt.config import MqttConfig

__all__ = ["MqttConfig", "MqttLink"]
