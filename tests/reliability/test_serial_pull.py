"""Serial cables pulled and put back, with the real drivers reading through a symlink.

The box opens its readers by a stable name (udev's /dev/serial/by-id/...); a
re-plugged USB adapter comes back as a new tty behind the same name. Here the
name is a symlink to a pty: pulling the cable closes the device side and
removes the link, putting it back makes a new pty and points the link at it.
Each driver must notice the loss, say so in the log, reopen by itself, and
deliver everything the device sends once the cable is back. What the device
sends is counted at the wire; what the driver hands on is counted at its
callback; the difference is the loss, and it must be 0.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import serial
from structlog.testing import capture_logs

from drivers.rfid import RfidConfig, TagRead, open_reader
from drivers.rfid.r2000 import InventoryTag, R2000Parser, decode
from drivers.rfid.simulator import R2000Simulator
from drivers.scale import ScaleConfig, ScaleReader, WeightReading, encode_xk3190
from edged.datalogger.aggregate import Sample
from edged.datalogger.instruments import InstrumentConfig, InstrumentInput
from edged.hj212.codec import Cp, Packet, encode
from tests.ptys import PtyCable, wait_for
from tests.reliability import summary

pytestmark = pytest.mark.reliability

PULLS = 5
FAST = {"backoff_initial": 0.02, "backoff_max": 0.2}
"""Reopen quickly: the default backoff (0.5 s doubling to 30 s) would make this slow."""


class CountingR2000Simulator(R2000Simulator):
    """The R2000 simulator, counting every tag frame that actually went onto the wire."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: collections.Counter[str] = collections.Counter()

    def _write(self, data: bytes) -> None:
        try:
            self._ser.write(data)
        except (serial.SerialException, OSError):
            return
        for frame in R2000Parser(self.variant, name="count").feed(data):
            msg = decode(frame, self.variant)
            if isinstance(msg, InventoryTag):
                self.sent[msg.epc] += 1


@pytest.fixture
def cable(tmp_path: Path) -> Iterator[PtyCable]:
    by_id = tmp_path / "serial" / "by-id"
    by_id.mkdir(parents=True)
    c = PtyCable(by_id / "usb-1a86_USB_Serial-if00-port0")
    yield c
    c.close()


def _events(logs: list[dict[str, Any]], name: str, line: str) -> int:
    return sum(
        1
        for e in logs
        if e.get("event") == name and line in (e.get("line"), e.get("name"), e.get("port"))
    )


def test_rfid_reader_cable_pulled_and_returned(cable: PtyCable) -> None:
    t0 = time.monotonic()
    received: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def on_read(read: TagRead) -> None:
        with lock:
            received[read.epc] += 1

    cfg = RfidConfig(enabled=True, protocol="r2000", port=cable.port, resend_s=0.2)
    reader = open_reader(cfg, on_read, line_kwargs=FAST)
    sent: collections.Counter[str] = collections.Counter()
    with capture_logs() as logs:
        reader.start()
        try:
            for cycle in range(PULLS + 1):
                epc = f"E20034120000000000{cycle:06d}"
                sim = CountingR2000Simulator(cable.master, {epc: -50}).start()
                try:
                    assert wait_for(lambda: reader.stats()["line_connected"], 10), "no reconnect"
                    assert wait_for(lambda epc=epc: received[epc] >= 3, 10), (
                        f"no tags after return {cycle}: {reader.stats()}"
                    )
                    sim.set_tags({})  # the truck leaves; then the device side goes quiet
                finally:
                    sim.close()
                # every frame that reached the wire must reach the callback
                assert wait_for(lambda epc=epc, sim=sim: received[epc] == sim.sent[epc], 15), (
                    epc,
                    sim.sent[epc],
                    received[epc],
                )
                sent.update(sim.sent)
                if cycle == PULLS:
                    break
                cable.unplug()
                assert wait_for(lambda: not reader.stats()["line_connected"], 15), "loss unnoticed"
                time.sleep(0.2)  # a few reopen attempts against the vanished name
                cable.plug()
            stats = reader.stats()
        finally:
            assert reader.close(3.0), "reader threads did not stop"
    lost = sum(sent.values()) - sum(received.values())
    summary.record(
        "serial pull: rfid r2000",
        faults=PULLS,
        delivered=sum(received.values()),
        lost=lost,
        seconds=time.monotonic() - t0,
        note=f"{stats['line_reconnects']} reconnects via by-id symlink",
    )
    assert lost == 0
    assert stats["line_reconnects"] >= PULLS and stats["line_read_errors"] >= PULLS
    # the technician sees each loss and each recovery in the journal
    assert _events(logs, "serial_read_failed", "rfid") >= PULLS
    assert _events(logs, "serial_opened", "rfid") >= PULLS + 1
    assert _events(logs, "serial_open_failed", "rfid") >= 1


