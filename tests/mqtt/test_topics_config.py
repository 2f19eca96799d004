from __future__ import annotations

import pytest

from edged.mqtt.config import MqttConfig
from edged.mqtt.topics import Topics, build_envelope, decode, encode


def test_topic_tree() -> None:
    t = Topics("edged", "hbts01", "gate-2")
    assert t.passage == "edged/hbts01/gate-2/passage"
    assert t.status == "edged/hbts01/gate-2/status"
    assert t.availability == "edged/hbts01/gate-2/availability"
    assert t.events == "edged/hbts01/gate-2/events"
    assert t.sensors("fan1") == "edged/hbts01/gate-2/sensors/fan1"
    assert t.ledger_head == "edged/hbts01/gate-2/ledger/head"
    assert t.cmd("open") == "edged/hbts01/gate-2/cmd/open"
    assert t.cmd_reply("open") == "edged/hbts01/gate-2/cmd/open/reply"
    assert t.cmd_subscription == "edged/hbts01/gate-2/cmd/+"
    assert t.for_kind("ledger_head") == t.ledger_head
    assert t.for_kind("sensors", "pm10") == t.sensors("pm10")


def test_command_name_ignores_replies_and_foreign_topics() -> None:
    t = Topics("plant/a", "s", "g")
    assert t.command_name("plant/a/s/g/cmd/open") == "open"
    assert t.command_name("plant/a/s/g/cmd/open/reply") is None
    assert t.command_name("plant/a/s/other/cmd/open") is None


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "$SYS", "x" * 65, "门1"])
def test_bad_levels_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match=r"^gate: "):
        Topics("edged", "s", bad)


def test_sensors_need_device_and_unknown_kind_rejected() -> None:
    t = Topics("edged", "s", "g")
    with pytest.raises(ValueError, match=r"^subtopic: "):
        t.for_kind("sensors")
    with pytest.raises(ValueError, match=r"^kind: "):
        t.for_kind("passages")


def test_envelope_roundtrip_keeps_chinese_readable() -> None:
    env = build_envelope(
        msg_id="i",
        seq=7,
        ts="2024-01-01T08:00:00.000+08:00",
        site="s",
        gate="g",
        type="passage",
        payload={"plate": "冀A12345"},
    )
    raw = encode(env)
    assert "冀A12345".encode() in raw
    assert decode(raw) == env
    with pytest.raises(ValueError):
        decode(b"[1]")


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"port": 0}, "port"),
        ({"prefix": "a/+"}, "prefix"),
        ({"reconnect_min_s": 10, "reconnect_max_s": 5}, "reconnect_max_s"),
        ({"max_inflight": 0}, "max_inflight"),
        ({"drain_rate": -1.0}, "drain_rate"),
        ({"cert_file": "c.pem"}, "cert_file"),
        ({"commands_allowed": ["open", "launch"]}, "commands_allowed"),
        ({"hmac_key": "short"}, "hmac_key"),
        ({"hmac_key": "k" * 16, "hmac_key_previous": "x"}, "hmac_key_previous"),
        ({"hmac_key_previous": "p" * 16}, "hmac_key_previous"),
        ({"cmd_refusal_report_s": 0}, "cmd_refusal_report_s"),
        ({"cmd_refusal_replies_per_min": -1}, "cmd_refusal_replies_per_min"),
        ({"cmd_max_skew_s": 1}, "cmd_max_skew_s"),
    ],
)
def test_config_errors_name_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        MqttConfig(**kw)  # type: ignore[arg-type]


def test_config_fields_documented() -> None:
    import dataclasses

    for f in dataclasses.fields(MqttConfig):
        assert f.metadata.get("doc"), f.name
