from __future__ import annotations

import json
from pathlib import Path

import pytest

from edged.mqtt.commands import (
    SCHEMAS,
    CommandVerifier,
    canonical_string,
    make_command,
    max_bytes,
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
                    "plate_colour": "yellow",
                    "fuel": "diesel",
                    "emission_stage": "国6b",
                    "rfid_tags": ["E2801160600002084F35A1F3"],
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
        "plant_vehicles_upsert": {
            "vehicles": [{"plate": "冀A0C001", "plate_colour": "yellow", "fuel": "diesel"}]
        },
        "plant_vehicles_delete": {"plates": ["冀A0C001"]},
        "machinery_upsert": {"machines": [{"registry_no": "HB130001", "emission_stage": "x"}]},
        "machinery_delete": {"registry_nos": ["HB130001"]},
        "cargo": {"plate": "冀A12345", "cargo": "焦炭", "valid_until": "2024-06-01T18:00:00+08:00"},
        "resend": {"from_seq": 1, "to_seq": 100},
        "ping": {},
        "correct": {"seq": 12, "plate": "冀A12345", "reason": "车牌误识别，人工更正"},
    }
    assert set(examples) == set(SCHEMAS)
    for name, params in examples.items():
        assert validate(params, SCHEMAS[name]) == [], name
    bad = validate(
        {"vehicles": [{"plate": "冀A12345", "plate_colour": "pink", "vin": "IOQ"}]},
        SCHEMAS["registry_upsert"],
    )
    assert any("plate_colour" in e for e in bad) and any(".vin" in e for e in bad)


def test_old_field_names_are_renamed_with_a_note_and_never_given_twice(
    verifier: CommandVerifier,
) -> None:
    """Commands spelt plate_color where passages and the registry say plate_colour; backends
    written against the first contract keep working and are told the new names."""
    old = {
        "plate": "冀A12345",
        "plate_color": "yellow",
        "fleet": "鑫达",
        "rfid": "E200A1",
        "fuel": "gas",
    }
    v = verifier.check("registry_upsert", _raw("registry_upsert", {"vehicles": [old]}))
    assert v.ok, v.detail
    assert v.params["vehicles"] == [
        {
            "plate": "冀A12345",
            "plate_colour": "yellow",
            "fleet": "鑫达",
            "rfid_tags": ["E200A1"],
            "fuel": "gas",
        }
    ]
    assert "plate_color (now plate_colour)" in v.detail and "rfid (now rfid_tags)" in v.detail
    entry = {"plate": "冀B54321", "reason": "超标排放", "until": "2030-01-01T00:00:00+08:00"}
    v = verifier.check("blacklist_upsert", _raw("blacklist_upsert", {"entries": [entry]}))
    assert v.ok and v.params["entries"][0]["valid_until"] == entry["until"]
    both = {"plate": "冀A12345", "plate_color": "yellow", "plate_colour": "blue", "fuel": "gas"}
    v = verifier.check("registry_upsert", _raw("registry_upsert", {"vehicles": [both]}))
    assert v.error == "invalid_params" and "params.vehicles[0].plate_color" in v.detail
    new = {"plate": "冀A12345", "plate_colour": "yellow", "fuel": "diesel"}
    v = verifier.check("registry_upsert", _raw("registry_upsert", {"vehicles": [new]}))
    assert v.ok and v.detail == ""


# -- hardening: caps before parsing, bounded identity, replay across clock steps ------------


def _worst_case(name: str) -> dict:
    """The largest params the schema allows for a small command, every text at its
    maximum length in characters that JSON escapes (6 bytes each)."""
    long_text = "运" * 500
    return {
        "ping": {"echo": "运" * 200},
        "open": {
            "reason": long_text,
            "direction": "out",
            "plate": "冀" * 10,
            "hold_s": 120,
            "lane": "l" * 64,
        },
        "alert_level": {
            "level": "orange",
            "reason": long_text,
            "valid_from": "2024-06-01T08:00:00.000000+08:00",
            "valid_until": "2024-06-01T18:00:00.000000+08:00",
        },
        "cargo": {
            "plate": "冀" * 10,
            "cargo": "运" * 32,
            "valid_from": "2024-06-01T08:00:00.000000+08:00",
            "valid_until": "2024-06-01T18:00:00.000000+08:00",
            "uses": 1000,
        },
        "resend": {"from_seq": 10**15, "to_seq": 10**15 + 99_999, "kind": "passage"},
        "approval": {
            "approval_id": "a" * 64,
            "plate": "冀" * 10,
            "applicant": long_text,
            "approver": long_text,
            "reason": long_text,
            "valid_from": "2024-06-01T08:00:00.000000+08:00",
            "valid_until": "2024-06-01T18:00:00.000000+08:00",
            "direction": "any",
            "uses": 100,
            "approved_at": "2024-06-01T07:00:00.000000+08:00",
        },
    }[name]


