"""``edged run`` (the service) and ``edged demo`` (a simulated gate on this machine)."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
from pathlib import Path

from edged import logs
from edged.config.load import load_config, parse

REPO = Path(__file__).resolve().parents[2]


def _configure_logging(cfg, force_timestamps: bool | None = None) -> None:
    lg = cfg.logging
    logs.configure(
        lg.level,
        lg.components,
        lg.format,
        lg.timestamps if force_timestamps is None else force_timestamps,
        timezone=cfg.site.timezone,
    )


def _run(args: argparse.Namespace) -> int:
    from edged.app.daemon import Daemon
    from edged.app.memory import bound_heap

    bound_heap()

    cfg = load_config(args.config)
    _configure_logging(cfg)
    daemon = Daemon(cfg)
    daemon.install_signals()
    return _guarded(daemon)


def _guarded(daemon) -> int:
    from edged.app.wiring import StartupError

    try:
        return daemon.run()
    except StartupError as exc:
        logs.print_stderr(f"edged: cannot start: {exc}")
        return 2


def _broker_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _demo(args: argparse.Namespace) -> int:
    from edged.app.daemon import Daemon
    from edged.app.memory import bound_heap

    bound_heap()

    workdir = Path(args.dir).resolve()
    if args.fresh and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    template = Path(args.template or REPO / "config" / "demo.toml")
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    from edged.demo.plant import DemoPlant
    from edged.demo.traffic import DemoTraffic

    Device.pin_factory = MockFactory()
    text = template.read_text(encoding="utf-8")
    demo: DemoTraffic | None = None
    plant = DemoPlant()

    repl = {
        "@DATA_DIR@": str(workdir / "data"),
        "@MODEL_DIR@": os.environ.get("EDGED_MODEL_DIR", str(REPO / "models" / "onnx")),
        "@MQTT_PORT@": str(args.mqtt_port),
        "@REPO@": str(REPO),
        "@MODBUS_PORT@": str(plant.modbus_port),
        "@HJ212_PORT@": str(plant.hj212_port),
    }
    log = logs.get_logger("demo")
    cfg_path = workdir / "edged.toml"
    try:
        for key, value in repl.items():
            text = text.replace(key, value)
        demo = DemoTraffic(None, args.passages, cert_dir=workdir)
        text = text.replace("@RECEIVER_PORT@", str(demo.receiver_port))
        assert demo.exit_camera_cert is not None
        text = text.replace("@SNAPSHOT_CA@", demo.exit_camera_cert)
        check = text.replace("@RFID_PORT@", "/dev/rfid").replace("@SCALE_PORT@", "/dev/scale")
        check = check.replace("@SNAPSHOT_URL@", "https://127.0.0.1/snapshot")
        cfg = parse(check.replace("@DISPLAY_PORT@", "/dev/display"), str(cfg_path))
        text = text.replace("@RFID_PORT@", demo.rfid_port).replace("@SCALE_PORT@", demo.scale_port)
        text = text.replace("@DISPLAY_PORT@", demo.display_port)
        text = text.replace("@SNAPSHOT_URL@", demo.exit_camera.url)
        cfg_path.write_text(text, encoding="utf-8")
        cfg = parse(text, str(cfg_path))
        _configure_logging(cfg)
        if _broker_up("127.0.0.1", args.mqtt_port):
            log.info(
                "demo_broker_found",
                port=args.mqtt_port,
                hint="watch with: mosquitto_sub -t 'edged/#' -v",
            )
        else:
            log.warning(
                "demo_no_broker",
                port=args.mqtt_port,
                hint="no MQTT broker on localhost; messages wait in the outbox and go out when one starts",
            )
        log.info("demo_start", config=str(cfg_path), passages=args.passages)
        daemon = Daemon(cfg)
        plant.start(cfg, daemon)  # before the daemon: its first poll and connect find them up
        demo.daemon = daemon
        demo.start()
        daemon.install_signals()
        rc = _guarded(daemon)
    finally:
        if demo is not None:
            demo.close()
        plant.close()
    log.info(
        "demo_done",
        ledger=str(workdir / "data" / "ledger.db"),
        hint=f"inspect with: edged ledger query --db {workdir / 'data' / 'ledger.db'}",
    )
    return rc


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the gate daemon (what the systemd service starts)")
    p.set_defaults(func=_run)
    d = sub.add_parser("demo", help="run a simulated gate on this machine (no hardware needed)")
    d.add_argument(
        "--passages",
        type=int,
        default=12,
        help="simulated vehicles before the demo stops (0: run until Ctrl-C)",
    )
    d.add_argument(
        "--dir",
        default="var/demo",
        help="working directory for the demo's config and data (default: var/demo)",
    )
    d.add_argument(
        "--mqtt-port", type=int, default=1883, help="local MQTT broker port to publish to"
    )
    d.add_argument("--template", help="demo config template (default: config/demo.toml)")
    d.add_argument("--fresh", action="store_true", help="start with an empty ledger")
    d.set_defaults(func=_demo)
