from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edged.ledger.chain import GENESIS_HASH, canonical, row_hash
from edged.ledger.record import PassageRecord, RecordError, Snapshot
from tests.ledger.conftest import make_record

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
    max_leaves=20,
)


def test_canonical_is_sorted_compact_utf8_with_nulls() -> None:
    assert (
        canonical({"b": None, "a": "国五", "c": [1, 2]})
        == '{"a":"国五","b":null,"c":[1,2]}'.encode()
    )


@given(json_values)
def test_canonical_roundtrips_and_is_stable(value: object) -> None:
    enc = canonical(value)
    assert json.loads(enc) == value
    assert canonical(json.loads(enc)) == enc


def test_canonical_refuses_nan() -> None:
    with pytest.raises(ValueError):
        canonical({"x": float("nan")})


def test_row_hash_spec_is_what_docs_say() -> None:
    fields = {"plate": "冀B12345"}
    expected = hashlib.sha256(
        (GENESIS_HASH + ":1:" + '{"plate":"冀B12345"}').encode("utf-8")
    ).hexdigest()
    assert row_hash(GENESIS_HASH, 1, fields) == expected
    assert row_hash(GENESIS_HASH, 2, fields) != expected
    assert row_hash("1" * 64, 1, fields) != expected


def test_record_fields_roundtrip_every_key_present() -> None:
    rec = make_record(
        3,
        flags=("tag_mismatch", "unknown_vehicle"),
        snapshots=(Snapshot("2024/05/01/a.jpg", "a" * 64),),
    )
    fields = rec.to_fields()
    assert PassageRecord.from_fields(json.loads(canonical(fields))) == rec
    for key in (
        "time",
        "vin",
        "approval",
        "correction_of",
        "operator",
        "event_id",
        "id_source",
        "id_confidence",
    ):
        assert key in fields


@pytest.mark.parametrize(
    "kw,field",
    [
        ({"time": "2024-05-01T08:00:00"}, "time"),
        ({"time": "yesterday"}, "time"),
        ({"direction": "sideways"}, "direction"),
        ({"decision": "maybe"}, "decision"),
        ({"weight_kg": -5}, "weight_kg"),
        ({"id_confidence": 1.5}, "id_confidence"),
        ({"id_source": "psychic"}, "id_source"),
    ],
)
def test_record_rejects_bad_values_naming_the_field(kw: dict, field: str) -> None:
    with pytest.raises(RecordError, match=f"^{field}: "):
        make_record(0, **kw)


@pytest.mark.parametrize("path", ["/etc/passwd", "../x.jpg", "a/../../x.jpg", "C:x.jpg", ""])
def test_snapshot_paths_stay_inside_images_folder(path: str) -> None:
    with pytest.raises(RecordError, match=r"^snapshots.path: "):
        Snapshot(path, "a" * 64)


def test_from_fields_rejects_unknown_keys() -> None:
    fields = make_record().to_fields() | {"extra": 1}
    with pytest.raises(RecordError, match="unknown keys"):
        PassageRecord.from_fields(fields)
