"""``type = "hikvision"``: Hikvision ANPR cameras pushing ISAPI ``EventNotificationAlert``.

In "alarm server" (报警主机/监听) mode the camera POSTs each read as
``multipart/form-data``: an XML part (``anpr.xml``, an
``EventNotificationAlert`` with ``eventType`` ANPR, the plate under
``ANPR/licensePlate``, ``confidenceLevel``, ``plateColor``, ``dateTime``
with its offset, and on newer firmware a ``UUID``) and JPEG parts
(``detectionPicture.jpg`` the scene, ``licensePlatePicture.jpg`` the
plate). Its heartbeat is an ``EventNotificationAlert`` with ``eventType``
videoloss and ``eventState`` inactive.

The camera never posts a read again and ignores ``Retry-After``: any
answer but 200 loses the read. So the receiver answers 200 as soon as the
push is on disk, and refuses (which loses it) only what it could not store.
With its data retransmission (断网续传) on, a camera that could not reach the
box keeps its reads and posts them once it can, marked
``isDataRetransmission`` true: those are history, not a truck at the
barrier now (``Push.offline``), as a Zhenshi camera's offline reads.
XML with a DOCTYPE or entities is refused before parsing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesParser
from email.policy import HTTP
from xml.etree import ElementTree as ET

from drivers.camera.push import Push, PushCameraConfig, PushError, Reply
from drivers.config import doc, driver

NAME = "hikvision"
NO_PLATE = ("", "无车牌", "车牌", "unknown", "Unknown")
FULL = ("detectionPicture.jpg", "vehiclePicture.jpg", "backgroundImage.jpg")
CROP = ("licensePlatePicture.jpg", "plateImage.jpg")


@dataclass(frozen=True)
class HikvisionConfig(PushCameraConfig):
    type: str = field(
        default="hikvision",
        metadata=doc("Frame source; the keys below depend on it", was="source"),
    )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(root: ET.Element, *path: str) -> str | None:
    """Text at ``path`` below ``root``, whatever XML namespace the firmware uses."""
    node: ET.Element | None = root
    for name in path:
        node = next((c for c in node if _local(c.tag) == name), None) if node is not None else None
    return None if node is None or node.text is None else node.text.strip()


def parse_alert(xml: bytes) -> ET.Element:
    """The ``EventNotificationAlert`` element; PushError for anything else or unsafe XML."""
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        raise PushError("XML with a DOCTYPE or entities is refused")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise PushError(f"XML: {exc}") from None
    if _local(root.tag) != "EventNotificationAlert":
        raise PushError(f"expected EventNotificationAlert, found {_local(root.tag)}")
    return root


class Hikvision:
    name = NAME

    def parse(self, body: bytes, content_type: str) -> Push:
        xml, images = self._parts(body, content_type)
        root = parse_alert(xml)
        event = (_find(root, "eventType") or "").lower()
        device = _find(root, "deviceID") or _find(root, "macAddress") or ""
        if event == "videoloss" and (_find(root, "eventState") or "") == "inactive":
            return Push(NAME, "heartbeat", device=device)
        if event != "anpr":
            return Push(NAME, "other", device=device)
        plate = _find(root, "ANPR", "licensePlate")
        plate = None if plate is None or plate in NO_PLATE else plate
        conf = _find(root, "ANPR", "confidenceLevel")
        when = _find(root, "dateTime")
        try:
            shot_at = datetime.fromisoformat(when) if when else None
        except ValueError:
            shot_at = None
        colour = (_find(root, "ANPR", "plateColor") or "").lower() or None
        return Push(
            NAME,
            "plate",
            record_id=_find(root, "UUID"),
            plate=plate,
            colour=None if colour in (None, "unknown", "other") else colour,
            confidence=max(0.0, min(1.0, int(conf) / 100)) if conf and conf.isdigit() else None,
            shot_at=shot_at if shot_at is None or shot_at.utcoffset() is not None else None,
            offline=(_find(root, "isDataRetransmission") or "").lower() == "true",
            full_image=next((images[n] for n in FULL if n in images), None),
            plate_image=next((images[n] for n in CROP if n in images), None),
            device=device,
        )

    @staticmethod
    def _parts(body: bytes, content_type: str) -> tuple[bytes, dict[str, bytes]]:
        """The XML and the images by file name, from a multipart body or a bare XML one."""
        if "multipart/" not in content_type.lower():
            return body, {}
        head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
        msg = BytesParser(policy=HTTP).parsebytes(head + body)
        if not msg.is_multipart():
            raise PushError("multipart body without parts (check the boundary)")
        xml: bytes | None = None
        images: dict[str, bytes] = {}
        for part in msg.iter_parts():
            payload = part.get_payload(decode=True) or b""
            fname = part.get_filename() or part.get_param("name", header="content-disposition")
            ctype = part.get_content_type()
            if xml is None and (ctype.endswith("/xml") or str(fname or "").endswith(".xml")):
                xml = payload
            elif isinstance(fname, str) and payload[:2] == b"\xff\xd8":
                images[fname] = payload
        if xml is None:
            raise PushError("multipart body without an XML part")
        return xml, images

    def reply(self, push: Push | None, stored: bool, serial: list[bytes] | None = None) -> Reply:
        if push is None:
            return Reply(400, b"not an ISAPI event\n")
        if not stored:
            return Reply(503, b"not stored\n")
        return Reply(200, b"OK\n")


@driver("camera", "hikvision", HikvisionConfig, "Hikvision ANPR camera pushing ISAPI events")
def _build(cfg: HikvisionConfig) -> Hikvision:
    return Hikvision()