def test_scale_indicator_cable_pulled_and_returned(cable: PtyCable) -> None:
    t0 = time.monotonic()
    got: list[float] = []
    cfg = ScaleConfig(enabled=True, port=cable.port, stale_seconds=5.0)
    reader = ScaleReader(cfg, on_weight=lambda r: got.append(r.kg), line_kwargs=FAST)
    sent: list[float] = []
    per_cycle = 20
    with capture_logs() as logs:
        reader.start()
        try:
            for cycle in range(PULLS + 1):
                assert wait_for(lambda: reader.line.connected, 10), "no reconnect"
                weights = [float(10000 + cycle * 1000 + i * 10) for i in range(per_cycle)]
                for kg in weights:  # the indicator streams while the cable is in
                    cable.write(encode_xk3190(kg))
                sent += weights
                assert wait_for(lambda n=len(sent): len(got) >= n, 15), (len(sent), len(got))
                latest: WeightReading | None = reader.latest
                assert latest is not None and latest.kg == weights[-1]
                if cycle == PULLS:
                    break
                cable.unplug()
                assert wait_for(lambda: not reader.line.connected, 15), "loss unnoticed"
                time.sleep(0.2)
                cable.plug()
            stats = reader.stats()
        finally:
            assert reader.close(3.0), "reader threads did not stop"
    lost = len(sent) - len(got)
    summary.record(
        "serial pull: scale xk3190",
        faults=PULLS,
        delivered=len(got),
        lost=lost,
        seconds=time.monotonic() - t0,
        note=f"{stats['line_reconnects']} reconnects via by-id symlink",
    )
    assert got == sent, "weights lost, duplicated or reordered across reconnects"
    assert stats["line_reconnects"] >= PULLS
    assert _events(logs, "serial_read_failed", "scale") >= PULLS
    assert _events(logs, "serial_opened", "scale") >= PULLS + 1


def test_hj212_analyser_cable_pulled_and_returned(cable: PtyCable) -> None:
    t0 = time.monotonic()
    rows: list[Sample] = []
    lock = threading.Lock()

    def sink(batch: list[Sample]) -> None:
        with lock:
            rows.extend(batch)

    pulls = 3
    inst = InstrumentInput(InstrumentConfig(name="cems", port=cable.port), sink, backoff_max=0.1)
    factors = {"a34013": {"Rtd": 12.5, "Flag": "N"}, "a21026": {"Rtd": 30.0, "Flag": "N"}}
    sent = 0
    with capture_logs() as logs:
        inst.start()
        try:
            for cycle in range(pulls + 1):
                # the reader thread reopens by itself; wait until it holds the new port
                # (its port is open, and pyserial's flush on open is behind us)
                assert wait_for(
                    lambda: inst._reader is not None and inst._reader._running.is_set(), 10
                )
                for minute in range(5):
                    when = datetime(2024, 5, 1, 10, cycle * 10 + minute)
                    packet = Packet(
                        cn="2011",
                        mn="88888880000001",
                        qn=None,
                        cp=Cp.build({"DataTime": when}, factors),
                    )
                    cable.write(encode(packet))
                    sent += len(factors)
                assert wait_for(lambda n=sent: len(rows) >= n, 15), (sent, len(rows))
                if cycle == pulls:
                    break
                reader = inst._reader
                cable.unplug()
                assert wait_for(lambda r=reader: not r._running.is_set(), 15), "loss unnoticed"
                time.sleep(0.2)
                cable.plug()
        finally:
            inst.stop()
            assert inst._thread is not None and not inst._thread.is_alive()
    lost = sent - len(rows)
    summary.record(
        "serial pull: hj212 analyser",
        faults=pulls,
        delivered=len(rows),
        lost=lost,
        seconds=time.monotonic() - t0,
        note="InstrumentInput reopens after the port fails",
    )
    assert lost == 0
    assert sum(1 for e in logs if e.get("event") == "hj212_serial_read_failed") >= pulls
