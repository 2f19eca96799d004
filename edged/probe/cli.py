"""``edged probe camera|gpio|display|modbus|mqtt|hj212`` (and ``rfid|scale``): installation checks.

Commissioning a gate is a day of "is it the wiring, the address or the
config?". Each probe takes its settings from the same config file the
daemon will use (flags override single values), goes through the same
drivers, prints what it sees, and ends with one ``PASS``/``FAIL`` line that
names the likely fault. Nothing is switched unless asked: the barrier relay
is pulsed only with ``probe gpio --pulse barrier``.

Each device has its module (:mod:`edged.probe.camera`, ``gpio``, ``display``,
``serial`` for rfid and scale, ``modbus``, ``mqtt``, ``hj212``); this one owns the
``probe`` command group.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from drivers import config as driver_config
from edged.probe.camera import probe_camera
from edged.probe.display import probe_display
from edged.probe.gpio import probe_gpio
from edged.probe.hj212 import probe_hj212
from edged.probe.modbus import probe_modbus
from edged.probe.mqtt import probe_mqtt
from edged.probe.output import ProbeOutput, lane_device, probe_config

# -- CLI -----------------------------------------------------------------------


class _LateStderr:
    """Log lines go to whatever ``sys.stderr`` is when they are written."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _quiet_logs() -> None:
    # Drivers log their own warnings; on stdout they would land after the verdict.
    from edged import logs

    logs.configure("warning", timestamps=False, stream=_LateStderr())  # type: ignore[arg-type]


