"""Log lines: logfmt a technician can read in journalctl, levels per component,
and the syslog priority journald stores, so ``journalctl -p warning`` works."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from edged import logs
from edged.config.load import ConfigError, parse

REPO = Path(__file__).resolve().parents[2]
PRIORITY_LINE = re.compile(r"<([0-7])>(.*)")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    hooks = (sys.excepthook, threading.excepthook, warnings.showwarning)
    yield
    sys.excepthook, threading.excepthook, warnings.showwarning = hooks
    logs.configure("info", timestamps=False, journal=False)


def journal_entries(text: str) -> list[tuple[int, str]]:
    """Split lines as journald does with SyslogLevelPrefix=yes: (priority, message)."""
    entries = []
    for line in text.splitlines():
        m = PRIORITY_LINE.fullmatch(line)
        assert m, f"line without a syslog priority prefix: {line!r}"
        entries.append((int(m.group(1)), m.group(2)))
    return entries


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


def test_json_format() -> None:
    out = io.StringIO()
    logs.configure("debug", fmt="json", timestamps=False, stream=out)
    logs.get_logger("mqtt").debug("sent", n=3)
    assert json.loads(out.getvalue()) == {
        "level": "debug",
        "component": "mqtt",
        "event": "sent",
        "n": 3,
    }


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_none_values_are_left_out(fmt: str) -> None:
    out = io.StringIO()
    logs.configure("info", fmt=fmt, timestamps=False, stream=out)
    logs.get_logger("gate").info("passage", plate="冀B12345", flags=None, ok=True, note="")
    line = out.getvalue().strip()
    assert "flags" not in line and "None" not in line and "null" not in line
    if fmt == "logfmt":
        assert line == "level=info component=gate event=passage plate=冀B12345 ok=true note="


def test_a_value_with_a_newline_stays_on_one_line() -> None:
    out = io.StringIO()
    logs.configure("info", timestamps=False, stream=out)
    logs.get_logger("rfid").warning("bad_frame", text='a "b"\nc')
    assert out.getvalue() == 'level=warning component=rfid event=bad_frame text="a \\"b\\"\\nc"\n'


@pytest.mark.parametrize(
    ("zone", "offset"), [("Asia/Shanghai", "+08:00"), ("UTC", "+00:00"), ("Asia/Kolkata", "+05:30")]
)
def test_time_stamps_carry_the_offset_of_the_site_time_zone(zone: str, offset: str) -> None:
    out = io.StringIO()
    logs.configure("info", timestamps=True, stream=out, timezone=zone, journal=False)
    logs.get_logger("gate").info("tick")
    stamp = re.fullmatch(r"timestamp=(\S+) level=info component=gate event=tick\n", out.getvalue())
    assert stamp, out.getvalue()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}" + re.escape(offset), stamp[1])


def test_journal_lines_carry_the_priority_journalctl_filters_on() -> None:
    """What ``journalctl -p warning`` would show is exactly the warnings and worse."""
    out = io.StringIO()
    logs.configure("debug", stream=out, journal=True)
    log = logs.get_logger("gate")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    log.critical("c")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("x")
    logging.getLogger("pymodbus.client").warning("Connection to %s failed", "meter1")
    logging.getLogger("pymodbus.client").info("not shown: libraries say warnings and worse")
    warnings.warn("Falling back from lgpio: no module", RuntimeWarning, stacklevel=1)

    entries = journal_entries(out.getvalue())
    got = [(prio, re.search(r"event=(\"[^\"]*\"|\S+)", msg)[1]) for prio, msg in entries]
    assert got == [
        (7, "d"),
        (6, "i"),
        (4, "w"),
        (3, "e"),
        (2, "c"),
        (3, "x"),
        (4, '"Connection to meter1 failed"'),
        (4, "python_warning"),
    ]
    # No time stamps by default: the journal stamps each entry itself.
    assert not any("timestamp=" in msg for _, msg in entries)
    # The traceback is in the one line, not spread over lines stored at "info".
    assert "ValueError: boom" in entries[5][1]
    shown = [msg for prio, msg in entries if prio <= logs.PRIORITY["warning"]]
    assert len(shown) == 6 and not any("level=info" in m or "level=debug" in m for m in shown)
    assert (
        'component=python event=python_warning category=RuntimeWarning message="Falling'
        in (entries[7][1])
    )


def test_json_lines_carry_the_priority_too() -> None:
    out = io.StringIO()
    logs.configure("info", fmt="json", stream=out, journal=True)
    logs.get_logger("mqtt").error("broker_refused", rc=5)
    [(prio, msg)] = journal_entries(out.getvalue())
    assert prio == 3 and json.loads(msg)["event"] == "broker_refused"


def test_an_uncaught_thread_exception_is_one_critical_line() -> None:
    out = io.StringIO()
    logs.configure("info", stream=out, journal=True)

    def fail() -> None:
        raise RuntimeError("pin thread died")

    t = threading.Thread(target=fail, name="gpio-callbacks")
    t.start()
    t.join()
    [(prio, msg)] = journal_entries(out.getvalue())
    assert prio == 2
    assert "event=uncaught_exception" in msg and "thread=gpio-callbacks" in msg
    assert "RuntimeError: pin thread died" in msg


def _run_with_stderr(tmp_path: Path, code: str, journal: str) -> str:
    """Run Python with stderr on a file; JOURNAL_STREAM names that file, another, or none."""
    err = tmp_path / "stderr"
    other = tmp_path / "other"
    other.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    env["PYTHONPATH"] = str(REPO)
    with err.open("w") as fh:
        if journal != "none":
            st = os.fstat(fh.fileno()) if journal == "this" else other.stat()
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        subprocess.run(
            [sys.executable, "-c", code], stderr=fh, env=env, cwd=tmp_path, timeout=60, check=False
        )
    return err.read_text()


def test_journal_is_detected_from_journal_stream(tmp_path: Path) -> None:
    code = (
        "from edged import logs; logs.configure('info', timezone='Asia/Shanghai');"
        " logs.get_logger('gate').warning('loop_stuck', seconds=61)"
    )
    # stderr is the stream systemd named: priority prefix, no time stamp.
    assert _run_with_stderr(tmp_path, code, "this") == (
        "<4>level=warning component=gate event=loop_stuck seconds=61\n"
    )
    # A child whose stderr was redirected inherits the variable: not the journal.
    for case in ("other", "none"):
        line = _run_with_stderr(tmp_path, code, case)
        assert re.fullmatch(
            r"timestamp=\S+\+08:00 level=warning component=gate event=loop_stuck seconds=61\n",
            line,
        ), (case, line)


def test_a_broken_config_is_an_error_in_the_journal(tmp_path: Path) -> None:
    """ExecStartPre's ``edged config check``: why the start failed shows under -p err."""
    bad = tmp_path / "edged.toml"
    bad.write_text('[lane]\ndirection = "sideways"\n[camera]\ntype = "none"\n')
    code = f"import sys; from edged.cli.main import main; sys.exit(main(['config', 'check', {str(bad)!r}]))"
    entries = journal_entries(_run_with_stderr(tmp_path, code, "this"))
    assert len(entries) >= 2 and {prio for prio, _ in entries} == {3}
    assert "lane.direction" in entries[0][1] and entries[-1][1].startswith("FAIL: 1 problem")


