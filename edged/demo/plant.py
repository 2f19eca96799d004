"""The plant side of ``edged demo``: a meter for the data logger to poll, a platform to report to.

Nothing above the wire is faked here either. The meter is pymodbus's own
server on a loopback port (:class:`drivers.simulators.TcpMeters`), answering
per the register map of the demo config's ``[[modbus.devices]]`` with the
readings of the dust collector fan's supply, which drift as the fan's load
does; the box's data logger polls it over Modbus TCP as it polls a meter
behind an RS485 gateway on site. The platform is an HJ 212 receiver on
another loopback port (:mod:`edged.hj212.platform_sim`) that the box
connects to as to the city's monitoring platform; it decodes each packet
with the project's codec, acknowledges what asks for it, and the demo prints
one line per packet (``demo_platform_received``) and one per meter poll
(``demo_meter_polled``: what the data logger stored).

Both run on threads of their own, so the traffic of vehicles never waits
for them.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from drivers.simulators import LoopThread, Meter, TcpMeters, free_port
from edged.datalogger.registers import ModbusDevice, RegisterPoint, encode, point_key
from edged.hj212 import cn as CN
from edged.hj212.codec import Cp, Packet, format_number
from edged.hj212.platform_sim import PlatformSimulator
from edged.hj212.precision import unit_decimals
from edged.logs import get_logger

log = get_logger("demo")

LOOPBACK = "127.0.0.1"
#: what each CN the box sends is, for the demo's lines
WHAT = {
    CN.IDENTITY: "hardware identity",
    CN.REALTIME: "real-time data",
    CN.MINUTE: "minute data",
    CN.HOUR: "hour data",
    CN.DAY: "day data",
    CN.ALARM: "alarm",
    CN.RESTART: "start-up time",
    CN.HEARTBEAT: "heartbeat",
}
#: the meter's energy register when the demo starts (kWh)
START_KWH = 12876.4


def fan_supply(t: float) -> dict[str, float]:
    """Pure: the readings of the dust collector fan's supply ``t`` seconds into the demo.

    A 75 kW fan at about 70 % load, in the point names of
    ``config/meters/three_phase_energy_meter.toml``. The load swings as the
    bag filter's pressure drop builds and its pulse-jet cleaning relieves it,
    the grid's voltage and frequency wander a little. Sums of sines, not
    noise: values move plausibly, and the same ``t`` gives the same readings.
    """

    def wave(period_s: float, phase: float = 0.0) -> float:
        return math.sin(2 * math.pi * t / period_s + phase)

    load = 0.70 + 0.06 * wave(240) + 0.015 * wave(37)
    pf = 0.84 + 0.05 * load
    volts = {
        "ua": 228.0 + 2.5 * wave(300),
        "ub": 228.6 + 2.5 * wave(300, 0.4) + 0.4 * wave(53),
        "uc": 227.5 + 2.5 * wave(300, 0.8) - 0.3 * wave(71),
    }
    amps = {
        "ia": 75_000 * load / (3 * volts["ua"] * pf),
        "ib": 75_000 * load / (3 * volts["ub"] * pf) * (1.01 + 0.005 * wave(29)),
        "ic": 75_000 * load / (3 * volts["uc"] * pf) * (0.99 + 0.005 * wave(41)),
    }
    watts = pf * sum(volts[u] * amps[i] for u, i in (("ua", "ia"), ("ub", "ib"), ("uc", "ic")))
    return {
        **volts,
        **amps,
        "p_total": watts / 1000,
        "pf_total": pf,
        "freq": 50.0 + 0.03 * wave(90),
    }


def _resting(point: RegisterPoint) -> float:
    """A point the fan model does not know: switched on, or inside its limits."""
    if point.type == "bool":
        return 1.0
    if point.low is not None and point.high is not None:
        return (point.low + point.high) / 2
    return point.low if point.low is not None else point.high if point.high is not None else 0.0


class DemoMeter:
    """One ``[[modbus.devices]]`` of the demo config, answering with the fan supply's readings."""

    def __init__(self, device: ModbusDevice, clock: Callable[[], float] = time.monotonic) -> None:
        self.device = device
        self.meter = Meter(unit=device.unit, on_read=self._refresh)
        self._clock = clock
        self._t0 = self._last = clock()
        self.kwh = START_KWH

    def readings(self) -> dict[str, float]:
        """The readings now; the energy register counts up what the fan used since the last."""
        now = self._clock()
        values = fan_supply(now - self._t0)
        self.kwh += values["p_total"] * (now - self._last) / 3600
        self._last = now
        return {**values, "energy_import": self.kwh}

    def _refresh(self, meter: Meter) -> None:
        """Before each answer: the registers of every point, as the meter would send them."""
        values = self.readings()
        for p in self.device.points:
            value = values.get(p.name, _resting(p))
            raw = value if p.type == "bool" else (value - p.offset) / p.scale
            words = encode(p, raw)
            if p.function == 1:
                meter.coils[p.address] = bool(words[0])
            elif p.function == 2:
                meter.discrete[p.address] = bool(words[0])
            else:
                meter.set_words("holding" if p.function == 3 else "input", p.address, words)


