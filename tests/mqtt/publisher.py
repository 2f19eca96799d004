"""A tiny gate process for the kill -9 tests: queue N passages, then keep sending."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from edged.logs import configure

# Loggers bind at import time: configure first so nothing lands on stdout.
configure("warning")

from edged.mqtt.client import MqttLink  # noqa: E402
from tests.mqtt.helpers import link_config  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--outbox", required=True)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--drain-rate", type=float, default=500.0)
    args = ap.parse_args()
    link = MqttLink(
        link_config(args.port, drain_rate=args.drain_rate, outbox_sync="FULL"),
        ("s1", "g1"),
        args.outbox,
    )
    for i in range(args.count):
        link.publish("passage", {"n": i})
    print(f"queued {args.count}", flush=True)
    link.start()
    while True:
        time.sleep(0.5)
        print(f"connected {link.connected}", flush=True)


if __name__ == "__main__":
    main()
