"""scripts/install.sh and uninstall.sh on a throwaway root (DESTDIR + EDGED_NO_SYSTEM=1).

The install runs for real: a venv made from the interpreter this project's
venv was made from, the package and its pinned dependencies installed by pip,
the models copied from this clone's models/onnx (SHA-256 checked, no
network), config, units and udev rule. Users, apt and systemd are left out by
EDGED_NO_SYSTEM=1; what the service would start is checked with
``systemd-analyze verify`` on the installed units. The scripts run from a
copy of the working tree, so the upgrade can change the code without
touching the checkout.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models" / "onnx"
PREFIX = "opt/edged"
pytestmark = pytest.mark.slow

ANYWHERE = shutil.ignore_patterns(
    "__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache", ".hypothesis"
)
AT = {REPO: {".git", ".venv", "var", "build"}, REPO / "models": {"onnx", "cache"}}


def copy_ignore(folder: str, names: list[str]) -> set[str]:
    """What a clone would not have: git data, venv, fetched models, local runs."""
    return set(ANYWHERE(folder, names)) | (AT.get(Path(folder), set()) & set(names))


def base_python() -> str:
    """The interpreter the project venv was made from: ``venv --system-site-packages`` needs one."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    if Path(base).resolve() == Path(sys.executable).resolve() and sys.prefix != sys.base_prefix:
        cfg = Path(sys.prefix) / "pyvenv.cfg"
        home = dict(
            line.split(" = ", 1) for line in cfg.read_text().splitlines() if " = " in line
        ).get("home")
        if home:
            base = str(Path(home) / f"python{sys.version_info.major}.{sys.version_info.minor}")
    return base


