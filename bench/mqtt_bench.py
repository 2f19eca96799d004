"""Drain benchmark of the MQTT outbox after an outage (issue 6).

Queues N passage messages while the link is down, then starts it against a
local mosquitto (started here, on a free port) and times the drain until the
broker has acknowledged every message and the outbox is empty. Baseline, in
the same run: raw paho QoS 1 publishing of the same payloads with the same
in-flight window and no outbox. Prints messages/s, the ratio to the baseline
and the peak RSS added by the outbox run.

Targets: >= 2,000 msg/s and <= 80 MB added RSS for 100,000 messages.

    python bench/mqtt_bench.py [--messages N] [--quick] [--inflight W]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit
from edged.logs import configure

configure("warning")

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from edged.mqtt.client import MqttLink  # noqa: E402
from edged.mqtt.config import MqttConfig  # noqa: E402

PASSAGE = {
    "ledger_seq": 0,
    "time": "2024-06-01T08:00:00.000+08:00",
    "direction": "in",
    "plate": "冀A12345",
    "plate_colour": "yellow",
    "vehicle_type": "重型半挂牵引车",
    "vin": "LZZ1CLVB0KA123456",
    "fuel": "diesel",
    "emission_stage": "6",
    "decision": "pass",
    "reason": "registry",
    "images": ["2024/06/01/080000_in_plate.jpg", "2024/06/01/080000_in_scene.jpg"],
    "rfid": "E2801160600002054E4BBA7F",
    "weight_kg": 49000,
    "hash": "9d5ed678fe57bcca610140957afab571e2b2fd0b3a1f3b0b8ff4c5c1a9d7e2f1",
}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    def __init__(self) -> None:
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb())

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        return max(self.peak, rss_mb())


def start_broker(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nlog_type error\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("mosquitto did not start")


def run_outbox(port: int, n: int, inflight: int, workdir: Path) -> dict[str, float]:
    cfg = MqttConfig(
        host="127.0.0.1",
        port=port,
        max_inflight=inflight,
        drain_rate=0.0,
        outbox_max_messages=max(n * 2, 1000),
        outbox_max_mb=4096.0,
    )
    rss0 = rss_mb()
    monitor = PeakRss()
    link = MqttLink(cfg, ("bench", "gate1"), workdir / "outbox.db")
    t0 = time.perf_counter()
    topic = link.topics.passage
    import json

    body = json.dumps(PASSAGE, ensure_ascii=False)
    chunk = 5000
    for start in range(0, n, chunk):  # the outage: everything goes to the outbox
        items = []
        for i in range(start, min(n, start + chunk)):

            def build(seq: int, i: int = i) -> bytes:
                return (
                    f'{{"v":1,"id":"bench-{i}","seq":{seq},"ts":"2024-06-01T08:00:00+08:00",'
                    f'"site":"bench","gate":"gate1","type":"passage","payload":{body}}}'
                ).encode()

            items.append((topic, build, False, True))
        link.outbox.enqueue_many(items)
    t_enqueue = time.perf_counter() - t0
    t1 = time.perf_counter()
    link.start()
    while link.stats()["backlog"] > 0:
        time.sleep(0.01)
    t_drain = time.perf_counter() - t1
    stats = link.stats()
    link.stop(2)
    peak = monitor.stop()
    return {
        "enqueue_s": t_enqueue,
        "drain_s": t_drain,
        "rate": n / t_drain,
        "added_rss_mb": peak - rss0,
        "sent": stats["sent"],
    }


def run_raw(port: int, n: int, inflight: int) -> float:
    import json

    body = json.dumps(PASSAGE, ensure_ascii=False)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="raw", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(inflight)
    acked = [0]
    done = threading.Event()
    # Same window as the link, enforced here: paho's mids wrap at 65,535, so
    # queueing all N at once inside paho would collide.
    window = threading.Semaphore(inflight)

    def on_publish(*_a: object) -> None:
        acked[0] += 1
        window.release()
        if acked[0] >= n:
            done.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", port, 30)
    client.loop_start()
    t0 = time.perf_counter()
    for i in range(n):
        payload = f'{{"v":1,"id":"raw-{i}","seq":{i},"payload":{body}}}'.encode()
        window.acquire()
        client.publish("edged/bench/raw/passage", payload, qos=1)
    done.wait(600)
    dt = time.perf_counter() - t0
    client.disconnect()
    client.loop_stop()
    return n / dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--inflight", type=int, default=20, help="QoS 1 window (config max_inflight)")
    ap.add_argument("--quick", action="store_true", help="5,000 messages: a smoke test")
    args = ap.parse_args()
    n = 5_000 if args.quick else args.messages
    work = Path(tempfile.mkdtemp(prefix="edged-mqtt-bench-"))
    broker, port = start_broker(work)
    try:
        res = run_outbox(port, n, args.inflight, work)
        raw = run_raw(port, n, args.inflight)
    finally:
        broker.terminate()
        broker.wait(5)
        shutil.rmtree(work, ignore_errors=True)
    ok_rate = res["rate"] >= 2000
    ok_rss = res["added_rss_mb"] <= 80
    print(f"messages            {n}  (window {args.inflight}, payload ~{len(str(PASSAGE))} B)")
    print(f"enqueue (outage)    {res['enqueue_s']:.2f} s  ({n / res['enqueue_s']:.0f} msg/s)")
    print(
        f"drain via outbox    {res['drain_s']:.2f} s  {res['rate']:.0f} msg/s"
        f"  target >= 2000: {'OK' if ok_rate else 'MISSED'}"
    )
    print(f"baseline raw paho   {raw:.0f} msg/s (QoS 1, no outbox)")
    print(f"ratio outbox/raw    {res['rate'] / raw:.2f}")
    print(
        f"peak added RSS      {res['added_rss_mb']:.1f} MB  target <= 80: "
        f"{'OK' if ok_rss else 'MISSED'}"
    )
    emit(f"outbox drain ({n} messages)", res["rate"], "msg/s", ">= 2000")
    emit("raw paho QoS 1 (baseline)", raw, "msg/s")
    # The RSS target is stated for 100,000 queued messages.
    emit(f"outbox added RSS ({n} messages)", res["added_rss_mb"], "MB",
         "<= 80" if n >= 100_000 else None)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
