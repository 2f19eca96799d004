"""Chinese names of the ledger's values, as an inspector reads them. Pure.

Rows store codes (``in``, ``diesel``, ``stage_ok``); everything a person
reads — reports, the national tables, exports — says 进厂, 柴油, 放行. A code
this module does not know is shown as it is rather than dropped, so a new
reason is visible before it has a name.
"""

from __future__ import annotations

from typing import Any

DIRECTION = {"in": "进厂", "out": "出厂", "unknown": "方向未知"}
DECISION = {"allow": "放行", "deny": "拒绝", "hold": "待人工"}
FUEL = {
    "diesel": "柴油",
    "petrol": "汽油",
    "gas": "天然气",
    "electric": "纯电动",
    "hybrid": "混合动力",
    "hydrogen": "氢燃料",
}
COLOUR = {
    "blue": "蓝色",
    "yellow": "黄色",
    "green": "绿色",
    "yellow_green": "黄绿色",
    "white": "白色",
    "black": "黑色",
    "other": "其他",
}
CATEGORY = {"transport": "运输车辆", "in_plant": "厂内运输车辆", "machinery": "非道路移动机械"}
ALERT = {
    "none": "无预警",
    "blue": "蓝色预警",
    "yellow": "黄色预警",
    "orange": "橙色预警",
    "red": "红色预警",
}
ALERT_ORDER = ("none", "blue", "yellow", "orange", "red")
ID_SOURCE = {
    "plate": "车牌",
    "rfid": "电子标签",
    "manual": "人工",
    "plate+rfid": "车牌+电子标签",
    "simulated": "模拟",
    "none": "未识别",
}
IDENTIFIED_BY = {
    "exact": "车牌识别",
    "registry": "车牌+台账比对",
    "rfid": "电子标签",
    "rfid_tag": "电子标签",
}
#: Reasons by code: a row's own ``reason_zh`` may carry details (the stage, the hours);
#: counts group by code and show these names.
REASON = {
    "stage_ok": "排放阶段达标",
    "no_restriction": "无限制",
    "new_energy": "新能源车辆",
    "exit_open": "出厂放行",
    "special_approval": "特批放行",
    "manual_open": "人工开闸",
    "remote_open": "远程开闸",
    "stage_below_minimum": "排放阶段不达标",
    "stage_missing": "排放阶段未登记",
    "blacklisted": "黑名单车辆",
    "unknown_vehicle": "未登记车辆",
    "registration_expired": "登记信息已过期",
    "hazardous_outside_window": "危险品车辆非通行时段",
    "unread": "未识别车牌",
    "offline_read": "相机离线识别补录",
    "unjoined_read": "相机识别但无车辆经过地感",
}
FLAG = {
    "offline_read": "相机离线识别补录",
    "unjoined_read": "相机识别但无车辆经过地感",
    "would_allow": "按规则应放行",
    "would_deny": "按规则应拒绝",
    "would_hold": "按规则应人工核查",
    "camera_clock_off": "相机时钟偏差",
    "direction_unknown": "方向未知",
    "tag_plate_mismatch": "电子标签与车牌不符",
    "identified_by_tag": "凭电子标签识别",
    "identified_by_registry": "台账比对识别",
    "identified_by_rfid": "凭电子标签识别",
    "identified_by_rfid_tag": "凭电子标签识别",
    "weight_unsettled": "称重未稳定",
    "blacklisted": "黑名单",
    "unknown_vehicle": "未登记车辆",
    "unread": "未识别车牌",
    "hazardous": "危险货物运输",
    "registration_expired": "登记过期",
    "stage_missing": "排放阶段未登记",
}
DOCUMENT = {"env_list": "随车清单", "licence": "行驶证", "nameplate": "发动机铭牌"}
_NUMERAL = "零一二三四五六"
STAGE_CLASS_ORDER = ("0", "1", "2", "3", "4", "5", "6", "d", "x", "")
#: Reasons a row gives for an empty national field (``missing``), in Chinese.
MISSING = {
    "plate not read and no known tag": "未识别车牌且无已知电子标签",
    "known when the vehicle leaves": "出厂时计算",
    "not a trip": "非进出厂往返",
    "vehicle not in the registry": "车辆未在台账登记",
    "no document photos in the registry entry": "台账未上传证件照片",
    "no cargo declared or registered for this vehicle": "未申报货物",
    "not in the registry entry": "台账未登记",
    "no camera on this lane": "本车道无相机",
    "no frame with a plate": "无车牌抓拍",
    "no entry of this vehicle on record": "无进厂记录",
    "the camera pushed no image": "相机未推送图片",
    "a machine without a plate: see its registry code": "机械无车牌（见环保登记编码）",
    "no weighbridge on this lane": "本车道无地磅",
    "weighbridge empty: the vehicle was not on it": "车辆未上地磅",
    "weighbridge not running (see its component state)": "地磅未运行",
    "weighbridge silent: indicator off or cable": "地磅无数据（仪表或线缆）",
    "opened by hand": "人工开闸",
    "opened by hand: not weighed": "人工开闸，未称重",
    "read while the camera could not reach the box: not weighed": "相机离线期间识别，未称重",
    "no vehicle came over the loop: not weighed": "无车辆经过地感，未称重",
}


def name(table: dict[str, str], code: Any) -> str:
    """The Chinese name of ``code`` in ``table``; an unknown code as it is, None as ''."""
    if code is None:
        return ""
    return table.get(str(code), str(code))


def flags(values: Any) -> str:
    return "，".join(name(FLAG, f) for f in values or ())


def stage(text: str | None) -> str:
    """``国5`` → ``国五``, ``国6b`` → ``国六b``; other spellings pass through."""
    if not text:
        return ""
    if text.startswith("国") and len(text) >= 2 and text[1].isdigit() and int(text[1]) <= 6:
        return "国" + _NUMERAL[int(text[1])] + text[2:]
    return text


def stage_code(code: str | None, emission_stage: str | None, fuel: str | None) -> str:
    """The national stage code of a row: its own, else derived ('' when unknown)."""
    if code:
        return code
    if fuel in ("electric", "hydrogen"):
        return "d"
    for ch in emission_stage or "":
        if ch.isdigit():
            return ch
    for i, ch in enumerate(_NUMERAL):
        if (emission_stage or "").startswith("国" + ch):
            return str(i)
    return ""


def stage_class(code: str) -> str:
    """The class a share counts under: 国零…国六, 新能源 (d), 无排放阶段 (x), 未知."""
    if code == "d":
        return "新能源"
    if code == "x":
        return "无排放阶段"
    if code.isdigit():
        return "国" + _NUMERAL[int(code)]
    return "未知"


def missing(reasons: dict[str, str] | None, field_names: dict[str, str]) -> str:
    """``missing`` of a row as one Chinese note: 发动机号码：台账未登记；… (a reason without
    a Chinese name, such as one that carries a figure, is shown as the row has it)."""
    out = []
    for key, why in (reasons or {}).items():
        zh = MISSING.get(why)
        if zh is None and why.startswith("weight did not settle"):
            zh = "称重未稳定"
        out.append(f"{field_names.get(key, key)}：{zh or why}")
    return "；".join(out)
