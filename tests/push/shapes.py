"""Pushes in the shapes the cameras send, built field by field from the vendors' descriptions.

Zhenshi: ``AlarmInfoPlate`` JSON (images base64 inside) and its multipart
form heartbeat. Hikvision: ``multipart/form-data`` with an ``anpr.xml``
``EventNotificationAlert`` and JPEG parts, and its videoloss heartbeat.
"""

from __future__ import annotations

import uuid

import cv2
import numpy as np

from drivers.simulators import zhenshi_plate_body

BOUNDARY = "----------------------------caa771fe4a61f3d9"


def jpeg(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


#: one read as the camera posts it (the camera simulator's, byte for byte)
zhenshi_plate = zhenshi_plate_body


def form(fields: dict[str, str]) -> tuple[bytes, str]:
    out = b""
    for name, value in fields.items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode(), f"multipart/form-data; boundary={BOUNDARY}"


def zhenshi_heartbeat(ip: str = "127.0.0.1") -> tuple[bytes, str]:
    return form(
        {
            "device_name": "IVS",
            "ipaddr": ip,
            "port": "80",
            "user_name": "admin",
            "pass_wd": "admin",
            "serialno": "d85b1269-8f942256",
            "channel_num": "1",
        }
    )


def hik_alert(plate: str, when: str, *, event: str = "ANPR", state: str = "active",
              uid: str | None = None, retransmitted: bool = False) -> bytes:  # fmt: skip
    anpr = (
        f"<ANPR><country>3</country><licensePlate>{plate}</licensePlate><line>1</line>"
        "<direction>forward</direction><confidenceLevel>93</confidenceLevel>"
        "<plateType>unknown</plateType><plateColor>blue</plateColor>"
        "<vehicleType>truck</vehicleType><pictureInfoList><pictureInfo>"
        "<fileName>detectionPicture.jpg</fileName><type>detectionPicture</type></pictureInfo>"
        "<pictureInfo><fileName>licensePlatePicture.jpg</fileName>"
        "<type>licensePlatePicture</type></pictureInfo></pictureInfoList>"
        f"<originalLicensePlate>{plate}</originalLicensePlate></ANPR>"
        if event == "ANPR"
        else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">'
        "<ipAddress>127.0.0.1</ipAddress><protocol>HTTP</protocol>"
        "<macAddress>44:a6:42:f3:2a:d7</macAddress><channelID>1</channelID>"
        f"<dateTime>{when}</dateTime><activePostCount>1</activePostCount>"
        f"<isDataRetransmission>{'true' if retransmitted else 'false'}</isDataRetransmission>"
        f"<eventType>{event}</eventType><eventState>{state}</eventState>"
        f"<eventDescription>{event}</eventDescription><channelName>gate</channelName>"
        f"<deviceID>88</deviceID>{anpr}<UUID>{uid or uuid.uuid4()}</UUID><picNum>2</picNum>"
        "</EventNotificationAlert>"
    ).encode()


def hik_multipart(xml: bytes, full: bytes | None, crop: bytes | None) -> tuple[bytes, str]:
    parts = [("anpr.xml", "application/xml", xml)]
    if full:
        parts.append(("detectionPicture.jpg", "image/jpeg", full))
    if crop:
        parts.append(("licensePlatePicture.jpg", "image/jpeg", crop))
    out = b""
    for name, ctype, data in parts:
        out += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}";'
            f' filename="{name}"\r\nContent-Type: {ctype}\r\nContent-Length: {len(data)}\r\n\r\n'
        ).encode()
        out += data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode(), f"multipart/form-data; boundary={BOUNDARY}"
