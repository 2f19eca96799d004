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
        '[daemon]\nheartbeat_seconds = "fast"\n',
        ["broken.toml:2", "daemon.heartbeat_seconds", "expected number", "string 'fast'"],
    ),
    (
        "bad_choice",
        '[site]\ndirection = "sideways"\n',
        ["broken.toml:2", "site.direction", "one of 'in', 'out', 'both'", "'sideways'"],
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
        "[cammera]\nfps = 5\n",
        ["broken.toml:1", "cammera", "did you mean 'camera'"],
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
        parse('[site]\nid = 3\ngate_id = ""\n[daemon]\nfoo = 1\n', "x.toml")
    paths = {p.path for p in info.value.problems}
    assert {"site.id", "daemon.foo"} <= paths


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "edged.example.toml" in str(info.value)


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
    assert "heartbeat_seconds = 5.0" in out  # default filled in


def test_key_lines_tracks_arrays_of_tables() -> None:
    text = "[a]\nx = 1\n\n[[a.p]]\nn = 1\n[[a.p]]\n# c\nn = 2\nm = [\n 1,\n 2]\nz = 3\n"
    lines = key_lines(text)
    assert lines["a.x"] == 2
    assert lines["a.p[0].n"] == 5
    assert lines["a.p[1].n"] == 8
    assert lines["a.p[1].z"] == 12
