"""The unit file is clean for systemd-analyze and keeps the hardening we promise."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "edged.service"


def test_unit_has_notify_watchdog_and_hardening() -> None:
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "Restart=always",
        "WatchdogSec=",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/edged",
        "User=edged",
        "SupplementaryGroups=gpio dialout video",
    ):
        assert line in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this interpreter.
    unit = tmp_path / "edged.service"
    unit.write_text(UNIT.read_text().replace("/opt/edged/venv/bin/edged", sys.executable))
    res = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0 and not res.stderr.strip() and not res.stdout.strip(), res.stderr