@dataclass
class Install:
    clone: Path
    root: Path
    env: dict[str, str]
    seconds: float

    def run(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["bash", str(self.clone / "scripts" / script), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def edged(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.root / PREFIX / "venv" / "bin" / "edged"), *args],
            env=self.env,
            cwd=self.root,  # not the checkout: its edged/ must not be what runs
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Install:
    manifest = tomllib.loads((REPO / "models" / "manifest.toml").read_text())["model"]
    if any(not (MODELS / m["name"]).is_file() for m in manifest):
        pytest.skip("models not fetched: run python models/fetch.py")
    for tool in ("tar", "sed", "install", "bash"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    tmp = tmp_path_factory.mktemp("install")
    clone = tmp / "clone"
    shutil.copytree(REPO, clone, ignore=copy_ignore, symlinks=True)
    root = tmp / "root"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {
        "DESTDIR": str(root),
        "EDGED_NO_SYSTEM": "1",
        "EDGED_MODELS_FROM": str(MODELS),
        "PYTHON": base_python(),
    }
    inst = Install(clone, root, env, 0.0)
    started = time.monotonic()
    proc = inst.run("install.sh")
    inst.seconds = time.monotonic() - started
    # Reported, not asserted (no timed tests); the target is under 60 s.
    print(f"\ninstall.sh into a fresh root took {inst.seconds:.1f} s (target < 60 s)")
    assert "install: done" in proc.stdout
    return inst


def test_fresh_install_lays_out_the_tree(installed: Install) -> None:
    root = installed.root
    for unit in ("edged.service", "edged-usb-export@.service"):
        assert (root / "etc/systemd/system" / unit).read_text() == (
            REPO / "systemd" / unit
        ).read_text()
    assert (root / "etc/udev/rules.d/99-edged-usb.rules").is_file()
    example = (root / "etc/edged/edged.example.toml").read_text()
    assert example == (REPO / "config" / "edged.example.toml").read_text()
    config = (root / "etc/edged/edged.toml").read_text()
    assert 'model_dir = "/var/lib/edged/models"' in config.splitlines()
    assert (root / PREFIX / "venv/pyvenv.cfg").read_text().count(
        "include-system-site-packages = true"
    ) == 1, "the venv must see the system site packages (picamera2 comes from apt)"
    link = root / "usr/local/bin/edged"
    assert link.is_symlink() and os.readlink(link) == "/opt/edged/venv/bin/edged"
    assert (root / PREFIX / "venv/bin/edged").is_file()
    assert not (root / PREFIX / "src/.git").exists() and not (root / PREFIX / "src.old").exists()
    models = root / "var/lib/edged/models"
    for entry in tomllib.loads((REPO / "models/manifest.toml").read_text())["model"]:
        data = (models / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["name"]


def test_installed_edged_runs_from_the_root(installed: Install) -> None:
    py = installed.root / PREFIX / "venv/bin/python"
    where = subprocess.run(
        [str(py), "-c", "import edged; print(edged.__file__)"],
        env=installed.env,
        cwd=installed.root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(installed.root / PREFIX / "venv")), where
    # onnx is set-up only (models/derive.py): the daemon's environment does without it;
    # lgpio, the Pi 4/5 GPIO back-end, is in it.
    for module, wanted in (("onnx", False), ("lgpio", True)):
        found = subprocess.run(
            [
                str(py),
                "-c",
                f"import importlib.util as u; print(u.find_spec({module!r}) is not None)",
            ],
            env=installed.env,
            cwd=installed.root,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
        assert found == str(wanted), f"{module} in the installed venv: {found}"
    assert installed.edged("--version").stdout.startswith("edged ")
    # The installed file names /var/lib/edged outside the throwaway root (the
    # model folder is checked to exist): a copy re-rooted into it is checked.
    config = (installed.root / "etc/edged/edged.toml").read_text()
    rerooted = installed.root / "tmp-edged.toml"
    rerooted.write_text(config.replace('"/var/lib/edged', f'"{installed.root}/var/lib/edged'))
    check = installed.edged("config", "check", str(rerooted))
    assert check.returncode == 0 and "is valid" in check.stdout, check.stderr


def test_installed_code_reads_a_plate_with_the_installed_models(
    installed: Install, tmp_path: Path
) -> None:
    import cv2

    from edged.lpr.synth import render_scene

    # The installed config names /var/lib/edged outside the throwaway root: a
    # copy re-rooted into it lets the installed code load the installed models.
    config = (installed.root / "etc/edged/edged.toml").read_text()
    rerooted = tmp_path / "edged.toml"
    rerooted.write_text(config.replace('"/var/lib/edged', f'"{installed.root}/var/lib/edged'))
    image = tmp_path / "scene.jpg"
    assert cv2.imwrite(str(image), render_scene("冀B12345", "yellow", seed=3))
    res = installed.edged("--config", str(rerooted), "lpr", "read", "--json", str(image))
    assert res.returncode == 0, res.stderr
    plates = [p["text"] for p in json.loads(res.stdout.splitlines()[-1])["plates"]]
    assert "冀B12345" in plates


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_installed_units_verify_against_the_installed_command(
    installed: Install, tmp_path: Path
) -> None:
    # verify checks that each ExecStart exists: map /opt/edged into the root.
    # The USB export unit is a template; verify needs an instance of it.
    for unit, instance in (
        ("edged.service", "edged.service"),
        ("edged-usb-export@.service", "edged-usb-export@sda1.service"),
    ):
        text = (installed.root / "etc/systemd/system" / unit).read_text()
        assert "/opt/edged/venv/bin/edged " in text, f"{unit} must run the venv's edged"
        (tmp_path / unit).write_text(text.replace("/opt/edged/", f"{installed.root}/opt/edged/"))
        res = subprocess.run(
            ["systemd-analyze", "verify", str(tmp_path / instance)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0 and not res.stderr.strip(), f"{unit}: {res.stderr}"


def test_upgrade_keeps_config_and_data_then_uninstall_and_purge(installed: Install) -> None:
    # Last in this file: it changes the installation the tests above look at.
    root, clone = installed.root, installed.clone
    config = root / "etc/edged/edged.toml"
    edited = config.read_text().replace('id = "site1"', 'id = "plant-east"', 1)
    assert 'id = "plant-east"' in edited
    config.write_text(edited)
    ledger = root / "var/lib/edged/ledger.db"
    ledger.write_bytes(b"not a real ledger, but ours")
    init = clone / "edged" / "__init__.py"
    text = init.read_text()
    assert '__version__ = "0.1.0"' in text, "update this test: the version line changed"
    init.write_text(text.replace('__version__ = "0.1.0"', '__version__ = "0.1.0+upgrade.test"'))

    out = installed.run("install.sh").stdout
    assert "keeping existing /etc/edged/edged.toml" in out
    assert config.read_text() == edited
    assert ledger.read_bytes() == b"not a real ledger, but ours"
    assert installed.edged("--version").stdout.strip() == "edged 0.1.0+upgrade.test"
    assert "0.1.0+upgrade.test" in (root / PREFIX / "src/edged/__init__.py").read_text()
    assert not (root / PREFIX / "src.old").exists() and not (root / PREFIX / "src.new").exists()

    out = installed.run("uninstall.sh").stdout
    assert "kept /etc/edged and /var/lib/edged" in out
    assert not (root / PREFIX).exists()
    assert not (root / "etc/systemd/system/edged.service").exists()
    assert not (root / "etc/systemd/system/edged-usb-export@.service").exists()
    assert not (root / "etc/udev/rules.d/99-edged-usb.rules").exists()
    assert not (root / "usr/local/bin/edged").is_symlink()
    assert config.read_text() == edited
    assert ledger.read_bytes() == b"not a real ledger, but ours"
    assert (root / "var/lib/edged/models/clp_det.onnx").is_file()

    installed.run("uninstall.sh", "--purge")
    assert not (root / "etc/edged").exists()
    assert not (root / "var/lib/edged").exists()
