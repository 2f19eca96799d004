from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serial.ptys import PtyCable


@pytest.fixture
def cable(tmp_path: Path) -> Iterator[PtyCable]:
    c = PtyCable(tmp_path / "ttyGATE0")
    yield c
    c.close()
