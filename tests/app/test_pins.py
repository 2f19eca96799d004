"""The pin factory is chosen once, explicitly, and every way it can fail is one clear line.

The lgpio cases run the real lgpio module (its wheel is a dependency); this
machine has no GPIO chip, so they end at opening the chip, after the part
that breaks under systemd: the notification pipe lgpio makes in the working
directory when it is imported. The read-only case mounts the folder read-only
in a private mount namespace, as ProtectSystem=strict does for ``/``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from structlog.testing import capture_logs

from edged.app import pins

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "edged.service"


def fake_board(root: Path, model: str | None, chips: tuple[str, ...]) -> Path:
    if model is not None:
        (root / "proc/device-tree").mkdir(parents=True)
        (root / "proc/device-tree/model").write_bytes(model.encode() + b"\0")
    (root / "dev").mkdir(parents=True, exist_ok=True)
    for chip in chips:
        (root / "dev" / chip).touch()
    return root


def test_a_pi_5_gets_lgpio(tmp_path: Path) -> None:
    root = fake_board(tmp_path, "Raspberry Pi 5 Model B Rev 1.0", ("gpiochip4", "gpiochip0"))
    choice = pins.decide({}, pins.board_model(root), pins.gpio_chips(root))
    assert choice == pins.Choice(
        "lgpio", "auto", "Raspberry Pi 5 Model B Rev 1.0", ("gpiochip0", "gpiochip4")
    )


def test_the_environment_names_the_factory(tmp_path: Path) -> None:
    root = fake_board(tmp_path, "Raspberry Pi 4 Model B Rev 1.5", ("gpiochip0",))
    env = {"GPIOZERO_PIN_FACTORY": "Mock"}
    choice = pins.decide(env, pins.board_model(root), pins.gpio_chips(root))
    assert (choice.name, choice.source) == ("mock", "GPIOZERO_PIN_FACTORY")


def test_no_gpio_chip_is_a_clear_error(tmp_path: Path) -> None:
    root = fake_board(tmp_path, None, ())
    with pytest.raises(pins.PinFactoryError) as err:
        pins.decide({}, pins.board_model(root), pins.gpio_chips(root))
    assert err.value.message == "no GPIO on this machine: no /dev/gpiochip* device"
    assert "GPIOZERO_PIN_FACTORY=mock" in err.value.hint


def test_an_unknown_factory_name_lists_the_real_ones() -> None:
    with pytest.raises(pins.PinFactoryError) as err:
        pins.build(pins.Choice("lgpoi", "GPIOZERO_PIN_FACTORY", "", ()))
    assert "'lgpoi' is not a gpiozero pin factory" in err.value.message
    assert "lgpio" in err.value.hint and "mock" in err.value.hint


def test_the_choice_is_logged_once(tmp_path: Path) -> None:
    root = fake_board(tmp_path, "Raspberry Pi 5 Model B Rev 1.0", ())
    with capture_logs() as logs:
        factory, choice = pins.open_pin_factory({"GPIOZERO_PIN_FACTORY": "mock"}, root)
    try:
        assert isinstance(factory, MockFactory) and choice.name == "mock"
        assert logs == [
            {
                "event": "gpio_pin_factory",
                "log_level": "info",
                "component": "gpio",
                "factory": "mock",
                "chosen_by": "GPIOZERO_PIN_FACTORY",
                "chip": None,
                "board": "Raspberry Pi 5 Model B Rev 1.0",
                "chips": None,
            }
        ]
    finally:
        factory.close()


def _unit_value(key: str) -> str:
    values = re.findall(rf"^{key}=(.*)$", UNIT.read_text(), re.M)
    assert values, f"edged.service sets no {key}="
    return values[-1]


def _probe_gpio_in(cwd: str, config: Path, ro: bool = False) -> subprocess.CompletedProcess[str]:
    """``edged probe gpio`` with lgpio, run from ``cwd`` (read-only if asked) in a private mount
    namespace with a tmpfs on /run, so the unit's /run/edged can be made without touching /run."""
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "lgpio", "PYTHONPATH": str(REPO)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("LG_WD", None)
    script = (
        'set -e; mount -t tmpfs tmpfs /run; mkdir -p "$1"; '
        + ('mount --bind -o ro "$1" "$1"; ' if ro else "")
        + 'cd "$1"; shift; exec "$@"'
    )
    cmd = [sys.executable, "-m", "edged", "--config", str(config), "probe", "gpio"]
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", cwd, *cmd],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


needs_namespaces = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare to mount a private /run (the CI machine has both)",
)


@needs_namespaces
def test_lgpio_imports_in_the_units_working_directory(tmp_path: Path) -> None:
    workdir = _unit_value("WorkingDirectory")
    assert f"Environment=LG_WD={workdir}" in UNIT.read_text(), "LG_WD must be the working dir"
    assert re.search(r"^RuntimeDirectory=edged$", UNIT.read_text(), re.M)
    assert workdir == "/run/edged"
    config = tmp_path / "edged.toml"
    config.write_text('[camera]\ntype = "none"\n')
    res = _probe_gpio_in(workdir, config)
    out = res.stdout + res.stderr
    # lgpio imported (its pipe is made), then found no chip to open on this machine.
    assert res.returncode == 1 and "Traceback" not in out, out
    assert "FAIL: pin factory lgpio" in res.stdout and "cannot be loaded" not in out, out
    assert "Falling back" not in out and "PinFactoryFallback" not in out, out


@needs_namespaces
def test_a_read_only_working_directory_is_named(tmp_path: Path) -> None:
    config = tmp_path / "edged.toml"
    config.write_text('[camera]\ntype = "none"\n')
    res = _probe_gpio_in("/run/ro", config, ro=True)
    out = res.stdout + res.stderr
    assert res.returncode == 1 and "Traceback" not in out, out
    assert (
        "FAIL: lgpio needs a writable working directory for its notification pipe,"
        " and /run/ro is not writable: run from a writable folder" in res.stdout
    ), out
    assert "Falling back" not in out, out
