"""Shared fixtures: real brokers, the shared real-data folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.broker import Mosquitto, find_mosquitto
from tests.ptys import PtyCable

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("EDGED_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh broker per test on a free loopback port."""
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed: run ./scripts/setup.sh")
    broker = Mosquitto(workdir=tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def cable(tmp_path: Path) -> Iterator[PtyCable]:
    """A serial cable: a pty pair whose device end has a stable name, as udev gives one."""
    c = PtyCable(tmp_path / "ttyGATE0")
    yield c
    c.close()


def shared_data(name: str) -> Path:
    """Path of a folder of real data from other teams, or skip the test clearly."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(
            f"real data folder {name!r} not present beside the checkout (shared/data/{name})"
        )
    return path


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """Carry the reliability rows a test recorded on its report.

    Tests run in several worker processes (pytest-xdist); only reports reach
    the process that prints the summary, so the rows travel with them.
    """
    from tests.reliability.summary import ROWS

    if ROWS:
        item.user_properties.append(("reliability_rows", [asdict(r) for r in ROWS]))
        ROWS.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect the rows carried by each test's last report (see above)."""
    from tests.reliability.summary import REPORTED, Row

    if report.when == "teardown":
        for key, rows in report.user_properties:
            if key == "reliability_rows":
                REPORTED.extend(Row(**r) for r in rows)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the reliability suite's table of faults and counts, when it ran."""
    from tests.reliability.summary import REPORTED, table

    if REPORTED:
        terminalreporter.section("reliability summary")
        for line in table(REPORTED):
            terminalreporter.write_line(line)
