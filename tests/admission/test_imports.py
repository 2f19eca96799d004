"""The CSV import of the national fields: vehicles, in-plant vehicles, machinery, photos."""

from __future__ import annotations

import hashlib
from datetime import timedelta, timezone
from pathlib import Path

import pytest

from edged.admission.csv_import import import_csv, parse_csv, parse_items
from edged.admission.model import Vehicle
from edged.admission.registry import Registry
from tests.admission.photos import picture

TZ = timezone(timedelta(hours=8))

NATIONAL_ZH = (
    "车牌号码,车牌颜色,车辆识别代码,注册日期,发动机号码,燃料类型,排放阶段,车队名称,运输货物名称,"
    "随车清单,行驶证\n"
    "冀A12345,黄色,LZZ1CLVB8JD123456,2019/05/20,wp10.336e53,柴油,国六b,唐山运达物流,焦炭,"
    "photos/qd-1.jpg,photos/xsz-1.png\n"
    "冀B54321,黄,,2021-03-01,,天然气,国五,唐山运输,,,\n"
)
NATIONAL_EN = (
    "plate,fuel,emission_stage,engine_no,fleet,cargo,registered_on\n"
    "冀A00001,diesel,6b,D12345678,Hebei Haul,coal,2022-01-02\n"
)


@pytest.fixture
def reg(tmp_path: Path):
    r = Registry(tmp_path / "data" / "registry.db")
    yield r
    r.close()


def test_national_columns_in_chinese_and_english(tmp_path: Path) -> None:
    res = parse_csv(NATIONAL_EN.encode(), "vehicles", tz=TZ)
    assert res.ok, res.errors
    (v,) = res.records
    assert (v.engine_no, v.fleet, v.cargo, v.registered_on, v.category) == (
        "D12345678",
        "Hebei Haul",
        "coal",
        "2022-01-02",
        "transport",
    )
    # the old heading of the fleet (运输单位) and the English "haulier" still work
    for heading in ("运输单位", "运输公司", "车队", "haulier"):
        text = f"车牌号码,燃料类型,{heading}\n冀A12345,柴油,唐山运输\n"
        assert parse_csv(text.encode("gbk"), "vehicles").records[0].fleet == "唐山运输"


def test_national_field_widths_are_checked() -> None:
    text = (
        "车牌号码,燃料类型,发动机号码,运输货物名称,车队名称\n"
        f"冀A12345,柴油,{'E' * 33},{'煤' * 33},{'车' * 101}\n"
    )
    res = parse_csv(text.encode(), "vehicles")
    assert [(e.field, e.message) for e in res.errors] == [
        ("fleet", "at most 100 characters, found 101"),
        ("engine_no", "at most 32 characters, found 33"),
        ("cargo", "at most 32 characters, found 33"),
    ]