def describe(cp: Cp) -> str:
    """A CP's factors on one line: ``i12001 228.6 N, i12004 58.2 (57.1..59.3) N, ...``."""
    out = []
    for code, fields in cp.factors.items():
        words = [code]
        value = fields.get("Rtd", fields.get("Avg"))
        if value is not None:
            words.append(value)
        if "Min" in fields and "Max" in fields:
            words.append(f"({fields['Min']}..{fields['Max']})")
        if "Cou" in fields:
            words.append(f"Cou {fields['Cou']}")
        shown = {"Rtd", "Avg", "Min", "Max", "Cou", "Flag"}
        words += [f"{k}={v}" for k, v in fields.items() if k not in shown]
        if "Flag" in fields:
            words.append(fields["Flag"])
        out.append(" ".join(words))
    return ", ".join(out)


class DemoPlant:
    """The meter and the platform of ``edged demo``, on the ports its config is filled with."""

    def __init__(self) -> None:
        self.modbus_port = free_port()
        self.hj212_port = free_port()
        self.meters: list[DemoMeter] = []
        self.platform: PlatformSimulator | None = None
        self.platform_name = ""
        self.received: Counter[str] = Counter()
        self._server: TcpMeters | None = None
        self._loop: LoopThread | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, cfg: Any, daemon: Any) -> None:
        """Serve what the config points at the demo's ports, and report the data logger's
        polls of the running ``daemon``. A template without them gets neither."""
        devices = [
            d
            for d in cfg.modbus.devices
            if d.enabled
            and d.transport == "tcp"
            and (d.host, d.port) == (LOOPBACK, self.modbus_port)
        ]
        if devices:
            self.meters = [DemoMeter(d) for d in devices]
            self._server = TcpMeters([m.meter for m in self.meters], port=self.modbus_port)
            log.info(
                "demo_meter_serving",
                devices=",".join(d.name for d in devices),
                port=self.modbus_port,
                points=sum(len(d.points) for d in devices),
            )
        platforms = [
            p
            for p in cfg.hj212.platforms
            if p.enabled and (p.host, p.port) == (LOOPBACK, self.hj212_port)
        ]
        if platforms:
            first = platforms[0]
            self.platform_name = first.name
            plat = PlatformSimulator(
                mn=first.mn,
                pw=first.pw,
                version=first.version,
                key=bytes.fromhex(first.sm4_key) if first.sm4_key else None,
                port=self.hj212_port,
                keep=100,
                reassemble=True,
            )
            plat.on_packet = self._received
            plat.on_refused = self._refused
            self._loop = LoopThread()
            self._loop.run(plat.start())
            self.platform = plat
            log.info(
                "demo_platform_listening",
                platform=first.name,
                port=self.hj212_port,
                version=first.version,
                encrypted=bool(first.sm4_key),
            )
        if self.meters:
            self._thread = threading.Thread(
                target=self._report, args=(daemon,), name="demo plant", daemon=True
            )
            self._thread.start()

    def _received(self, packet: Packet, answer: str | None, parts: int) -> None:
        self.received[packet.cn] += 1
        extra = {k: v for k, v in packet.cp.params.items() if k != "DataTime"}
        log.info(
            "demo_platform_received",
            platform=self.platform_name,
            cn=packet.cn,
            what=WHAT.get(packet.cn, "-"),
            data_time=packet.cp.params.get("DataTime", "-"),
            encrypted=packet.encrypted,
            parts=parts,
            answered=answer or "-",
            **({"params": ";".join(f"{k}={v}" for k, v in extra.items())} if extra else {}),
            factors=describe(packet.cp) or "-",
        )

    def _refused(self, raw: bytes, why: str) -> None:
        self.received["refused"] += 1
        log.warning(
            "demo_platform_refused",
            platform=self.platform_name,
            error=why,
            packet=raw[:120].decode("utf-8", "replace"),
            hint="the box sent what the platform cannot decode: a bug, report it with this line",
        )

    def _report(self, daemon: Any) -> None:
        """One line per poll of each demo meter: what the data logger stored from it."""
        polls: dict[str, int] = {}
        while not self._stop.wait(0.5):
            box = daemon.box
            service = box.datalogger if box is not None else None
            if service is None or service.logger is None:
                continue
            stats = service.logger.stats()
            for m in self.meters:
                st = stats.get(m.device.name) or {}
                if st.get("polls", 0) == polls.get(m.device.name, 0):
                    continue
                polls[m.device.name] = st["polls"]
                latest = service.latest(datetime.now() - timedelta(minutes=5))
                log.info(
                    "demo_meter_polled",
                    device=m.device.name,
                    polls=st["polls"],
                    ok=st["ok"],
                    state=st["state"],
                    values=_values(m.device, latest),
                )

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._server is not None:
            self._server.stop()
            log.info("demo_meter_closed", reads=sum(m.meter.reads for m in self.meters))
        if self._loop is not None:
            if self.platform is not None:
                self._loop.run(self.platform.stop())
            self._loop.stop()
            log.info(
                "demo_platform_closed",
                platform=self.platform_name,
                packets=sum(self.received.values()),
                by_cn=",".join(f"{k}:{n}" for k, n in sorted(self.received.items())) or "-",
            )


def _values(device: ModbusDevice, latest: Mapping[str, Any]) -> str:
    """``ua 228.6 V, ia 93.27 A, ...``: a device's newest stored samples, flagged when not N."""
    out = []
    for p in device.points:
        s = latest.get(point_key(device.name, p))
        if s is None:
            continue
        if s.value is None:
            out.append(f"{p.name} {s.flag}")
            continue
        places = unit_decimals(p.unit) if p.unit else None
        text = format_number(s.value, 3 if places is None else places)
        flag = "" if s.flag == "N" else f" ({s.flag})"
        out.append(f"{p.name} {text}{' ' + p.unit if p.unit else ''}{flag}")
    return ", ".join(out) or "-"