@pytest.mark.parametrize(
    ("value", "expected"), [('"auto"', "auto"), ("true", True), ("false", False)]
)
def test_timestamps_setting(value: str, expected: object) -> None:
    cfg = parse(f"[logging]\ntimestamps = {value}\n", "edged.toml")
    assert cfg.logging.timestamps == expected


def test_timestamps_default_is_auto_and_a_wrong_value_names_the_key() -> None:
    assert parse("", "edged.toml").logging.timestamps == "auto"
    with pytest.raises(ConfigError) as err:
        parse('[logging]\ntimestamps = "yes"\n', "edged.toml")
    assert "edged.toml:2: logging.timestamps" in str(err.value)


def test_every_command_logs_to_stderr_with_priorities(tmp_path: Path) -> None:
    """A command run by systemd without loading the config (the USB export unit's
    ``edged export``) still writes its log lines with priorities, and never on stdout."""
    image = tmp_path / "x.jpg"
    image.write_bytes(b"")
    code = (
        "import sys; from edged.cli.main import main;"
        f" sys.exit(main(['lpr', 'read', '--json', {str(image)!r}]))"
    )
    err = _run_with_stderr(tmp_path, code, "this")  # tmp_path has no models/onnx
    logged = [line for line in err.splitlines() if "event=" in line]
    assert logged, err
    [(prio, msg)] = journal_entries(logged[0])
    assert prio == 3 and msg.startswith("level=error component=lpr event=lpr_model_problem"), err
