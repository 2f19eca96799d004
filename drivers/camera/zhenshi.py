"""``type = "zhenshi"``: Zhenshi/Qianyi (臻识) plate cameras pushing ``AlarmInfoPlate`` JSON.

The camera POSTs each read as JSON (``{"AlarmInfoPlate": {..., "result":
{"PlateResult": {...}}}}``) with the plate (``license``), its colour
(``colorType``), confidence (1..100), the camera's time (``timeStamp.
Timeval.sec``), its record id (``plateid``), whether it is a read kept
while the server was unreachable (``isoffline``), and, where enabled in
its web page, the scene and plate images as base64 (``imageFile``,
``imageFragmentFile``). Heartbeats are ``multipart/form-data`` forms
(device_name, ipaddr, serialno …).

The reply is the vendor's contract: ``Response_AlarmInfoPlate`` echoing
``plateid`` for a live read; for an offline read ``ContinuePushOffline``
with ``continue: 1``, without which the camera stops sending the rest of
its stored reads (it keeps up to some thousands). ``info`` is ``"no"``:
``"ok"`` would make the camera pulse its own relay, and at this gate only
the box opens the barrier. A reply can carry ``serialData`` (base64) that
the camera writes to its RS-485 port, which is how a display behind the
camera is reached.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from drivers.camera.push import Push, PushCameraConfig, PushError, Reply, epoch
from drivers.config import doc, driver

NAME = "zhenshi"
#: colorType of the vendor's SDK (VZ_LPRC colour table).
COLOURS = {1: "blue", 2: "yellow", 3: "white", 4: "black", 5: "green"}
NO_PLATE = ("", "_无_", "无", "无车牌")


@dataclass(frozen=True)
class ZhenshiConfig(PushCameraConfig):
    type: str = field(
        default="zhenshi", metadata=doc("Frame source; the keys below depend on it", was="source")
    )
    serial_channel: int = field(
        default=0,
        metadata=doc(
            "The camera's serial channel a display behind it is on (0 = RS-485 1): bytes for"
            " it ride on the replies to the camera's pushes and heartbeats",
            min=0,
            max=1,
        ),
    )


def _b64(value: Any) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=False) or None
    except (binascii.Error, ValueError):
        raise PushError("imageFile: not base64") from None


def _dig(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...``, or None where any step is not an object."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _plausible_epoch(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 4102444800


class Zhenshi:
    """The Zhenshi push protocol: parse ``AlarmInfoPlate`` and heartbeats, answer per contract."""

    name = NAME

    def __init__(self, serial_channel: int = 0) -> None:
        self.serial_channel = serial_channel

    def parse(self, body: bytes, content_type: str) -> Push:
        if "multipart/form-data" in content_type.lower():
            return self._heartbeat(body, content_type)
        try:
            doc_ = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PushError(f"not JSON: {exc}") from None
        if not isinstance(doc_, dict):
            raise PushError("expected a JSON object")
        alarm = doc_.get("AlarmInfoPlate")
        if not isinstance(alarm, dict):
            return Push(NAME, "other")  # AlarmGioIn, SerialData, TriggerImage: not a read
        result = _dig(alarm, "result", "PlateResult")
        if not isinstance(result, dict):
            raise PushError("AlarmInfoPlate: no result.PlateResult")
        plate = result.get("license")
        plate = None if not isinstance(plate, str) or plate.strip() in NO_PLATE else plate.strip()
        conf = _int(result.get("confidence"))
        sec = _dig(result, "timeStamp", "Timeval", "sec")
        plateid = _int(result.get("plateid"))
        return Push(
            NAME,
            "plate",
            record_id=None if plateid is None else str(plateid),
            plate=plate,
            colour=COLOURS.get(_int(result.get("colorType")) or 0),
            confidence=None if conf is None else max(0.0, min(1.0, conf / 100)),
            shot_at=epoch(float(sec)) if _plausible_epoch(sec) else None,
            offline=_int(result.get("isoffline")) == 1,
            full_image=_b64(result.get("imageFile")),
            plate_image=_b64(result.get("imageFragmentFile")),
            device=str(alarm.get("serialno") or alarm.get("deviceName") or ""),
        )

    def _heartbeat(self, body: bytes, content_type: str) -> Push:
        head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
        msg = BytesParser(policy=HTTP).parsebytes(head + body)
        fields: dict[str, str] = {}
        if msg.is_multipart():
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                if isinstance(name, str):
                    fields[name] = payload.decode("utf-8", "replace").strip()
        if "serialno" not in fields and "device_name" not in fields:
            raise PushError("multipart form without device_name or serialno: not a heartbeat")
        return Push(NAME, "heartbeat", device=fields.get("serialno") or fields["device_name"])

    def reply(self, push: Push | None, stored: bool, serial: list[bytes] | None = None) -> Reply:
        if push is None:
            return Reply(400, b"not a Zhenshi push\n")
        if not stored:  # the camera keeps it and sends it again (offline resend)
            return Reply(503, b"not stored, send again\n")
        body: dict[str, Any] = {"info": "no"}
        if push.kind == "plate" and push.record_id is not None:
            if push.offline:
                plateid = _int(push.record_id)
                body["ContinuePushOffline"] = {"plateid": plateid, "continue": 1}
            else:
                body["plateid"] = _int(push.record_id)
        if serial:
            body["serialData"] = [
                {
                    "serialChannel": self.serial_channel,
                    "data": base64.b64encode(chunk).decode("ascii"),
                    "dataLen": len(chunk),
                }
                for chunk in serial
            ]
        text = json.dumps({"Response_AlarmInfoPlate": body}, ensure_ascii=False)
        return Reply(200, text.encode(), "application/json; charset=utf-8")


@driver("camera", "zhenshi", ZhenshiConfig, "Zhenshi/Qianyi plate camera pushing its reads")
def _build(cfg: ZhenshiConfig) -> Zhenshi:
    return Zhenshi(cfg.serial_channel)
