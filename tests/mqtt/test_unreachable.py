"""A broker that cannot be reached is said once, with the reason and what to check."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from structlog.testing import capture_logs

from edged.mqtt.client import MqttLink, unreachable_hint
from tests.broker import Mosquitto, free_port
from tests.mqtt.helpers import link_config, wait_until


def test_unreachable_broker_is_logged_once_then_retried_quietly_until_it_answers(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens here yet
    link = MqttLink(
        link_config(port, reconnect_min_s=1, reconnect_max_s=1), ("s1", "g1"), tmp_path / "o.db"
    )
    broker = Mosquitto(port=port, workdir=tmp_path / "mosquitto")
    with capture_logs() as logs:
        link.start()
        try:
            link.publish("passage", {"plate": "冀A12345"})
            assert wait_until(lambda: link.failures.count >= 3, 15), "paho never retried"
            said = [e for e in logs if e["event"] == "mqtt_unreachable"]
            warnings = [e for e in said if e["log_level"] == "warning"]
            assert len(warnings) == 1, said
            w = warnings[0]
            assert "refused" in w["reason"].lower() and w["port"] == port
            assert f"nothing listens on 127.0.0.1:{port}" in w["hint"]
            assert all(e["log_level"] == "debug" for e in said[1:])
            assert link.stats()["connect_error"] == w["reason"]
            broker.start()
            assert wait_until(lambda: link.connected, 15), "the link never reached the broker"
            assert wait_until(lambda: link.stats()["backlog"] == 0, 10)
            assert link.stats()["connect_error"] is None
            assert any(e["event"] == "mqtt_reachable_again" for e in logs)
        finally:
            link.stop(2)
            broker.stop()


def test_hints_name_what_to_check_for_each_reason() -> None:
    assert "mqtt.host / mqtt.port" in unreachable_hint(ConnectionRefusedError(), "b", 1883)
    assert "DNS" in unreachable_hint(socket.gaierror(-2, "Name or service not known"), "b", 1)
    assert "ca_file" in unreachable_hint(ssl.SSLError("bad cert"), "b", 8883)
    assert "firewalls" in unreachable_hint(TimeoutError(), "b", 1883)
    assert "outbox" in unreachable_hint(None, "b", 1883)
