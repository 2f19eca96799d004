"""Log lines: logfmt a technician can read in journalctl, levels per component."""

from __future__ import annotations

import io

from edged import logs


def test_logfmt_line_and_component_levels() -> None:
    out = io.StringIO()
    logs.configure("info", {"rfid": "warning"}, "logfmt", timestamps=False, stream=out)
    logs.get_logger("gate").info("barrier_open", plate="冀B12345", reason="emission stage ok")
    logs.get_logger("rfid").info("tag_read", epc="E200")  # below rfid's level
    logs.get_logger("rfid").warning("checksum_bad", frame="A0 04")
    lines = out.getvalue().splitlines()
    assert lines == [
        'level=info component=gate event=barrier_open plate=冀B12345 reason="emission stage ok"',
        'level=warning component=rfid event=checksum_bad frame="A0 04"',
    ]
    logs.configure("info", timestamps=False)


def test_json_format() -> None:
    out = io.StringIO()
    logs.configure("debug", fmt="json", timestamps=False, stream=out)
    logs.get_logger("mqtt").debug("sent", n=3)
    assert '"component": "mqtt"' in out.getvalue() and '"n": 3' in out.getvalue()
    logs.configure("info", timestamps=False)
