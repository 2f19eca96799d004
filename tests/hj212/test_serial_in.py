"""Serial analysers sending HJ 212: real pty pair and pyserial loop://."""

from __future__ import annotations

import os
import threading
import time

import serial

from edged.hj212.serial_in import Sample, SerialPacketReader
from tests.conftest import shared_data


def test_pty_stream_with_noise_bad_crc_and_split_reads() -> None:
    folder = shared_data("hj212")
    valid = (folder / "valid.txt").read_bytes().splitlines(keepends=True)
    bad = (folder / "bad-crc-as-logged.txt").read_bytes().splitlines(keepends=True)
    master, slave = os.openpty()
    got: list[Sample] = []
    reader = SerialPacketReader(os.ttyname(slave), got.append, baudrate=9600)
    thread = threading.Thread(target=reader.run, daemon=True)
    thread.start()
    try:
        stream = b"\x00\xffnoise" + valid[0] + bad[0] + b"##12" + valid[1] + valid[2]
        for i in range(0, len(stream), 97):  # arrives in odd-sized pieces
            os.write(master, stream[i : i + 97])
        deadline = time.monotonic() + 5
        while reader.stats.packets < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        reader.close()
        thread.join(2)
        assert not thread.is_alive()
        os.close(master)
        os.close(slave)
    assert reader.stats.packets == 3
    assert reader.stats.refused == 1  # the bad CRC
    assert reader.stats.garbage_bytes == 7 + 4  # leading noise + the truncated '##12' fragment
    assert len(got) == 5 + 5 + 31
    first = got[0]
    assert (first.mn, first.cn, first.code, first.flag) == ("41050022000017", "2011", "a34010", "N")
    assert first.values == {"Rtd": 2.017}
    assert got[5].values == {"Avg": 2.697}


def test_loop_url_and_callback_errors_do_not_stop_reading() -> None:
    valid = (shared_data("hj212") / "valid.txt").read_bytes().splitlines(keepends=True)
    port = serial.serial_for_url("loop://", timeout=0.1)
    calls: list[str] = []

    def flaky(sample: Sample) -> None:
        calls.append(sample.code)
        if len(calls) == 1:
            raise RuntimeError("consumer bug")

    reader = SerialPacketReader("loop://", flaky, port=port)
    port.write(valid[0] + valid[1])
    reader._stop.set()  # one pass of reads by hand, no thread
    while port.in_waiting:
        reader.feed(port.read(port.in_waiting))
    assert reader.stats.packets == 2 and len(calls) == 10