def _guarded(handler: Any) -> Any:
    """Run a probe; an unexpected error is a FAIL line, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        from edged.config.load import ConfigError

        _quiet_logs()
        try:
            return int(handler(args))
        except (ConfigError, KeyboardInterrupt):
            raise
        except Exception as exc:  # the technician needs a verdict, the log the details
            return ProbeOutput(sys.stdout).failed(
                f"the probe stopped on an unexpected error: {type(exc).__name__}: {exc}",
                "report this line with the config file",
            )

    return run


def _camera(args: argparse.Namespace) -> int:
    from edged.probe.serial import with_flags

    out = ProbeOutput(sys.stdout)
    cfg = probe_config(args, out)
    lane, cc = lane_device(cfg, "camera", args.lane)
    out.line(f"lane: {lane}")
    cc = with_flags("camera", cc, args.type, device=args.device, folder=args.folder)
    return probe_camera(
        cc,
        sys.stdout,
        frames=args.frames,
        timeout=args.timeout,
        read=args.read,
        lpr=cfg.lpr,
        save=args.save,
        save_cert=args.save_cert,
    )


def _gpio(args: argparse.Namespace) -> int:
    out = ProbeOutput(sys.stdout)
    lane, gc = lane_device(probe_config(args, out), "gpio", args.lane)
    out.line(f"lane: {lane}")
    return probe_gpio(gc, sys.stdout, pulse=args.pulse, watch=args.watch)


def _display(args: argparse.Namespace) -> int:
    from edged.probe.serial import with_flags

    out = ProbeOutput(sys.stdout)
    lane, dc = lane_device(probe_config(args, out), "display", args.lane)
    out.line(f"lane: {lane}" + ("" if dc else " (no [display] in the config: flags only)"))
    if dc is not None or args.type:
        kind = args.type or dc.type
        own_voice = driver_config.family("display")[kind].config.has_speech
        lost = dc is not None and dc.speech == "controller" and not own_voice
        speech = "off" if args.no_speech or lost else None
        dc = with_flags("display", dc, args.type, port=args.port, speech=speech)
    return probe_display(dc, sys.stdout, speak=not args.no_speech)


def _modbus(args: argparse.Namespace) -> int:
    cfg = probe_config(args, ProbeOutput(sys.stdout))
    overrides = {
        k: getattr(args, k)
        for k in ("host", "port", "unit", "serial_port", "baudrate")
        if getattr(args, k) is not None
    }
    if args.host:
        overrides["transport"] = "tcp"
    if args.timeout:
        overrides["timeout_s"] = args.timeout
    return probe_modbus(cfg.modbus, sys.stdout, names=args.device, overrides=overrides)


def _mqtt(args: argparse.Namespace) -> int:
    cfg = probe_config(args, ProbeOutput(sys.stdout))
    changes = {k: getattr(args, k) for k in ("host", "port", "protocol") if getattr(args, k)}
    mc = replace(cfg.mqtt, **changes) if changes else cfg.mqtt
    return probe_mqtt(mc, cfg.site.id, cfg.site.gate_id, sys.stdout, timeout=args.timeout)


def _hj212(args: argparse.Namespace) -> int:
    cfg = probe_config(args, ProbeOutput(sys.stdout))
    overrides = {k: getattr(args, k) for k in ("host", "port", "mn", "pw") if getattr(args, k)}
    return probe_hj212(
        cfg.hj212,
        sys.stdout,
        names=args.platform,
        overrides=overrides,
        timeout=args.timeout,
        cn=args.cn,
    )


def register(sub: argparse._SubParsersAction) -> None:
    """``edged probe KIND``: one device or link at a time, ending in PASS or FAIL."""
    from edged.probe import serial as serialprobe

    probe = sub.add_parser(
        "probe",
        help="check one device or link at installation: what it sees, then PASS/FAIL",
        description="Each probe reads its settings from the config file (flags override)"
        " and ends with one line starting PASS or FAIL; exit status 0 or 1.",
    )
    kinds = probe.add_subparsers(dest="probe_kind", required=True, metavar="KIND")
    serialprobe.add_kinds(kinds)
    for name in ("rfid", "scale"):
        serial = kinds.choices[name]
        serial.set_defaults(func=_guarded(serial.get_default("func")))

    p = kinds.add_parser("camera", help="grab frames: resolution and measured fps")
    p.add_argument("--lane", help="the lane whose camera to probe (default: the first with one)")
    p.add_argument("--type", choices=["opencv", "picamera2", "folder"], help="camera type")
    p.add_argument("--device", help="V4L2 device, index or rtsp:// URL (default: from config)")
    p.add_argument("--folder", help="image folder or video file for type folder")
    p.add_argument("--frames", type=int, default=20, help="frames to grab (default 20)")
    p.add_argument("--timeout", type=float, help="seconds per frame (default: from config)")
    p.add_argument("--read", action="store_true", help="read plates in the last frame")
    p.add_argument("--save", metavar="FILE", help="save the last frame (.jpg/.png) for aiming")
    p.add_argument(
        "--save-cert",
        metavar="FILE",
        help="https snapshot camera: save the certificate it shows (PEM), print its"
        " fingerprint, and probe with it as tls_ca_file",
    )
    p.set_defaults(func=_guarded(_camera))

    p = kinds.add_parser("gpio", help="show loop/beam inputs and outputs; --pulse to test one")
    p.add_argument("--lane", help="the lane whose GPIO to probe (default: the first)")
    p.add_argument(
        "--pulse",
        choices=["barrier", "close", "alarm", "lamp"],
        help="switch this output once (watch the barrier / light while it runs)",
    )
    p.add_argument(
        "--watch",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="print input changes for this long",
    )
    p.set_defaults(func=_guarded(_gpio))

    p = kinds.add_parser("display", help="write a test screen on the driver display, and speak")
    p.add_argument("--lane", help="the lane whose display to probe (default: the first with one)")
    p.add_argument("--type", choices=list(driver_config.family("display")), help="display type")
    p.add_argument("--port", help="serial port or socket://HOST:PORT (default: from config)")
    p.add_argument("--no-speech", action="store_true", help="show only, say nothing")
    p.set_defaults(func=_guarded(_display))

    p = kinds.add_parser("modbus", help="read every configured meter once, values with units")
    p.add_argument(
        "--device", action="append", metavar="NAME", help="only this device (repeatable)"
    )
    p.add_argument("--host", help="TCP host (makes the device tcp)")
    p.add_argument("--port", type=int, help="TCP port")
    p.add_argument("--unit", type=int, help="unit id / slave address")
    p.add_argument("--serial-port", dest="serial_port", help="RS485 serial port")
    p.add_argument("--baudrate", type=int)
    p.add_argument("--timeout", type=float, help="seconds per read")
    p.set_defaults(func=_guarded(_modbus))

    p = kinds.add_parser("mqtt", help="connect to the broker, publish and time a probe message")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--protocol", choices=["auto", "5", "3.1.1"])
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per step (default 10)")
    p.set_defaults(func=_guarded(_mqtt))

    p = kinds.add_parser("hj212", help="send each platform a packet and wait for its 9014 reply")
    p.add_argument("--platform", action="append", metavar="NAME", help="only this platform")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--mn", help="MN to send as (default: from config)")
    p.add_argument("--pw", help="PW to send (default: from config)")
    p.add_argument("--timeout", type=float, help="seconds to wait for 9014 (default: from config)")
    p.add_argument(
        "--cn",
        default="2011",
        help="CN of the packet sent (default 2011 real-time data with no values)",
    )
    p.set_defaults(func=_guarded(_hj212))
