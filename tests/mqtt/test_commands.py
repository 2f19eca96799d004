from __future__ import annotations

import json
from pathlib import Path

import pytest

from edged.mqtt.commands import (
    SCHEMAS,
    CommandVerifier,
    canonical_string,
    make_command,
    sign,
    validate,
)
from edged.mqtt.outbox import Outbox

KEY = "site-key-for-tests-0001"
NOW = 1_700_000_000


@pytest.fixture
def verifier(tmp_path: Path) -> CommandVerifier:
    return CommandVerifier(
        "s1", "g1", [KEY, ""], Outbox(tmp_path / "o.db"), max_skew_s=60, clock=lambda: NOW
    )


def _raw(name: str, params: dict, **kw) -> bytes:
    kw.setdefault("ts", NOW)
    return json.dumps(make_command(KEY, "s1", "g1", name, params, actor="ops", **kw)).encode()


def test_documented_worked_example() -> None:
    """The exact example in docs/MQTT.md: a backend dev can check his code against it."""
    params = {"reason": "地磅故障,人工放行", "hold_s": 10}
    text = canonical_string(
        "hbts01", "gate-2", "open", 1700000000, "9f2c4e1a7b3d5f60", "zhang.san", params
    )
    assert text == (
        "edged-cmd-v1\nhbts01\ngate-2\nopen\n1700000000\n9f2c4e1a7b3d5f60\nzhang.san\n"
        '{"hold_s":10,"reason":"地磅故障,人工放行"}'
    )
    # cross-checked with: printf '<text>' | openssl dgst -sha256 -hmac demo-site-key-change-me
    assert sign("demo-site-key-change-me", text) == (
        "c08427e426b6713338eecca0fcf5dc883be2c4675a4897f2b7175c9c22615287"
    )


def test_signed_command_accepted(verifier: CommandVerifier) -> None:
    v = verifier.check("open", _raw("open", {"reason": "weighbridge down"}))
    assert v.ok and v.actor == "ops" and v.params == {"reason": "weighbridge down"}


def test_previous_key_accepted_during_rotation(tmp_path: Path) -> None:
    ver = CommandVerifier(
        "s1", "g1", ["new-key-000000000000", KEY], Outbox(tmp_path / "o.db"), clock=lambda: NOW
    )
    assert ver.check("ping", _raw("ping", {})).ok


@pytest.mark.parametrize(
    ("name", "raw", "error"),
    [
        ("open", b"\xff\xfe", "malformed"),
        ("open", b"not json", "malformed"),
        ("open", b"[1,2]", "malformed"),
        ("launch", b"{}", "unknown_command"),
        (
            "open",
            json.dumps({"ts": NOW, "nonce": "a" * 16, "actor": "x", "params": {}}).encode(),
            "unsigned",
        ),
    ],
)
def test_refusals_before_signature(
    verifier: CommandVerifier, name: str, raw: bytes, error: str
) -> None:
    v = verifier.check(name, raw)
    assert not v.ok and v.error == error and v.detail


def test_bad_signature_wrong_key_other_gate_or_tampered(verifier: CommandVerifier) -> None:
    body = make_command(
        "wrong-key-000000000000", "s1", "g1", "open", {"reason": "x"}, actor="a", ts=NOW
    )
    assert verifier.check("open", json.dumps(body).encode()).error == "bad_signature"
    other_gate = make_command(KEY, "s1", "g2", "open", {"reason": "x"}, actor="a", ts=NOW)
    assert verifier.check("open", json.dumps(other_gate).encode()).error == "bad_signature"
    signed_ping = make_command(KEY, "s1", "g1", "ping", {}, actor="a", ts=NOW)
    assert verifier.check("open", json.dumps(signed_ping).encode()).error == "bad_signature"
    tampered = make_command(KEY, "s1", "g1", "open", {"reason": "x"}, actor="a", ts=NOW)
    tampered["params"]["hold_s"] = 60
    assert verifier.check("open", json.dumps(tampered).encode()).error == "bad_signature"


