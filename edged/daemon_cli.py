"""``edged run`` (the service) and ``edged demo`` (a simulated gate on this machine)."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
from pathlib import Path

from edged import logs
from edged.config import load_config, parse

REPO = Path(__file__).resolve().parent.parent


def _configure_logging(cfg, force_timestamps: bool | None = None) -> None:
    lg = cfg.logging
    logs.configure(
        lg.level,
        lg.components,
        lg.format,
        lg.timestamps if force_timestamps is None else force_timestamps,
    )


def _run(args: argparse.Namespace) -> int:
    from edged.daemon import Daemon

    cfg = load_config(args.config)
    _configure_logging(cfg)
    daemon = Daemon(cfg)
    daemon.install_signals()
    return daemon.run()


def _broker_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _demo(args: argparse.Namespace) -> int:
    from edged.daemon import Daemon

    workdir = Path(args.dir).resolve()
    if args.fresh and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    template = Path(args.template or REPO / "config" / "demo.toml")
    text = template.read_text(encoding="utf-8")
    text = text.replace("@DATA_DIR@", str(workdir / "data")).replace(
        "@MODEL_DIR@", os.environ.get("EDGED_MODEL_DIR", str(REPO / "models" / "onnx"))
    )
    text = text.replace("@MQTT_PORT@", str(args.mqtt_port)).replace(
        "@PASSAGES@", str(args.passages)
    )
    cfg_path = workdir / "edged.toml"
    cfg_path.write_text(text, encoding="utf-8")
    cfg = parse(text, str(cfg_path))
    _configure_logging(cfg)
    log = logs.get_logger("demo")
    if _broker_up("127.0.0.1", args.mqtt_port):
        log.info("demo_broker_found", port=args.mqtt_port, hint="watch with: mosquitto_sub -t 'edged/#' -v")
    else:
        log.warning(
            "demo_no_broker",
            port=args.mqtt_port,
            hint="no MQTT broker on localhost; messages are kept in the outbox and sent when one starts",
        )
    log.info("demo_start", config=str(cfg_path), data_dir=str(workdir / "data"), passages=args.passages)
    daemon = Daemon(cfg)
    daemon.install_signals()
    rc = daemon.run()
    log.info(
        "demo_done",
        ledger=str(workdir / "data" / "ledger.db"),
        hint=f"inspect with: edged --config {cfg_path} ledger query; edged --config {cfg_path} ledger verify",
    )
    return rc


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the gate daemon (what the systemd service starts)")
    p.set_defaults(func=_run)
    d = sub.add_parser("demo", help="run a simulated gate on this machine (no hardware needed)")
    d.add_argument("--passages", type=int, default=12, help="simulated vehicles before the demo stops (0: run until Ctrl-C)")
    d.add_argument("--dir", default="var/demo", help="working directory for the demo's config and data (default: var/demo)")
    d.add_argument("--mqtt-port", type=int, default=1883, help="local MQTT broker port to publish to")
    d.add_argument("--template", help="demo config template (default: config/demo.toml)")
    d.add_argument("--fresh", action="store_true", help="start with an empty ledger")
    d.set_defaults(func=_demo)

