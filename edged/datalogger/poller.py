"""Poll meters on their groups' intervals, one thread per bus.

An RS485 line with a dead meter spends ``timeout * (1 + retries)`` on every
read of it; if that line shared a thread with the TCP meters, their samples
would drift late. So each bus (one serial port, or one TCP host:port) gets
its own thread and its own connection, and devices on it are polled in turn.

Every read produces one :class:`Sample` per point with a data flag:
N normal, T over a configured limit, D the device answered with a Modbus
exception or an impossible value, B no answer. Per-device success rates
(the guide asks ≥ 95 %) are kept for :meth:`Poller.stats`, and state changes
(fault, recovery, limit crossed/cleared) go to ``on_event`` once per change,
not once per poll, so a dead meter does not flood the event log.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from drivers.modbus import Endpoint, ModbusClient, ModbusCommError, ModbusDeviceError
from edged.datalogger.aggregate import Sample
from edged.datalogger.registers import (
    DecodeError,
    ModbusConfig,
    ModbusDevice,
    ReadBlock,
    decode,
    plan_reads,
    point_key,
)
from edged.logs import get_logger

log = get_logger("datalogger")

EventSink = Callable[..., None]  # on_event(kind, severity, message, **details)
SampleSink = Callable[[list[Sample]], None]
WINDOW = 100  # polls in the rolling success-rate window


class Reader(Protocol):
    """What the poller needs from a bus connection (drivers.modbus.ModbusClient)."""

    def read(
        self, function: int, address: int, count: int, unit: int, retries: int | None = None
    ) -> list[int] | list[bool]: ...

    def close(self) -> None: ...


def client_for(device: ModbusDevice) -> ModbusClient:
    """The real connection for a device's bus."""
    if device.transport == "tcp":
        ep = Endpoint("tcp", host=device.host, port=device.port)
    else:
        ep = Endpoint(
            "rtu",
            serial_port=device.serial_port,
            baudrate=device.baudrate,
            parity=device.parity,
            stopbits=device.stopbits,
        )
    return ModbusClient(ep, timeout=device.timeout_s, retries=device.retries)


@dataclass
class DeviceStats:
    """Collection success of one device (采集成功率)."""

    polls: int = 0
    ok: int = 0
    window: deque[bool] = field(default_factory=lambda: deque(maxlen=WINDOW))
    state: str = "unknown"  # ok / comm_fault / device_fault
    last_ok: datetime | None = None
    last_error: str = ""
    last_duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "polls": self.polls,
            "ok": self.ok,
            "success_rate": (self.ok / self.polls) if self.polls else None,
            "recent_success_rate": (sum(self.window) / len(self.window)) if self.window else None,
            "state": self.state,
            "last_ok": self.last_ok.isoformat(timespec="seconds") if self.last_ok else None,
            "last_error": self.last_error,
            "last_duration_s": round(self.last_duration_s, 4),
        }