def test_photos_named_in_the_csv_are_copied_into_the_store(reg: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "upload"
    qd = picture(folder / "photos" / "qd-1.jpg", 1)
    xsz = picture(folder / "photos" / "xsz-1.png", 2, ".png")
    csv = folder / "vehicles.csv"
    csv.write_bytes(NATIONAL_ZH.encode("gbk"))
    report = import_csv(reg, csv, "vehicles", "upsert", actor="admin")
    assert report.ok and (report.applied, report.photos) == (2, 2)
    v = reg.get_vehicle("冀A12345")
    assert (v.engine_no, v.registered_on, v.fleet, v.cargo, v.emission_stage) == (
        "WP10.336E53",
        "2019-05-20",
        "唐山运达物流",
        "焦炭",
        "国6b",
    )
    want = hashlib.sha256(qd.read_bytes()).hexdigest()
    assert v.document("env_list") == want
    stored = reg.document_path(want)
    assert stored == tmp_path / "data" / "documents" / f"{want}.jpg"
    assert stored.read_bytes() == qd.read_bytes()
    assert reg.document_path(v.document("licence")).suffix == ".png"
    assert reg.document_path(v.document("licence")).read_bytes() == xsz.read_bytes()
    # a later list without photos (a backend's nightly sync) keeps the photos
    reg.apply("vehicles", "replace", [Vehicle("冀A12345", fuel="diesel", emission_stage="国6b")])
    assert reg.get_vehicle("冀A12345").document("env_list") == want
    assert reg.get_vehicle("冀B54321") is None


def test_a_refused_import_leaves_no_photos_behind(reg: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "upload"
    picture(folder / "photos" / "qd-1.jpg", 1)
    (folder / "photos" / "xsz-1.png").write_text("not a picture")
    csv = folder / "vehicles.csv"
    csv.write_bytes(NATIONAL_ZH.encode("utf-8"))
    report = import_csv(reg, csv, "vehicles", "upsert")
    assert [(e.row, e.field) for e in report.errors] == [(2, "licence")]
    assert "not a JPEG, PNG, WebP picture or a PDF" in report.errors[0].message
    assert reg.count_vehicles() == 0
    assert not list(reg.documents.root.glob("*.jpg")), "the copied env_list photo was left"
    (folder / "photos" / "xsz-1.png").unlink()
    report = import_csv(reg, csv, "vehicles", "upsert")
    assert "cannot read" in report.errors[0].message


def test_without_a_store_a_photo_cell_must_name_a_stored_photo() -> None:
    res = parse_csv(NATIONAL_ZH.encode(), "vehicles")
    assert {e.field for e in res.errors} == {"env_list", "licence"}
    digest = "ab" * 32
    rows, errors = parse_items(
        "vehicles", "upsert", [{"plate": "冀A12345", "fuel": "diesel", "随车清单": digest}], TZ
    )
    assert not errors and rows[0].documents == {"env_list": digest}


def test_in_plant_vehicles_are_their_own_list(reg: Registry, tmp_path: Path) -> None:
    transport = tmp_path / "t.csv"
    transport.write_text("车牌号码,燃料类型,排放阶段\n冀A12345,柴油,国六\n冀A22222,柴油,国五\n")
    plant = tmp_path / "p.csv"
    plant.write_text("车牌号码,燃料类型,排放阶段,车辆类型\n冀A0C001,柴油,国五,厂内转运车\n")
    assert import_csv(reg, transport, "vehicles", "replace").applied == 2
    assert import_csv(reg, plant, "plant_vehicles", "replace").applied == 1
    assert reg.get_vehicle("冀A0C001").category == "in_plant"
    assert reg.count_vehicles("in_plant") == 1 and reg.count_vehicles("transport") == 2
    # replacing the transport list leaves the in-plant vehicles alone, and the other way round
    transport.write_text("车牌号码,燃料类型\n冀A12345,柴油\n")
    assert import_csv(reg, transport, "vehicles", "replace").applied == 1
    assert [v.plate for v in reg.list_vehicles()] == ["冀A0C001", "冀A12345"]
    plant.write_text("plate\n冀A12345\n冀A0C001\n")
    assert import_csv(reg, plant, "plant_vehicles", "delete").applied == 1, "scoped delete"
    assert [v.plate for v in reg.list_vehicles()] == ["冀A12345"]


def test_machinery_csv_with_national_fields(reg: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "nrmm"
    plate = picture(folder / "mp-1.jpg", 7)
    csv = folder / "machinery.csv"
    csv.write_text(
        "登记编码,机械环保代码,机械种类,排放阶段,生产日期,燃料类型,所属单位,号牌号码,电子标签,"
        "发动机铭牌\n"
        "HB130001,13010212345678901234,装载机,国三,2018-06-01,柴油,焦化厂,,E3001,mp-1.jpg\n"
        "HB130002,,叉车,无,2009/01/01,柴油,焦化厂,冀A9999X,,\n"
        "HB130003,,叉车,,,纯电动,焦化厂,,,\n",
        encoding="utf-8",
    )
    report = import_csv(reg, csv, "nrmm", "upsert")
    assert report.ok, report.errors
    a, b, c = reg.list_machines()
    assert (a.env_code, a.emission_stage, a.made_on, a.rfid_tags) == (
        "13010212345678901234",
        "国3",
        "2018-06-01",
        ("E3001",),
    )
    assert a.document("nameplate") == hashlib.sha256(plate.read_bytes()).hexdigest()
    assert (b.emission_stage, b.plate, b.national_stage) == ("x", "冀A9999X", "x")
    assert (c.fuel, c.emission_stage, c.national_stage) == ("electric", None, "d")
    snap = reg.snapshot()
    assert snap.machine("hb130002") == b and snap.machine("冀A9999X") == b
    assert snap.machine_by_tag("e3001") == a and snap.machine("冀Z00000") is None
    bad = folder / "bad.csv"
    bad.write_text(f"登记编码,排放阶段,机械环保代码\nHB1,国五,{'9' * 65}\n")
    assert [(e.field) for e in import_csv(reg, bad, "nrmm", "upsert").errors] == [
        "emission_stage",
        "env_code",
    ]
