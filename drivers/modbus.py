"""A Modbus master that answers with words or one of two errors.

pymodbus reports trouble in several shapes (exceptions, error responses,
``None`` after a timeout, a half-open socket). The poller only needs to know
two things to flag a sample: the meter never answered (communication, flag
B) or it answered with a Modbus exception (the device itself refuses, flag
D). This wrapper turns every shape into one of those two exceptions, retries
on its own schedule, and reconnects lazily on the next read, so a cable
pulled and put back needs no action from anyone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException

from drivers.log import get_logger

log = get_logger("modbus")

#: Modbus exception codes, for messages a technician can act on
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


class ModbusError(Exception):
    """Base of the two ways a read fails."""


class ModbusCommError(ModbusError):
    """No usable answer: timeout, connection refused/lost, garbled frame (flag B)."""


class ModbusDeviceError(ModbusError):
    """The device answered with a Modbus exception (flag D, or B for gateway codes)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Endpoint:
    """Where a bus is: a TCP host/port or a serial line."""

    transport: Literal["tcp", "rtu"]
    host: str = ""
    port: int = 502
    serial_port: str = ""
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8

    def describe(self) -> str:
        if self.transport == "tcp":
            return f"tcp://{self.host}:{self.port}"
        return f"{self.serial_port}@{self.baudrate}{self.parity}{self.stopbits}"


class ModbusClient:
    """One connection (TCP socket or RS485 line), shared by the devices on it.

    Not meant to be used from several threads at once: the poller gives each
    bus its own thread. A lock still guards it so a stray caller (a CLI
    probe) cannot interleave frames on the wire.
    """

    def __init__(self, endpoint: Endpoint, timeout: float = 1.0, retries: int = 2) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.retries = retries
        self._client: Any = None
        self._lock = threading.Lock()
        self.reconnects = 0

    def _make(self) -> Any:
        ep = self.endpoint
        if ep.transport == "tcp":
            return ModbusTcpClient(ep.host, port=ep.port, timeout=self.timeout, retries=0)
        return ModbusSerialClient(
            ep.serial_port,
            baudrate=ep.baudrate,
            parity=ep.parity,
            stopbits=ep.stopbits,
            bytesize=ep.bytesize,
            timeout=self.timeout,
            retries=0,
        )

    def _ensure(self) -> Any:
        if self._client is None:
            self._client = self._make()
        if not self._client.connected:
            if not self._client.connect():
                self.close()
                raise ModbusCommError(f"cannot connect to {self.endpoint.describe()}")
            self.reconnects += 1
        return self._client

    def close(self) -> None:
        """Drop the connection; the next read opens a fresh one."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception as exc:  # a dying socket must not stop the poller
                log.debug("modbus_close_failed", endpoint=self.endpoint.describe(), error=str(exc))

    def read(
        self, function: int, address: int, count: int, unit: int, retries: int | None = None
    ) -> list[int] | list[bool]:
        """Read ``count`` registers (fc 3/4) or bits (fc 1/2) from one device.

        Tries ``1 + retries`` times (the client's default unless given: devices
        sharing a bus may differ). A Modbus exception answer is not retried:
        the device said no and will say it again.
        """
        tries = 1 + (self.retries if retries is None else retries)
        if function not in (1, 2, 3, 4):
            raise ValueError(f"function: expected 1..4, found {function}")
        last: Exception | None = None
        with self._lock:
            for _attempt in range(tries):
                try:
                    return self._read_once(function, address, count, unit)
                except ModbusDeviceError:
                    raise
                except ModbusCommError as exc:
                    last = exc
                    self.close()
        raise ModbusCommError(f"{last} (after {tries} tries)")

    def _read_once(
        self, function: int, address: int, count: int, unit: int
    ) -> list[int] | list[bool]:
        client = self._ensure()
        call = {
            1: client.read_coils,
            2: client.read_discrete_inputs,
            3: client.read_holding_registers,
            4: client.read_input_registers,
        }[function]
        try:
            resp = call(address, count=count, device_id=unit)
        except ModbusException as exc:
            raise ModbusCommError(str(exc)) from exc
        except OSError as exc:
            raise ModbusCommError(f"{type(exc).__name__}: {exc}") from exc
        if resp is None:
            raise ModbusCommError("no response")
        if resp.isError():
            code = int(getattr(resp, "exception_code", 0) or 0)
            name = EXCEPTION_NAMES.get(code, "unknown exception")
            if code in (10, 11):
                # the gateway answered for a meter that did not: a comm problem behind it
                raise ModbusCommError(f"gateway: {name} (code {code})")
            raise ModbusDeviceError(f"exception {code} ({name})", code)
        if function in (1, 2):
            bits = list(resp.bits)
            if len(bits) < count:
                raise ModbusCommError(f"short answer: {len(bits)} bits for {count}")
            return [bool(b) for b in bits[:count]]
        regs = list(resp.registers)
        if len(regs) != count:
            raise ModbusCommError(f"short answer: {len(regs)} registers for {count}")
        return regs
