"""Cargo declarations: the passage's 运输货物名称 from logistics, else the vehicle's default."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from edged.admission.model import Vehicle
from edged.admission.registry import Registry

TZ = timezone(timedelta(hours=8))
# near the wall clock: a snapshot holds the declarations not yet ended when it is built
T0 = datetime.now(TZ).replace(microsecond=0)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def reg(tmp_path: Path):
    r = Registry(tmp_path / "r.db")
    r.upsert_vehicles([Vehicle("冀A12345", cargo="焦炭"), Vehicle("冀B54321")])
    yield r
    r.close()


def test_a_declaration_wins_in_its_window_then_the_default_returns(reg: Registry) -> None:
    reg.declare_cargo("冀A12345", "铁矿石", h(4), "wms", valid_from=h(1), now=h(0))
    snap = reg.snapshot()
    assert [snap.cargo_for("冀A12345", h(t)) for t in (0.5, 1, 3.9, 4)] == [
        "焦炭",
        "铁矿石",
        "铁矿石",
        "焦炭",
    ]
    assert snap.cargo_for("冀B54321", h(2)) is None, "no default and no declaration: unknown"
    assert snap.cargo_for("冀C00000", h(2)) is None and snap.cargo_for(None, h(2)) is None
    reg.declare_cargo("冀A12345", "焦煤", h(3), "wms", valid_from=h(2), now=h(0.5))
    assert reg.snapshot().cargo_for("冀A12345", h(2.5)) == "焦煤", "the later word wins"


def test_a_declaration_for_one_passage_is_used_once(reg: Registry) -> None:
    d = reg.declare_cargo("冀B54321", "石灰石", h(8), "wms", uses=1, now=h(0))
    snap = reg.snapshot()
    declared = snap.cargo_declaration_for("冀B54321", h(1))
    assert declared == d and snap.cargo_for("冀B54321", h(1)) == "石灰石"
    assert reg.consume_cargo(d.id, "P-1") is True
    assert reg.consume_cargo(d.id, "P-2") is False
    assert reg.snapshot().cargo_for("冀B54321", h(1)) is None
    (got,) = reg.list_cargo("冀B54321")
    assert (got.used, got.uses) == (1, 1)
    open_ended = reg.declare_cargo("冀B54321", "石灰石", h(8), "wms", now=h(0))
    assert reg.consume_cargo(open_ended.id, "P-3") is True, "a window covers every passage"
    assert reg.snapshot().cargo_for("冀B54321", h(2)) == "石灰石"


def test_declarations_are_checked(reg: Registry) -> None:
    with pytest.raises(ValueError, match=r"cargo: expected 1-32 characters, found 33"):
        reg.declare_cargo("冀A12345", "煤" * 33, h(2), "wms", now=h(0))
    with pytest.raises(ValueError, match=r"valid_until: .* has passed"):
        reg.declare_cargo("冀A12345", "煤", h(-1), "wms", valid_from=h(-2), now=h(0))
    with pytest.raises(ValueError, match=r"uses: expected 1\.\.1000"):
        reg.declare_cargo("冀A12345", "煤", h(2), "wms", uses=0, now=h(0))


def test_a_waybill_card_carries_its_cargo_onto_whichever_passage_sees_it(reg: Registry) -> None:
    d = reg.declare_cargo("", "铁矿石", h(8), "wms", tag="e200c0ffee01", uses=1, now=h(0))
    assert (d.plate, d.tag) == ("", "E200C0FFEE01"), "the tag as readers report it"
    reg.declare_cargo("冀A12345", "焦煤", h(8), "wms", now=h(0))
    snap = reg.snapshot()
    assert snap.is_waybill("E200C0FFEE01") and snap.is_waybill("e200c0ffee01")
    assert not snap.is_waybill("E2001"), "a vehicle's tag is no waybill card"
    got = snap.cargo_declaration_for_tags(["E2001", "E200C0FFEE01"], h(1))
    assert got == d, "the card's declaration, found among the tags seen"
    assert snap.cargo_declaration_for_tags(["E2001"], h(1)) is None
    assert snap.cargo_for("冀A12345", h(1)) == "焦煤", "the plate's own declaration is apart"
    assert [x.id for x in reg.list_cargo(tag="e200c0ffee01")] == [d.id]
    assert reg.consume_cargo(d.id, "P-1") is True
    assert not reg.snapshot().is_waybill("E200C0FFEE01"), "used up: no longer a waybill card"


def test_a_declaration_names_a_plate_or_a_card_not_both(reg: Registry) -> None:
    with pytest.raises(ValueError, match=r"plate, tag: expected a plate or .*found both"):
        reg.declare_cargo("冀A12345", "煤", h(2), "wms", tag="E200AA", now=h(0))
    with pytest.raises(ValueError, match=r"plate, tag: .*found neither"):
        reg.declare_cargo("", "煤", h(2), "wms", now=h(0))
    with pytest.raises(ValueError, match=r"tag: expected at most 64 characters, found 65"):
        reg.declare_cargo("", "煤", h(2), "wms", tag="E" * 65, now=h(0))
