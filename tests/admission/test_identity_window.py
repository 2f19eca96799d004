from __future__ import annotations

from drivers.rfid import TagBuffer, TagRead, collect
from edged.admission.identity import fuse, normalize_plate

REG = {"E200A": "冀A12345", "E200B": "冀B99999", "W0000065537": "晋C00001"}


def lookup(tag: str) -> str | None:
    return REG.get(tag)


def t(epc: str, rssi: float = -50, when: float = 100.0, ant: int = 1) -> TagRead:
    return TagRead(epc=epc, time=when, rssi=rssi, antenna=ant)


def test_window_dedupes_ranks_and_bounds() -> None:
    reads = [
        t("E200A", -60, 99.0, 1),
        t("E200A", -45, 100.5, 2),
        t("E200A", -50, 101.0, 1),
        t("E200B", -70, 100.2),
        t("E200C", -30, 90.0),  # far before the trigger
        TagRead(epc="E200D", time=100.1),  # reader without RSSI
    ]
    s = collect(reads, trigger_time=100.0, before_s=2, after_s=2)
    assert [x.epc for x in s] == ["E200A", "E200B", "E200D"]
    a = s[0]
    assert (a.count, a.best_rssi, a.antenna, a.first, a.last) == (3, -45, 2, 99.0, 101.0)
    buf = TagBuffer(maxlen=3)
    for r in reads:
        buf.add(r)
    assert len(buf) == 3
    assert {x.epc for x in buf.window(100.0)} == {"E200B", "E200D"}  # oldest dropped


def test_plate_and_tag_agree() -> None:
    ident = fuse("冀A·12345", 0.8, [t("E200A")], lookup)
    assert ident.source == "plate+rfid" and ident.plate == "冀A12345"
    assert ident.confidence > 0.8 and ident.tag == "E200A" and ident.flags == ()


def test_plate_unread_tag_known() -> None:
    ident = fuse(None, None, [t("E200B")], lookup)
    assert (ident.source, ident.plate, ident.tag) == ("rfid", "冀B99999", "E200B")
    assert "plate_unread" in ident.flags


def test_tag_of_another_vehicle_is_flagged() -> None:
    ident = fuse("冀A12345", 0.95, [t("E200B")], lookup)
    assert ident.source == "plate" and ident.plate == "冀A12345"
    assert "tag_mismatch" in ident.flags and ident.tag_plate == "冀B99999"


def test_low_confidence_plate_with_other_tag() -> None:
    ident = fuse("冀A12845", 0.3, [t("E200A")], lookup)
    assert ident.source == "rfid" and ident.plate == "冀A12345"
    assert {"tag_mismatch", "plate_low_confidence"} <= set(ident.flags)


def test_matching_tag_wins_over_stronger_stray_tag() -> None:
    # a queueing truck's tag is stronger, but the plate's own tag is also present
    ident = fuse("冀A12345", 0.9, [t("E200B", -30), t("E200A", -60)], lookup)
    assert ident.source == "plate+rfid" and ident.tag == "E200A"
    assert "multiple_tags" in ident.flags


def test_unknown_tag_and_nothing() -> None:
    ident = fuse("冀A12345", 0.9, [t("FFFF")], lookup)
    assert ident.source == "plate" and "unknown_tag" in ident.flags
    none = fuse(None, None, [], lookup)
    assert (none.source, none.plate, none.confidence) == ("none", None, 0.0)


def test_lookup_failure_is_flagged_not_raised() -> None:
    def broken(_tag: str) -> str | None:
        raise RuntimeError("registry db locked")

    ident = fuse("冀A12345", 0.9, [t("E200A")], broken)
    assert ident.source == "plate" and "lookup_failed" in ident.flags


def test_sightings_work_as_tags() -> None:
    s = collect([t("E200A")], 100.0)
    assert fuse(None, None, s, lookup).plate == "冀A12345"


def test_normalize_plate() -> None:
    assert normalize_plate(" 冀a-12345 ") == "冀A12345"