@pytest.mark.parametrize("name", ["ping", "open", "alert_level", "resend", "approval", "cargo"])
def test_the_largest_valid_small_command_fits_its_cap(verifier: CommandVerifier, name: str) -> None:
    params = _worst_case(name)
    assert validate(params, SCHEMAS[name]) == []
    body = make_command(
        KEY, "s1", "g1", name, params, actor="运" * 100, ts=NOW, nonce="n" * 64, cmd_id="i" * 64
    )
    raw = json.dumps(body, indent=2).encode()  # a backend may pretty-print, escaping all
    assert len(raw) <= max_bytes(name, 16 << 20), (name, len(raw))
    assert verifier.check(name, raw).ok


def test_caps_per_command_are_checked_on_the_raw_bytes(verifier: CommandVerifier) -> None:
    # 5 KB of valid, signed JSON is still too much for a ping: refused before parsing
    raw = _raw("ping", {"echo": "x" * 190}, cmd_id="c" * 64)
    padded = raw[:-1] + b" " * 5000 + b"}"
    v = verifier.check("ping", padded)
    assert v.error == "too_large" and "for 'ping'" in v.detail
    assert v.cmd_id is None, "nothing of an oversized payload is read, not even its id"
    # a million empty lists would be a million Python objects: counted, refused, not parsed
    bomb = b'{"params": [' + b"[]," * 300_000 + b"[]]}"
    v = verifier.check("registry_delete", bomb)
    assert v.error == "malformed" and "JSON arrays/objects" in v.detail
    assert max_bytes("open", 16 << 20) <= 16 * 1024
    assert max_bytes("registry_replace", 16 << 20) == 16 << 20
    assert max_bytes("no_such_command", 16 << 20) <= 4096


def test_oversized_identity_fields_are_never_echoed(verifier: CommandVerifier) -> None:
    body = {
        "id": "i" * 500_000,
        "ts": NOW,
        "nonce": "n" * 200_000,
        "actor": "a" * 200_000,
        "params": {"version": "1", "vehicles": []},
    }
    v = verifier.check("registry_replace", json.dumps(body).encode())
    assert v.error == "unsigned"
    assert v.cmd_id is None and v.nonce is None and v.actor == "unknown"
    assert len(json.dumps(v.reply())) < 600
    body["sig"] = "0" * 64
    v = verifier.check("registry_replace", json.dumps(body).encode())
    assert v.error == "malformed" and len(v.detail) <= 1000
    # within limits they are echoed
    v = verifier.check("ping", _raw("ping", {}, cmd_id="backend-42"))
    assert v.ok and v.cmd_id == "backend-42"


def test_replay_is_refused_across_clock_steps(tmp_path: Path) -> None:
    """Accept at T, step the clock an hour on (commands still come), step it back."""
    clock = [float(NOW)]
    ver = CommandVerifier(
        "s1", "g1", [KEY], Outbox(tmp_path / "o.db"), max_skew_s=120, clock=lambda: clock[0]
    )
    first = _raw("open", {"reason": "weighbridge down"}, nonce="first-open-000000")
    assert ver.check("open", first).ok
    clock[0] = NOW + 3600  # the clock jumps; the backend's does too and sends a command
    assert ver.check("ping", _raw("ping", {}, ts=NOW + 3600)).ok
    clock[0] = NOW + 30  # stepped back: the first open would be fresh by the clock alone
    v = ver.check("open", first)
    assert not v.ok and v.error == "stale" and "newest command" in v.detail
    # without a newer command in between, the nonce itself is still remembered
    clock[0] = float(NOW)
    ver2 = CommandVerifier(
        "s1", "g1", [KEY], Outbox(tmp_path / "o2.db"), max_skew_s=120, clock=lambda: clock[0]
    )
    assert ver2.check("open", first).ok
    clock[0] = NOW + 86400  # nothing prunes by the clock: no command came at this time
    clock[0] = NOW + 30
    assert ver2.check("open", first).error == "replayed"


