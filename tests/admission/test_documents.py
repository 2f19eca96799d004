"""Document photos stored by content: checked, bounded, stored once, found by their hash."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from edged.admission.documents import DocumentRefused, DocumentStore
from edged.admission.model import Vehicle
from edged.admission.registry import Registry
from tests.admission.photos import picture


def test_a_photo_is_stored_once_under_its_hash(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "documents")
    src = picture(tmp_path / "in" / "qd.png", 3, ".png")
    digest, new = store.store(src)
    assert digest == hashlib.sha256(src.read_bytes()).hexdigest() and new
    assert store.path(digest) == tmp_path / "documents" / f"{digest}.png"
    assert store.store(src) == (digest, False)
    assert [p.name for p in (tmp_path / "documents").iterdir()] == [f"{digest}.png"]
    assert store.verify(digest)
    store.path(digest).write_bytes(b"\x89PNG\r\n\x1a\nedited")
    assert not store.verify(digest), "a photo edited after the fact no longer matches its name"
    assert store.path("../../etc/passwd") is None and store.path("0" * 64) is None


def test_what_is_not_a_photo_is_refused(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "documents", max_bytes=4096)
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(DocumentRefused, match="not a JPEG, PNG, WebP picture or a PDF"):
        store.put(tmp_path / "a.txt")
    (tmp_path / "big.pdf").write_bytes(b"%PDF-1.7\n" + b"0" * 5000)
    with pytest.raises(DocumentRefused, match="over the 4096 byte limit"):
        store.put(tmp_path / "big.pdf")
    with pytest.raises(DocumentRefused, match="cannot read"):
        store.put(tmp_path / "missing.jpg")
    (tmp_path / "small.pdf").write_bytes(b"%PDF-1.7\n%%EOF\n")
    assert store.path(store.put(tmp_path / "small.pdf")).suffix == ".pdf"
    assert not list((tmp_path / "documents").glob(".incoming-*")), "no temporary file left"


def test_photos_attach_to_a_vehicle_and_keep_the_others(tmp_path: Path) -> None:
    with Registry(tmp_path / "data" / "registry.db") as reg:
        reg.upsert_vehicles([Vehicle("冀A12345")])
        qd = picture(tmp_path / "qd.jpg", 1)
        v = reg.attach_photos("冀A12345", {"env_list": qd}, "op")
        xsz = picture(tmp_path / "xsz.jpg", 2)
        v = reg.attach_photos("冀A12345", {"licence": xsz}, "op")
        assert set(v.documents) == {"env_list", "licence"}
        assert reg.get_vehicle("冀A12345").documents == v.documents
        assert reg.document_path(v.document("licence")).read_bytes() == xsz.read_bytes()
        assert reg.documents.root == tmp_path / "data" / "documents"
        with pytest.raises(LookupError, match="冀B00000: not in the registry"):
            reg.attach_photos("冀B00000", {"env_list": qd}, "op")
        with pytest.raises(ValueError, match="nameplate is not a photo of a vehicle"):
            reg.attach_photos("冀A12345", {"nameplate": qd}, "op")
