from __future__ import annotations

import threading
import time

from drivers.serialport import SerialLine
from tests.ptys import PtyCable, wait_for


class Sink:
    def __init__(self, delay: float = 0.0) -> None:
        self.data = bytearray()
        self.lock = threading.Lock()
        self.delay = delay

    def __call__(self, chunk: bytes) -> None:
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.data += chunk


def test_reads_bytes_and_writes_back(cable: PtyCable) -> None:
    sink = Sink()
    with SerialLine(cable.port, 9600, sink, backoff_initial=0.05) as line:
        assert wait_for(lambda: line.connected)
        cable.write(b"hello")
        assert wait_for(lambda: bytes(sink.data) == b"hello")
        assert line.write(b"cmd")
        assert cable.read() == b"cmd"
        assert line.stats()["bytes_in"] == 5


def test_missing_port_retries_then_connects(tmp_path) -> None:
    link = tmp_path / "ttyLATE"
    sink = Sink()
    line = SerialLine(str(link), 9600, sink, backoff_initial=0.02, backoff_max=0.1).start()
    try:
        assert wait_for(lambda: line.stats()["open_failures"] >= 2)
        assert not line.connected
        assert not line.write(b"x")  # no port: refused and counted, not raised
        cable = PtyCable(link)
        try:
            assert wait_for(lambda: line.connected)
            cable.write(b"ok")
            assert wait_for(lambda: bytes(sink.data) == b"ok")
        finally:
            cable.close()
    finally:
        assert line.close(timeout=2)


def test_cable_pulled_and_put_back(cable: PtyCable) -> None:
    sink = Sink()
    connects = []
    line = SerialLine(
        cable.port,
        9600,
        sink,
        on_connect=lambda _l: connects.append(1),
        backoff_initial=0.02,
        backoff_max=0.2,
    ).start()
    try:
        assert wait_for(lambda: line.connected)
        cable.write(b"before")
        assert wait_for(lambda: b"before" in sink.data)
        cable.unplug()
        assert wait_for(lambda: line.stats()["read_errors"] >= 1)
        assert wait_for(lambda: not line.connected)
        time.sleep(0.2)  # a few failed reopen attempts while unplugged
        cable.plug()
        assert wait_for(lambda: line.stats()["reconnects"] >= 1)
        cable.write(b"after")
        assert wait_for(lambda: b"after" in sink.data)
        assert len(connects) >= 2
    finally:
        assert line.close(timeout=2)


def test_flooding_device_is_bounded_and_counted(cable: PtyCable) -> None:
    sink = Sink(delay=0.02)  # slow parser
    line = SerialLine(cable.port, 115200, sink, max_pending=1024, read_size=256).start()
    try:
        assert wait_for(lambda: line.connected)
        for _ in range(200):
            cable.write(b"\x55" * 256)
        assert wait_for(lambda: line.stats()["overflow_bytes"] > 0)
        # memory stays bounded: what is queued never exceeds the limit (+1 chunk)
        assert line._pending_bytes <= 1024 + 256
    finally:
        assert line.close(timeout=2)


def test_parser_exception_does_not_kill_reader(cable: PtyCable) -> None:
    got = []

    def bad(chunk: bytes) -> None:
        if b"boom" in chunk:
            raise RuntimeError("parser bug")
        got.append(chunk)

    with SerialLine(cable.port, 9600, bad) as line:
        assert wait_for(lambda: line.connected)
        cable.write(b"boom")
        assert wait_for(lambda: line.stats()["callback_errors"] == 1)
        cable.write(b"fine")
        assert wait_for(lambda: b"fine" in b"".join(got))


def test_idle_device_gets_reopened(cable: PtyCable) -> None:
    line = SerialLine(cable.port, 9600, Sink(), idle_reopen_s=0.1, backoff_initial=0.01).start()
    try:
        assert wait_for(lambda: line.stats()["idle_reopens"] >= 1)
        assert wait_for(lambda: line.stats()["reconnects"] >= 1)
    finally:
        assert line.close(timeout=2)


def test_loop_url_works() -> None:
    sink = Sink()
    with SerialLine("loop://", 9600, sink) as line:
        assert wait_for(lambda: line.connected)
        line.write(b"echo")
        assert wait_for(lambda: bytes(sink.data) == b"echo")
