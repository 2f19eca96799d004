"""HJ 212 analysers on a serial line feed the data store, garbage and all."""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edged.datalogger.instruments import InstrumentConfig, InstrumentInput, to_samples
from edged.datalogger.registers import ModbusConfig
from edged.datalogger.service import DataLogger
from edged.hj212.codec import Cp, Packet, encode
from edged.hj212.serial_in import Sample as PacketSample


def test_to_samples_takes_rtd_or_avg_and_marks_missing_values() -> None:
    now = datetime(2026, 11, 23, 10, 0)
    out = to_samples(
        [
            PacketSample("mn", "2011", None, "a34013", {"Rtd": 5.5}, "N"),
            PacketSample("mn", "2061", now, "a21026", {"Avg": 1.0}, "T"),
            PacketSample("mn", "2011", now, "a21002", {}, "N"),
        ],
        now,
    )
    assert [(s.key, s.value, s.flag, s.ts) for s in out] == [
        ("a34013", 5.5, "N", now),
        ("a21026", 1.0, "T", now),
        ("a21002", None, "D", now),
    ]


def test_to_samples_turns_the_analysers_site_time_into_board_time() -> None:
    site_time = datetime(2024, 5, 1, 23, 30)  # what the analyser writes in DataTime
    (sample,) = to_samples(
        [PacketSample("mn", "2011", site_time, "a34013", {"Rtd": 1.0}, "N")],
        datetime(2024, 5, 1),
        ZoneInfo("Asia/Shanghai"),
    )
    expected = site_time.replace(tzinfo=ZoneInfo("Asia/Shanghai")).astimezone()
    assert sample.ts == expected.replace(tzinfo=None)
    assert sample.ts.tzinfo is None


def test_analyser_packets_on_a_pty_reach_the_store(tmp_path: Path) -> None:
    master, slave = os.openpty()
    logger = DataLogger(ModbusConfig(), None, tmp_path)
    inst = InstrumentInput(InstrumentConfig("cems", os.ttyname(slave)), logger.store.add_samples)
    inst.start()
    try:
        deadline = time.monotonic() + 5
        while (
            inst._reader is None or not inst._reader._running.is_set()
        ) and time.monotonic() < deadline:
            time.sleep(0.02)
        when = datetime.now().replace(microsecond=0)
        pkt = Packet(
            cn="2011",
            mn="66330300010100001001",
            st="22",
            cp=Cp.build(
                {"DataTime": when.strftime("%Y%m%d%H%M%S")},
                {"a34013": {"Rtd": "12.5", "Flag": "N"}},
            ),
        )
        os.write(master, b"\x00garbage\r\n" + encode(pkt))
        deadline = time.monotonic() + 5
        while inst.samples == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert inst.samples == 1
        rows = logger.records("2011", when, when)
        assert rows and rows[0][1]["a34013"]["Rtd"] == 12.5
    finally:
        inst.stop()
        logger.store.close()
        os.close(master)
        os.close(slave)