def test_previous_key_never_enables_commands_on_its_own(tmp_path: Path) -> None:
    ver = CommandVerifier("s1", "g1", ["", KEY], Outbox(tmp_path / "o.db"), clock=lambda: NOW)
    assert ver.check("ping", _raw("ping", {})).error == "not_configured"


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("open", {"reason": "地磅故障", "operator": "x"}, "params.operator"),
        ("open", {"reason": "地磅故障", "direction": "any"}, "params.direction"),
        ("alert_level", {"level": "red", "region": "唐山市"}, "params.region"),
        (
            "alert_level",
            {
                "level": "red",
                "valid_from": "2024-06-03T00:00:00+08:00",
                "valid_until": "2024-06-02T00:00:00+08:00",
            },
            "valid_until: expected after valid_from",
        ),
        ("machinery_upsert", {"machines": [{"registry_no": "HB1", "stage": "5"}]}, "stage"),
        ("cargo", {"plate": "冀A12345", "cargo": "焦炭"}, "valid_until"),
        (
            "cargo",
            {
                "plate": "冀A12345",
                "tag": "E200AA",
                "cargo": "焦炭",
                "valid_until": "2024-06-01T18:00:00+08:00",
            },
            "found both",
        ),
        ("cargo", {"cargo": "焦炭", "valid_until": "2024-06-01T18:00:00+08:00"}, "found neither"),
        (
            "registry_upsert",
            {"vehicles": [{"plate": "冀A12345", "plate_color": "yellow", "nrmm_id": "x"}]},
            "nrmm_id",
        ),
        (
            "blacklist_upsert",
            {"entries": [{"plate": "冀A12345", "reason": "超标排放", "plate_color": "blue"}]},
            "plate_color",
        ),
    ],
)
def test_parameters_the_gate_would_ignore_are_refused(
    verifier: CommandVerifier, name: str, params: dict, field: str
) -> None:
    v = verifier.check(name, _raw(name, params))
    assert v.error == "invalid_params" and field in v.detail, v.detail


def test_open_takes_plate_direction_hold_and_lane(verifier: CommandVerifier) -> None:
    params = {"reason": "地磅故障", "plate": "冀A12345", "direction": "out", "hold_s": 30}
    v = verifier.check("open", _raw("open", {**params, "lane": "east-1"}))
    assert v.ok and v.params["lane"] == "east-1" and v.params["hold_s"] == 30


def test_the_caps_table_in_the_docs_is_the_code() -> None:
    import re

    doc = (Path(__file__).resolve().parents[2] / "docs" / "MQTT.md").read_text(encoding="utf-8")
    section = doc.split("### Size caps, checked before parsing", 1)[1].split("###", 1)[0]
    units = {"KiB": 1024, "MiB": 1024 * 1024}
    seen = set()
    for names, cap in re.findall(r"^\| (`[^|]+) \| ([^|]+) \|$", section, re.M):
        m = re.match(r"(\d+) (KiB|MiB)", cap)
        for name in re.findall(r"`(\w+)`", names):
            want = 16 << 20 if "cmd_max_bytes" in cap else int(m.group(1)) * units[m.group(2)]
            assert max_bytes(name, 16 << 20) == want, name
            seen.add(name)
    assert seen == set(SCHEMAS)


def test_every_example_in_the_command_table_is_accepted(verifier: CommandVerifier) -> None:
    """The params a backend developer copies from docs/MQTT.md pass the gate's own checks."""
    import re

    doc = (Path(__file__).resolve().parents[2] / "docs" / "MQTT.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)`[^|]*\| [^\n]*\| `(\{[^`]*\})`", doc, re.M)
    checked = set()
    for name, example in rows:
        if name not in SCHEMAS:
            continue
        params = example.split("→")[0].strip().rstrip("`").strip()
        if "…" in params:  # elided: the shape only
            continue
        v = verifier.check(name, _raw(name, json.loads(params)))
        assert v.ok, (name, params, v.detail)
        checked.add(name)
    assert {"cargo", "approval", "open", "alert_level", "registry_upsert"} <= checked, checked
