"""A red alert scheduled ahead starts and lifts on time, and every row says the level in force.

The box's clock is the site clock (``edged.sitetime.now``); the test moves it
through the morning. The registry, the policy, the passage pipeline, the
ledger and the retained MQTT topic are the real ones.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest

from edged import sitetime
from edged.admission.model import Vehicle
from tests.box_rig import passage, running_box
from tests.broker import Mosquitto
from tests.ptys import wait_for

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def _retained_level(port: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    done = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_message = lambda _c, _u, m: (got.append(json.loads(m.payload)["payload"]), done.set())
    c.connect("127.0.0.1", port)
    c.subscribe("edged/p1/g1/alert_level", qos=1)
    c.loop_start()
    done.wait(10)
    c.loop_stop()
    c.disconnect()
    return got


def test_a_scheduled_red_alert_starts_and_lifts_on_time(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [T0]
    monkeypatch.setattr(sitetime, "now", lambda: clock[0])
    toml = f"""
[camera]
type = "none"
[mqtt]
host = "127.0.0.1"
port = {mosquitto.port}
"""
    with running_box(tmp_path, toml) as box:
        assert wait_for(lambda: box.mqtt.connected, 10)
        box.registry.upsert_vehicles(
            [Vehicle("冀B12345", emission_stage="国5", fuel="diesel")], actor="test"
        )
        box.registry.set_alert_level(
            "red",
            "环保专员",
            "市重污染天气红色预警",
            now=T0,
            valid_from=T0 + timedelta(hours=2),
            valid_until=T0 + timedelta(hours=5),
        )
        rows, levels = [], []
        for hours in (1, 2.5, 4.9, 5.5):
            clock[0] = T0 + timedelta(hours=hours)
            levels.append(box.check_alert_level())  # what the box's tick does every minute
            rows.append(passage(box, "冀B12345").record)
        events = [e for e in box.ledger.recent_events(50) if e.kind == "alert_level_changed"]
        assert wait_for(lambda: box.mqtt.status()["backlog"] == 0, 10)
        retained = _retained_level(mosquitto.port)
    assert levels == ["none", "red", "red", "none"]
    assert [r["alert_level"] for r in rows] == ["none", "red", "red", "none"]
    assert [r["decision"] for r in rows] == ["allow", "deny", "deny", "allow"]
    assert [r["time"][:16] for r in rows] == [
        "2026-12-01T07:00",
        "2026-12-01T08:30",
        "2026-12-01T10:54",
        "2026-12-01T11:30",
    ]
    assert [(e.details["was"], e.details["level"]) for e in reversed(events)] == [
        ("none", "red"),
        ("red", "none"),
    ]
    assert retained and retained[-1] == {"level": "none", "was": "red"}
