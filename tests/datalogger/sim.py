"""Simulated meters on pymodbus's own server, for tests and the benchmark.

Each :class:`Meter` is a unit id with four tables the test can change while
the server runs, plus two switches: ``silent`` (the meter never answers, as
when its RS485 wires come off) and ``exception`` (it answers every read with
that Modbus exception code, as a meter does for an unmapped register).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import threading
import tty
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils

REGISTERS = 0x4100  # covers the 0x2000/0x4000 blocks of common energy meters
BITS = 1024


@dataclass
class Meter:
    unit: int = 1
    holding: dict[int, int] = field(default_factory=dict)
    input: dict[int, int] = field(default_factory=dict)
    coils: dict[int, bool] = field(default_factory=dict)
    discrete: dict[int, bool] = field(default_factory=dict)
    silent: bool = False
    exception: int | None = None
    reads: int = 0

    def set_words(self, table: str, address: int, words: list[int]) -> None:
        target = self.holding if table == "holding" else self.input
        for i, w in enumerate(words):
            target[address + i] = w

    async def action(self, fc, start, address, count, registers, values):
        self.reads += 1
        if self.silent:
            await asyncio.sleep(30)
            return ExcCodes.DEVICE_FAILURE
        if self.exception is not None:
            return ExcCodes(self.exception)
        if fc in (3, 4):
            src = self.holding if fc == 3 else self.input
            for a, w in src.items():
                registers[a - start] = w & 0xFFFF
        elif fc in (1, 2):
            src = self.coils if fc == 1 else self.discrete
            bits = [bool(src.get(i, False)) for i in range(len(registers) * 16)]
            registers[:] = SimUtils.bitsToRegisters(bits)
        return None

    def device(self) -> SimDevice:
        return SimDevice(
            id=self.unit,
            simdata=(
                [SimData(0, count=BITS, values=False, datatype=DataType.BITS)],
                [SimData(0, count=BITS, values=False, datatype=DataType.BITS)],
                [SimData(0, count=REGISTERS, values=0, datatype=DataType.REGISTERS)],
                [SimData(0, count=REGISTERS, values=0, datatype=DataType.REGISTERS)],
            ),
            action=self.action,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def serve(self, make_server) -> None:
        async def start():
            self.server = make_server()
            await self.server.serve_forever(background=True)

        self.run(start())

    def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.run(self.server.shutdown(), 5)

        async def cancel_rest() -> None:
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_rest(), 5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class TcpMeters:
    """A Modbus TCP server (meter or gateway) answering for several unit ids."""

    def __init__(self, meters: list[Meter], port: int | None = None) -> None:
        self.meters = meters
        self.port = port or free_port()
        self._lt = _LoopThread()
        devices = [m.device() for m in meters]
        self._lt.serve(lambda: ModbusTcpServer(devices, address=("127.0.0.1", self.port)))

    def stop(self) -> None:
        self._lt.stop()


class PtyBridge:
    """Two pty pairs joined back to back: a null-modem cable with a path at each end."""

    def __init__(self) -> None:
        self._m1, s1 = os.openpty()
        self._m2, s2 = os.openpty()
        for fd in (s1, s2):
            tty.setraw(fd)
        self.a, self.b = os.ttyname(s1), os.ttyname(s2)
        self._slaves = (s1, s2)
        self._stop = False
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        peer = {self._m1: self._m2, self._m2: self._m1}
        while not self._stop:
            ready, _, _ = select.select(list(peer), [], [], 0.1)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                if data:
                    os.write(peer[fd], data)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        for fd in (self._m1, self._m2, *self._slaves):
            os.close(fd)


class RtuMeters:
    """A Modbus RTU server on one end of a pty bridge; the client opens ``port``."""

    def __init__(self, meters: list[Meter], baudrate: int = 19200) -> None:
        self.meters = meters
        self.bridge = PtyBridge()
        self.port = self.bridge.b
        self._lt = _LoopThread()
        devices = [m.device() for m in meters]
        self._lt.serve(
            lambda: ModbusSerialServer(devices, port=self.bridge.a, baudrate=baudrate, timeout=0.1)
        )

    def stop(self) -> None:
        self._lt.stop()
        self.bridge.close()
