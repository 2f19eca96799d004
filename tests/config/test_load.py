"""The config file: the example is valid, and each broken file gets its own clear message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edged.cli.main import main
from edged.config.load import ConfigError, load_config, parse
from edged.config.positions import key_lines

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "edged.example.toml"


def test_example_config_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(EXAMPLE)]) == 0
    assert "OK" in capsys.readouterr().out


def test_example_config_is_generated_from_the_schema() -> None:
    """Every key in the schema is documented in the committed example, and no stale one."""
    out = subprocess.run(
        [sys.executable, "-m", "edged", "config", "example"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert out.strip() == EXAMPLE.read_text(encoding="utf-8").strip(), (
        "config/edged.example.toml is out of date: run "
        "`edged config example > config/edged.example.toml`"
    )


BROKEN = [
    # (name, toml text, expected fragments of the message)
    (
        "typo_in_key",
        '[site]\nid = "plant7"\ngate_idd = "east"\n',
        ["broken.toml:3", "site.gate_idd", "unknown key", "did you mean 'gate_id'"],
    ),
    (
        "wrong_type",
        '[daemon]\nheartbeat_s = "fast"\n',
        ["broken.toml:2", "daemon.heartbeat_s", "expected number", "string 'fast'"],
    ),
    (
        "bad_choice",
        '[lane]\ndirection = "sideways"\n',
        ["broken.toml:2", "lane.direction", "one of 'in', 'out', 'both'", "'sideways'"],
    ),
    (
        "direction_moved_to_the_lane",
        '[site]\nid = "p"\ndirection = "out"\n',
        ["broken.toml:3", "site.direction", "moved to the lane"],
    ),
    (
        "renamed_key",
        '[camera]\nsource = "folder"\n',
        ["broken.toml:2", "camera.source", "renamed: write 'type'"],
    ),
    (
        "removed_key",
        '[rfid]\nenabled = true\nport = "/dev/ttyUSB0"\n',
        ["broken.toml:2", "rfid.enabled", "no longer a key", "delete the section for none"],
    ),
    (
        "unknown_device_type",
        '[camera]\ntype = "webcam"\n',
        ["broken.toml:2", "camera.type", "expected one of", "'opencv'", "string 'webcam'"],
    ),
    (
        "pin_used_twice",
        "[gpio.alarm]\npin = 22\n",
        ["broken.toml:2", "gpio.alarm.pin", "GPIO 22 is also used by gpio.ground_loop.pin"],
    ),
    (
        "pin_used_twice_across_lanes",
        '[[lanes]]\nname = "a"\n[[lanes]]\nname = "b"\n[lanes.gpio.ground_loop]\npin = 5\n',
        [
            "lanes[1].gpio.barrier_open.pin",
            "GPIO 17 is also used by lanes[0].gpio.barrier_open.pin",
        ],
    ),
    (
        "two_devices_on_one_port",
        '[rfid]\nport = "/dev/ttyUSB0"\n[scale]\nport = "/dev/ttyUSB0"\n',
        ["broken.toml:4", "scale.port", "already opened by rfid.port"],
    ),
    (
        "shares_a_lane_that_is_not_there",
        '[[lanes]]\nname = "exit"\nshares = { rfid = "entry" }\n',
        ["broken.toml:3", "lanes[0].shares.rfid", "no other lane called 'entry'"],
    ),
    (
        "lanes_mixed_with_the_short_form",
        '[[lanes]]\nname = "entry"\n[camera]\nfps = 5\n',
        ["broken.toml:3", "camera", "move [camera] into [lanes.camera]"],
    ),
    (
        "lane_without_trigger",
        '[camera]\ntype = "none"\n[gpio.ground_loop]\npin = "none"\n',
        ["broken.toml:4", "gpio.ground_loop.pin", "this lane has no trigger"],
    ),
    (
        "two_way_lane_needs_both_loops",
        '[lane]\ndirection = "both"\n',
        ["gpio.inner_loop.pin", "needs both loops"],
    ),
    (
        "model_folder_missing",
        '[lpr]\nmodel_dir = "/nonexistent/models"\n',
        ["broken.toml:2", "lpr.model_dir", "does not exist"],
    ),
    (
        "out_of_range",
        "[trigger]\nburst_frames = 0\n",
        ["broken.toml:2", "trigger.burst_frames", "expected 1..30, found 0"],
    ),
    (
        "syntax_error",
        '[site]\nid = "unterminated\n',
        ["broken.toml:2", "TOML syntax error"],
    ),
    (
        "unknown_section",
        "[sitte]\nid = 5\n",
        ["broken.toml:1", "sitte", "did you mean 'site'"],
    ),
    (
        "bad_id_for_topics",
        '[site]\nid = "plant 7/east"\n',
        ["broken.toml:2", "site.id", "letters, digits"],
    ),
]


@pytest.mark.parametrize(("name", "text", "fragments"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_config_names_file_line_and_key(
    tmp_path: Path, name: str, text: str, fragments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["config", "check", str(path)]) == 1
    err = capsys.readouterr().err
    for frag in fragments:
        assert frag in err, f"{frag!r} not in {err!r}"


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse(
            '[site]\nid = 3\ngate_id = ""\n[daemon]\nfoo = 1\nheartbeat_s = 0\n'
            "[trigger]\nburst_frames = 0\nburst_interval_ms = -1\n"
            "[gpio]\npulse_ms = 1\n[gpio.ground_loop]\npull_up = true\n"
            "[lpr]\nthreads = 0\ndet_score = 2.0\n[mqtt]\nport = 0\nkeepalive_s = 1\n",
            "x.toml",
        )
    paths = {p.path for p in info.value.problems}
    assert {
        "site.id",
        "daemon.foo",
        "daemon.heartbeat_s",
        "trigger.burst_frames",
        "trigger.burst_interval_ms",
        "gpio.pulse_ms",
        "gpio.ground_loop.active_high",
        "lpr.threads",
        "lpr.det_score",
        "mqtt.port",
        "mqtt.keepalive_s",
    } <= paths, paths


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "edged config example > /etc/edged/edged.toml" in str(info.value)


def test_env_var_selects_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "e.toml"
    path.write_text('[site]\nid = "fromenv"\n')
    monkeypatch.setenv("EDGED_CONFIG", str(path))
    assert load_config().site.id == "fromenv"


def test_show_masks_secrets_and_fills_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[site]\nid = "p1"\n')
    assert main(["--config", str(path), "config", "show"]) == 0
    out = capsys.readouterr().out
    assert 'id = "p1"' in out
    assert "heartbeat_s = 5.0" in out  # default filled in


def test_key_lines_tracks_arrays_of_tables() -> None:
    text = "[a]\nx = 1\n\n[[a.p]]\nn = 1\n[[a.p]]\n# c\nn = 2\nm = [\n 1,\n 2]\nz = 3\n"
    lines = key_lines(text)
    assert lines["a.x"] == 2
    assert lines["a.p[0].n"] == 5
    assert lines["a.p[1].n"] == 8
    assert lines["a.p[1].z"] == 12
