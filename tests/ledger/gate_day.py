"""Two days at a gate, row by row, for tests that count by hand.

2024-05-01 (no alert): 18 rows. 2024-05-02: an orange alert in the morning,
over at noon: 3 rows. Then row 12 (a misread plate) is corrected as row 22.
The expected figures of the reports are worked out in the comments of
tests/ledger/test_reports.py from this list.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from edged.ledger import Approval, LedgerStore, PassageRecord, Snapshot

CST = timezone(timedelta(hours=8))
DAY1 = datetime(2024, 5, 1, tzinfo=CST)
DAY2 = datetime(2024, 5, 2, tzinfo=CST)
TAG = "E20000170000000000000013"


def doc_sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def rec(at: datetime, direction: str, decision: str, reason: str, **kw: Any) -> PassageRecord:
    base: dict[str, Any] = {
        "time": at.isoformat(timespec="milliseconds"),
        "site": "hbsteel",
        "gate": "east",
        "lane": "east-in" if direction == "in" else "east-out",
        "direction": direction,
        "decision": decision,
        "reason_code": reason,
        "reason_zh": {
            "stage_ok": "国五车辆，放行",
            "exit_open": "出厂放行",
            "new_energy": "新能源车辆，放行",
            "stage_below_minimum": "排放阶段不达标（国4，需国5及以上），禁止入厂",
            "unknown_vehicle": "未登记车辆，请人工核查",
            "special_approval": "特批放行：抢修",
            "blacklisted": "黑名单车辆禁止通行：超标排放",
            "hazardous_outside_window": "危险品车辆非通行时段禁入（08:00-09:00）",
            "unread": "未识别车牌，请人工核查",
        }[reason],
        "reason_en": reason,
        "id_source": "plate",
        "id_confidence": 0.98,
        "category": "transport",
        "alert_level": "none",
    }
    base.update(kw)
    return PassageRecord(**base)


def truck(plate: str, stage: str | None, code: str | None, fleet: str | None, **kw: Any) -> dict:
    out: dict[str, Any] = {
        "plate": plate,
        "plate_colour": "yellow",
        "vehicle_type": "重型半挂牵引车",
        "vin": f"LZZ1CLSB0KA{plate[-5:]:0>6}",
        "engine_no": f"WP12{plate[-5:]}",
        "registered_on": "2019-06-30",
        "fuel": "diesel",
        "emission_stage": stage,
        "stage_code": code,
        "fleet": fleet,
        "cargo": "焦炭",
        "documents": {"env_list": doc_sha(plate + "清单"), "licence": doc_sha(plate + "行驶证")},
    }
    out.update(kw)
    return out


APPROVAL = Approval(
    "AP-1",
    "张三",
    "李四",
    "抢修",
    "2024-05-01T18:00:00+08:00",
    approved_at="2024-05-01T08:55:00+08:00",
    direction="in",
    ref="TP-2024-001",
)


def h(day: datetime, hh: int, mm: int) -> datetime:
    return day + timedelta(hours=hh, minutes=mm)


def rows() -> list[PassageRecord]:
    """Rows 1-21 in append order (seq = index + 1)."""
    a = "冀A"
    return [
        rec(h(DAY1, 8, 0), "in", "allow", "stage_ok", **truck(a + "00001", "国5", "5", "甲车队")),
        rec(h(DAY1, 8, 10), "in", "allow", "stage_ok", **truck(a + "00002", "国6b", "6", "甲车队")),
        rec(
            h(DAY1, 8, 20),
            "in",
            "deny",
            "stage_below_minimum",
            **truck(a + "00003", "国4", "4", "甲车队"),
        ),
        rec(
            h(DAY1, 8, 30),
            "in",
            "allow",
            "new_energy",
            **truck(a + "D0004", None, "d", "乙车队", fuel="electric", plate_colour="green"),
        ),
        rec(h(DAY1, 8, 40), "in", "hold", "unknown_vehicle", plate=a + "00005", category=None),
        rec(
            h(DAY1, 8, 50),
            "out",
            "allow",
            "exit_open",
            **truck(a + "00001", "国5", "5", "甲车队", weight_kg=15000),
            net_t=30.5,
            entry_seq=1,
            entry_time=h(DAY1, 8, 0).isoformat(timespec="milliseconds"),
            dwell_s=3000,
        ),
        rec(
            h(DAY1, 9, 0),
            "in",
            "allow",
            "special_approval",
            **truck(a + "00006", "国4", "4", "乙车队"),
            approval=APPROVAL,
        ),
        rec(
            h(DAY1, 9, 10), "in", "deny", "blacklisted", **truck(a + "00007", "国5", "5", "乙车队")
        ),
        rec(
            h(DAY1, 9, 20),
            "in",
            "deny",
            "hazardous_outside_window",
            **truck(a + "00008", "国6a", "6", "丙车队", cargo="液氨"),
            flags=("hazardous",),
        ),
        rec(
            h(DAY1, 9, 30),
            "in",
            "allow",
            "stage_ok",
            category="machinery",
            id_source="manual",
            id_confidence=None,
            fuel="diesel",
            emission_stage="国3",
            stage_code="3",
            vehicle_type="装载机",
            documents={"nameplate": doc_sha("MA0001铭牌")},
            machinery={
                "registry_no": "MA0001",
                "env_code": "130100-0001-2019",
                "made_on": "2019-03-15",
                "owner": "河北某钢铁公司",
                "machine_type": "装载机",
            },
        ),
        rec(h(DAY1, 9, 40), "in", "allow", "stage_ok", **truck(a + "00002", "国6b", "6", "甲车队")),
        rec(h(DAY1, 9, 50), "in", "allow", "stage_ok", **truck(a + "00009", "国5", "5", "丙车队")),
        rec(
            h(DAY1, 10, 0),
            "in",
            "hold",
            "unread",
            id_source="rfid",
            id_confidence=None,
            rfid_tag=TAG,
            category=None,
        ),
        rec(
            h(DAY1, 10, 10),
            "in",
            "allow",
            "stage_ok",
            **truck(a + "00008", "国6a", "6", "丙车队", cargo="液氨"),
            flags=("hazardous",),
        ),
        *(
            rec(
                h(DAY1, 11, 10 * i),
                "in" if i % 2 == 0 else "out",
                "allow",
                "stage_ok" if i % 2 == 0 else "exit_open",
                **truck("冀B77777", "国6b", "6", "甲车队"),
            )
            for i in range(4)
        ),
        rec(
            h(DAY2, 8, 0),
            "in",
            "allow",
            "stage_ok",
            alert_level="orange",
            **truck(a + "00001", "国5", "5", "甲车队"),
        ),
        rec(
            h(DAY2, 8, 10),
            "in",
            "deny",
            "stage_below_minimum",
            alert_level="orange",
            **truck(a + "00011", "国4", "4", "丁车队"),
        ),
        rec(h(DAY2, 13, 0), "in", "allow", "stage_ok", **truck(a + "00002", "国6b", "6", "甲车队")),
    ]


def fill(store: LedgerStore, images: Path | None = None, documents: Path | None = None) -> None:
    """Append rows 1-21 (with snapshot files when ``images`` is given, document photos
    when ``documents`` is), then row 22: the correction of row 12 (冀A00009 was 冀A00010)."""
    import dataclasses

    for i, r in enumerate(rows(), 1):
        if images is not None:
            data = b"\xff\xd8\xff jpeg of row %d" % i
            rel = f"2024/05/{i:02d}.jpg"
            (images / rel).parent.mkdir(parents=True, exist_ok=True)
            (images / rel).write_bytes(data)
            r = dataclasses.replace(r, snapshots=(Snapshot(rel, hashlib.sha256(data).hexdigest()),))
        if documents is not None:
            for kind, sha in r.documents.items():
                (documents / f"{sha}.jpg").parent.mkdir(parents=True, exist_ok=True)
                (documents / f"{sha}.jpg").write_bytes(_doc_bytes(r, kind, sha))
        store.append_passage(r)
    original = store.current(12)
    assert original is not None
    fixed = dataclasses.replace(
        original.record,
        plate="冀A00010",
        emission_stage="国6b",
        stage_code="6",
        vin="LZZ1CLSB0KA000010",
    )
    store.append_correction(12, fixed, operator="王五", reason="车牌误识")


def _doc_bytes(r: PassageRecord, kind: str, sha: str) -> bytes:
    """A document file whose SHA-256 is its name: the registry stores them that way. The
    fixture's names are hashes of short texts, so the file holds that text."""
    for text in (f"{r.plate}清单", f"{r.plate}行驶证", "MA0001铭牌"):
        if doc_sha(text) == sha:
            return text.encode()
    raise AssertionError(kind)
