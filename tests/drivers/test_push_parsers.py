"""The camera push parsers and the LED frame parser take anything: a decode or a clear refusal."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.camera.hikvision import Hikvision
from drivers.camera.push import PushError
from drivers.camera.zhenshi import Zhenshi
from drivers.display.ledproto import FrameParser, text_frame
from tests.push import shapes

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
KEYS = ["AlarmInfoPlate", "result", "PlateResult", "license", "plateid", "imageFile", "timeStamp"]


def _refused_or_decoded(vendor: object, body: bytes, ctype: str) -> None:
    try:
        push = vendor.parse(body, ctype)  # type: ignore[attr-defined]
    except PushError:
        return
    assert push.kind in ("plate", "heartbeat", "other")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_zhenshi_takes_any_bytes(body: bytes) -> None:
    _refused_or_decoded(Zhenshi(), body, "application/json")
    _refused_or_decoded(Zhenshi(), body, f"multipart/form-data; boundary={shapes.BOUNDARY}")


@settings(max_examples=300, deadline=None)
@given(JSONISH, st.sampled_from(KEYS))
def test_zhenshi_takes_any_json_shape(value: object, key: str) -> None:
    body = json.loads(shapes.zhenshi_plate("冀B12345", 1, 1_700_000_000))
    body["AlarmInfoPlate"]["result"]["PlateResult"][key] = value
    _refused_or_decoded(Zhenshi(), json.dumps(body).encode(), "application/json")
    _refused_or_decoded(Zhenshi(), json.dumps({key: value}).encode(), "application/json")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 400))
def test_hikvision_takes_any_bytes_and_any_cut(noise: bytes, cut: int) -> None:
    body, ctype = shapes.hik_multipart(shapes.hik_alert("冀B12345", "2026-01-05T08:00:00+08:00"),
                                       b"\xff\xd8jpeg", None)  # fmt: skip
    _refused_or_decoded(Hikvision(), body[:cut] + noise, ctype)
    _refused_or_decoded(Hikvision(), noise, "application/xml")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_led_frames_are_found_in_any_noise(noise: bytes) -> None:
    good = text_frame(0, 1, "禁止通行")
    parser = FrameParser()
    frames = parser.feed(noise + good)
    assert frames and frames[-1].cmd == 0x62
    assert len(parser._buf) <= FrameParser.MAX_FRAME
