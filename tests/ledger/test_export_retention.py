from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from edged.ledger import LedgerStore
from edged.ledger.chain import hash_bytes
from edged.ledger.export import ExportError, export
from edged.ledger.query import zone
from edged.ledger.retention import (
    MB,
    ImageFile,
    LedgerConfig,
    RetentionKeeper,
    images_allowed,
    plan_sweep,
)
from edged.ledger.verify import verify_db
from tests.ledger.conftest import make_record, write_image

TZ = zone("Asia/Shanghai")


def _fill(store: LedgerStore, images: Path, start: int, n: int) -> None:
    for i in range(start, start + n):
        snap = write_image(images, f"d/{i}.jpg", b"jpeg%d" % i)
        store.append_passage(make_record(i, snapshots=(snap,)))


def test_export_writes_manifest_last_and_continues_next_time(
    store: LedgerStore, tmp_path: Path
) -> None:
    images, stick = tmp_path / "images", tmp_path / "stick"
    stick.mkdir()
    _fill(store, images, 0, 5)
    res = export(
        store, stick, tz=TZ, site="hb", gate="east", images_dir=images, include_images=True
    )
    man = json.loads((res.folder / "MANIFEST.json").read_text())
    assert man["passages"]["first_seq"] == 1 and man["passages"]["last_seq"] == 5
    for name, meta in man["files"].items():
        data = (res.folder / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == meta["sha256"] and len(data) == meta["size"]
    assert (
        "reports/daily-2024-05-01.csv" in man["files"] and "photos/4/snapshot-1.jpg" in man["files"]
    )
    assert "national/transport.csv" in man["files"] and "national/national.xlsx" in man["files"]
    # the exported segment re-hashes to the manifest head
    prev = "0" * 64
    for line in (res.folder / "passages.jsonl").read_text().splitlines():
        seq = json.loads(line)["seq"]
        raw = line[line.index('"fields":') + 9 : -1].encode()
        assert hash_bytes(prev, seq, raw) == json.loads(line)["hash"]
        prev = json.loads(line)["hash"]
    assert prev == man["heads"]["passages"]["hash"]
    assert not list(stick.rglob("*.partial"))
    # next export carries only new rows; export is audited
    _fill(store, images, 5, 2)
    time.sleep(1.1)
    res2 = export(store, stick, tz=TZ, site="hb", gate="east")
    assert res2.passages == (6, 7)
    assert len((res2.folder / "passages.jsonl").read_text().splitlines()) == 2
    assert sum('"action":"export"' in r[3] for r in store.audit_rows()) == 2
    assert verify_db(store.path).ok


def test_export_interrupted_leaves_nothing_that_looks_complete(
    store: LedgerStore, tmp_path: Path, monkeypatch
) -> None:
    stick = tmp_path / "stick"
    stick.mkdir()
    _fill(store, tmp_path / "images", 0, 3)
    import edged.ledger.export as ex

    real_close = ex._Out.close

    def pulled(self):  # the stick goes away while the audit file is written
        if self.final.name == "audit.jsonl":
            raise OSError(5, "Input/output error")
        return real_close(self)

    monkeypatch.setattr(ex._Out, "close", pulled)
    with pytest.raises(ExportError, match="nothing was marked complete"):
        export(store, stick, tz=TZ)
    assert not list(stick.rglob("MANIFEST.json"))
    assert all(p.name.startswith(".") for p in (stick / "edged-export").iterdir())
    assert store.get_state("export.passages_seq") is None  # next export starts again from row 1
    assert store.recent_events(1)[0].kind == "export_failed"


def test_export_refuses_symlinked_target(store: LedgerStore, tmp_path: Path) -> None:
    stick = tmp_path / "stick"
    stick.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", stick / "edged-export")
    with pytest.raises(ExportError, match="symlink"):
        export(store, stick, tz=TZ)
    with pytest.raises(ExportError, match="existing folder"):
        export(store, tmp_path / "nostick", tz=TZ)


def test_config_refuses_too_few_events_and_says_rows_are_never_deleted() -> None:
    from edged.config.schema import SchemaError, build

    with pytest.raises(SchemaError) as exc:
        build(LedgerConfig, {"events_keep": 50, "retention_days": 300})
    problems = {p.path: p.message for p in exc.value.problems}
    assert problems["events_keep"] == "expected >= 100, found 50"
    assert "ledger rows are never deleted" in problems["retention_days"]


def test_images_allowed_policy() -> None:
    cfg = LedgerConfig(image_budget_mb=100, min_free_mb=50)
    assert images_allowed(500, 10, cfg) == (True, "ok")
    assert images_allowed(40, 10, cfg) == (False, "disk_low")
    assert images_allowed(500, 100, cfg) == (False, "over_budget")


def test_plan_sweep_oldest_first_age_then_budget_then_free() -> None:
    cfg = LedgerConfig(image_retention_days=10, image_budget_mb=3, min_free_mb=100)
    now = 100 * 86400.0
    files = [
        ImageFile("new.jpg", now - 1 * 86400, MB),
        ImageFile("old.jpg", now - 20 * 86400, MB),
        ImageFile("mid.jpg", now - 5 * 86400, MB),
        ImageFile("mid2.jpg", now - 4 * 86400, MB),
        ImageFile("mid3.jpg", now - 3 * 86400, MB),
    ]
    plan = plan_sweep(files, now, free_mb=1000, cfg=cfg)
    assert [(f.path, r) for f, r in plan] == [("old.jpg", "age"), ("mid.jpg", "budget")]
    plan = plan_sweep(files, now, free_mb=97, cfg=cfg)
    assert [r for _f, r in plan] == ["age", "budget", "disk_low"]
    assert plan_sweep([], now, 0, cfg) == []


def test_sweeper_deletes_records_and_verify_still_passes(
    store: LedgerStore, tmp_path: Path
) -> None:
    images = tmp_path / "images"
    _fill(store, images, 0, 4)
    old = time.time() - 400 * 86400
    os.utime(images / "d/0.jpg", (old, old))
    keeper = RetentionKeeper(store, LedgerConfig(images_dir=str(images), min_free_mb=0))
    counts = keeper.sweep()
    assert counts == {"age": 1}
    assert not (images / "d/0.jpg").exists()
    res = verify_db(store.path, images)
    assert res.ok and res.images_purged == 1 and res.images_checked == 3
    assert store.heads()["passages"][0] == 4  # ledger untouched


def test_keeper_raises_event_when_images_stop_and_resume(
    store: LedgerStore, tmp_path: Path
) -> None:
    keeper = RetentionKeeper(store, LedgerConfig(images_dir=str(tmp_path / "img"), min_free_mb=100))
    assert keeper.images_allowed(free_mb=50) == (False, "disk_low")
    assert store.recent_events(1)[0].kind == "images_stopped"
    assert keeper.images_allowed(free_mb=5000).allowed
    assert store.recent_events(1)[0].kind == "images_resumed"