def test_stale_in_past_and_future(verifier: CommandVerifier) -> None:
    old = verifier.check("ping", _raw("ping", {}, ts=NOW - 61))
    assert old.error == "stale" and "-61 s" in old.detail
    assert verifier.check("ping", _raw("ping", {}, ts=NOW + 61)).error == "stale"
    assert verifier.check("ping", _raw("ping", {}, ts=NOW - 59)).ok


def test_replay_refused(verifier: CommandVerifier) -> None:
    raw = _raw("ping", {}, nonce="n" * 20)
    assert verifier.check("ping", raw).ok
    v = verifier.check("ping", raw)
    assert v.error == "replayed" and "n" * 20 in v.detail


def test_malformed_envelope_fields(verifier: CommandVerifier) -> None:
    body = make_command(KEY, "s1", "g1", "ping", {}, actor="a", ts=NOW)
    body["ts"] = "yesterday"
    v = verifier.check("ping", json.dumps(body).encode())
    assert v.error == "malformed" and "command.ts: expected integer" in v.detail
    body = make_command(KEY, "s1", "g1", "ping", {}, actor="a", ts=NOW, nonce="short")
    assert "command.nonce" in verifier.check("ping", json.dumps(body).encode()).detail


def test_invalid_params_say_what_is_wrong(verifier: CommandVerifier) -> None:
    v = verifier.check("open", _raw("open", {"reason": "x", "hold_s": 999, "colour": 1}))
    assert v.error == "invalid_params"
    assert "params.hold_s: expected <= 120, found 999" in v.detail
    assert "params.colour: unknown field" in v.detail
    v = verifier.check("resend", _raw("resend", {"from_seq": 10, "to_seq": 5}))
    assert v.error == "invalid_params" and "params.to_seq" in v.detail


def test_not_allowed(tmp_path: Path) -> None:
    ver = CommandVerifier(
        "s1", "g1", [KEY], Outbox(tmp_path / "o.db"), allowed=["ping"], clock=lambda: NOW
    )
    assert ver.check("open", _raw("open", {"reason": "x"})).error == "not_allowed"


def test_no_key_configured_refuses_everything(tmp_path: Path) -> None:
    ver = CommandVerifier("s1", "g1", [""], Outbox(tmp_path / "o.db"), clock=lambda: NOW)
    assert ver.check("ping", _raw("ping", {})).error == "not_configured"


def test_every_command_has_a_valid_example() -> None:
    examples = {
        "registry_upsert": {
            "vehicles": [
                {
                    "plate": "冀A12345",
                    "plate_color": "yellow",
                    "fuel": "diesel",
                    "emission_stage": "6b",
                }
            ]
        },
        "registry_delete": {"plates": ["冀A12345"]},
        "registry_replace": {"version": "2024-06-01T00", "vehicles": []},
        "blacklist_upsert": {"entries": [{"plate": "冀B54321", "reason": "超标排放"}]},
        "blacklist_delete": {"plates": ["冀B54321"]},
        "approval": {
            "plate": "冀A12345",
            "applicant": "李四",
            "approver": "王五",
            "reason": "抢修",
            "valid_from": "2024-06-01T08:00:00+08:00",
            "valid_until": "2024-06-01T18:00:00+08:00",
        },
        "open": {"reason": "地磅故障"},
        "alert_level": {"level": "orange"},
        "resend": {"from_seq": 1, "to_seq": 100},
        "ping": {},
    }
    assert set(examples) == set(SCHEMAS)
    for name, params in examples.items():
        assert validate(params, SCHEMAS[name]) == [], name
    bad = validate(
        {"vehicles": [{"plate": "冀A12345", "plate_color": "pink", "vin": "IOQ"}]},
        SCHEMAS["registry_upsert"],
    )
    assert any("plate_color" in e for e in bad) and any(".vin" in e for e in bad)