class Poller:
    """Reads every enabled device of a :class:`ModbusConfig` and hands samples on."""

    def __init__(
        self,
        config: ModbusConfig,
        sink: SampleSink,
        on_event: EventSink | None = None,
        *,
        client_factory: Callable[[ModbusDevice], Reader] = client_for,
        wall_clock: Callable[[], datetime] = datetime.now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.sink = sink
        self.on_event = on_event
        self.wall_clock = wall_clock
        self.monotonic = monotonic
        self._devices = [d for d in config.devices if d.enabled]
        self._plans = {d.name: plan_reads(d.points, max_gap=d.max_gap) for d in self._devices}
        self._stats = {d.name: DeviceStats() for d in self._devices}
        self._over: dict[str, bool] = {}
        self._buses: dict[str, list[ModbusDevice]] = {}
        for d in self._devices:
            self._buses.setdefault(d.bus, []).append(d)
        # one connection per bus; its timeout is the longest any device on it asks for
        self._clients: dict[str, Reader] = {
            bus: client_factory(replace(devs[0], timeout_s=max(d.timeout_s for d in devs)))
            for bus, devs in self._buses.items()
        }
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    # --- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        for bus, devices in self._buses.items():
            t = threading.Thread(
                target=self._run_bus, args=(bus, devices), name=f"modbus {bus}", daemon=True
            )
            t.start()
            self._threads.append(t)
        log.info("datalogger_started", buses=len(self._buses), devices=len(self._devices))

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()
        for client in self._clients.values():
            client.close()

    def _run_bus(self, bus: str, devices: list[ModbusDevice]) -> None:
        due = {d.name: self.monotonic() for d in devices}
        while not self._stop.is_set():
            now = self.monotonic()
            for d in devices:
                if due[d.name] <= now and not self._stop.is_set():
                    try:
                        self.poll_device(d)
                    except Exception as exc:  # never let one bad poll end the thread
                        log.error(
                            "datalogger_poll_crashed",
                            device=d.name,
                            error=repr(exc),
                            hint="bug: report with this line; polling continues",
                        )
                    interval = self.config.interval(d)
                    # keep the cadence; if we fell far behind, do not burst to catch up
                    due[d.name] = max(due[d.name] + interval, self.monotonic())
            wait = min(due.values()) - self.monotonic()
            if wait > 0:
                self._stop.wait(wait)

    # --- one poll ------------------------------------------------------------
    def poll_device(self, device: ModbusDevice) -> list[Sample]:
        """Read all points of one device now; returns (and sinks) its samples."""
        client = self._clients[device.bus]
        ts = self.wall_clock().replace(microsecond=0)
        t0 = self.monotonic()
        samples: list[Sample] = []
        comm_error = device_error = ""
        for block in self._plans[device.name]:
            got, error = self._read_block(client, device, block, ts)
            samples.extend(got)
            flags = {s.flag for s in got}
            if "B" in flags and not comm_error:
                comm_error = error
            elif "D" in flags and not device_error:
                device_error = error
            if "B" in flags:
                # the device is not answering: the remaining blocks would each
                # cost a full timeout, so mark them B without asking
                for rest in self._plans[device.name][self._plans[device.name].index(block) + 1 :]:
                    samples.extend(
                        Sample(ts, point_key(device.name, p), None, "B") for p in rest.points
                    )
                break
        self._account(device, ts, self.monotonic() - t0, comm_error, device_error)
        self._limits(device, samples)
        if samples:
            self.sink(samples)
        return samples

    def _read_block(
        self, client: Reader, device: ModbusDevice, block: ReadBlock, ts: datetime
    ) -> tuple[list[Sample], str]:
        """Samples of one request, and the error text when there was one."""
        keys = [point_key(device.name, p) for p in block.points]
        try:
            data = client.read(
                block.function, block.address, block.count, device.unit, retries=device.retries
            )
        except ModbusCommError as exc:
            return [Sample(ts, k, None, "B") for k in keys], str(exc)
        except ModbusDeviceError as exc:
            where = f"fc{block.function} @{block.address}+{block.count}"
            return [Sample(ts, k, None, "D") for k in keys], f"{where}: {exc}"
        out = []
        error = ""
        for p, k in zip(block.points, keys, strict=True):
            try:
                value = decode(p, block.slice(p, data))
            except DecodeError as exc:
                error = str(exc)
                log.warning(
                    "datalogger_bad_value",
                    device=device.name,
                    point=p.name,
                    error=str(exc),
                    hint="check type/order in the register map against the meter manual",
                )
                out.append(Sample(ts, k, None, "D"))
                continue
            out.append(Sample(ts, k, value, "T" if p.over_limit(value) else "N"))
        return out, error

    def _account(
        self, device: ModbusDevice, ts: datetime, duration: float, comm: str, dev: str
    ) -> None:
        with self._lock:
            st = self._stats[device.name]
            ok = not comm and not dev
            st.polls += 1
            st.window.append(ok)
            st.last_duration_s = duration
            previous = st.state
            if ok:
                st.ok += 1
                st.last_ok = ts
                st.state = "ok"
            else:
                st.last_error = comm or dev
                st.state = "comm_fault" if comm else "device_fault"
        if st.state == previous:
            return
        if st.state == "ok":
            if previous != "unknown":
                log.info("datalogger_device_recovered", device=device.name)
                self._emit(
                    "recovered",
                    "info",
                    f"{device.name}: communication restored",
                    device=device.name,
                    previous=previous,
                )
        elif st.state == "comm_fault":
            log.warning(
                "datalogger_device_silent",
                device=device.name,
                bus=device.bus,
                unit=device.unit,
                error=comm,
                hint="check RS485 wiring A/B, meter power, unit id and baud rate",
            )
            self._emit(
                "comm_fault",
                "warning",
                f"{device.name}: no answer ({comm})",
                device=device.name,
                bus=device.bus,
                unit=device.unit,
                error=comm,
            )
        else:
            log.warning(
                "datalogger_device_fault",
                device=device.name,
                error=dev,
                hint="the meter refuses the read: check register addresses and function codes",
            )
            self._emit(
                "device_fault",
                "warning",
                f"{device.name}: device fault ({dev})",
                device=device.name,
                error=dev,
            )

    def _limits(self, device: ModbusDevice, samples: list[Sample]) -> None:
        points = {point_key(device.name, p): p for p in device.points}
        for s in samples:
            if s.value is None:
                continue
            over = s.flag == "T"
            was = self._over.get(s.key, False)
            if over == was:
                continue
            self._over[s.key] = over
            p = points[s.key]
            if over:
                log.warning(
                    "datalogger_over_limit",
                    device=device.name,
                    point=p.name,
                    key=s.key,
                    value=s.value,
                    low=p.low,
                    high=p.high,
                    unit=p.unit,
                )
                self._emit(
                    "over_limit",
                    "alarm",
                    f"{device.name}.{p.name} = {s.value:g}{p.unit} outside [{p.low}, {p.high}]",
                    device=device.name,
                    point=p.name,
                    factor=p.factor,
                    value=s.value,
                    low=p.low,
                    high=p.high,
                    ts=s.ts.isoformat(),
                )
            else:
                log.info(
                    "datalogger_limit_cleared", device=device.name, point=p.name, value=s.value
                )
                self._emit(
                    "limit_cleared",
                    "info",
                    f"{device.name}.{p.name} back within limits",
                    device=device.name,
                    point=p.name,
                    factor=p.factor,
                    value=s.value,
                    ts=s.ts.isoformat(),
                )

    def _emit(self, kind: str, severity: str, message: str, **details: Any) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(kind, severity, message, **details)
        except Exception as exc:  # a broken consumer must not stop acquisition
            log.error("datalogger_event_sink_failed", kind=kind, error=repr(exc))

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per device: polls, ok, success_rate (since start), recent_success_rate (last 100)."""
        with self._lock:
            return {name: st.as_dict() for name, st in self._stats.items()}
