"""``edged status`` and ``edged simulate passage``: talk to the running daemon.

Both go through the daemon's local control socket, so they work at the gate
without network or broker.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from edged.app.config import DaemonConfig
from edged.app.control import request
from edged.config.load import DEFAULT_PATH, ENV_VAR, ConfigError, load_config
from edged.logs import print_stderr
from edged.push.clock import TOLERANCE_S, describe


def _socket(args: argparse.Namespace) -> Path:
    """``--socket``; else the config's data directory; else the installed default.

    ``edged status`` is what a technician types first, often on a box whose
    config is not where the shell expects: without ``--config`` or
    ``$EDGED_CONFIG`` and with no readable default file, it tries the socket
    of the installed daemon (``/var/lib/edged/state/control.sock``).
    """
    if getattr(args, "socket", None):
        return Path(args.socket)
    explicit = getattr(args, "config", None) or os.environ.get(ENV_VAR)
    try:
        data_dir = load_config(explicit).daemon.data_dir
    except ConfigError as exc:
        if explicit:
            raise
        data_dir = DaemonConfig().data_dir
        problem = exc.problems[0].message if exc.problems else str(exc)
        print_stderr(
            f"edged: config {DEFAULT_PATH}: {problem.split(':')[0]}; trying the default"
            f" socket under {data_dir}",
            level="warning",
        )
    return Path(data_dir) / "state" / "control.sock"


def _call(args: argparse.Namespace, payload: dict) -> dict | None:
    path = _socket(args)
    try:
        return request(path, payload)
    except OSError as exc:
        reason = (
            "no such socket"
            if isinstance(exc, FileNotFoundError)
            else "nothing listens on it"
            if isinstance(exc, ConnectionRefusedError)
            else "permission denied: run it with sudo, or as the edged user"
            if isinstance(exc, PermissionError)
            else str(exc)
        )
        print_stderr(
            f"edged: no daemon answers on {path} ({reason}).\n"
            "  Is the service running? systemctl status edged; journalctl -u edged -n 50\n"
            "  Another data directory? pass --config FILE or --socket PATH"
        )
        return None


def _fmt_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}d " if d else "") + f"{h:02d}:{m:02d}:{s:02d}"


def _na(value: Any, unit: str = "") -> str:
    return "unknown" if value is None else f"{value}{unit}"


def format_status(reply: dict[str, Any]) -> list[str]:
    """The health status as ``key: value`` lines a technician reads on a laptop."""
    site = reply.get("site") or {}
    lines = [
        f"site: {site.get('id')} {site.get('name') or ''}".rstrip()
        + f", gate {site.get('gate')} {site.get('gate_name') or ''}".rstrip(),
        f"uptime: {_fmt_uptime(reply.get('uptime_s'))}",
        f"passages: {reply.get('passages')}",
        f"alert level: {reply.get('alert_level') or 'none'}",
    ]
    for name, st in (reply.get("components") or {}).items():
        err = f" ({st['error']})" if st.get("error") else ""
        lines.append(f"component {name}: {st['state']}{err}")
    for name, lane in (reply.get("lanes") or {}).items():
        lines += _lane_lines(name, lane)
    inside = reply.get("in_plant")
    if inside is not None:
        shown = ", ".join(v["plate"] for v in inside.get("vehicles", [])[:10])
        more = inside["count"] - min(10, len(inside.get("vehicles", [])))
        lines.append(
            f"in plant: {inside['count']} vehicles"
            + (f" ({shown}{f' and {more} more' if more > 0 else ''})" if shown else "")
        )
    queues = reply.get("queues") or {}
    if queues.get("mqtt_outbox") is not None:
        out = reply.get("outbox") or {}
        conn = "connected" if out.get("connected") else "NOT connected"
        if out.get("connect_error"):
            conn += f": {out['connect_error']}"
        if out.get("connected") and out.get("listening") is False:
            conn += ", commands NOT subscribed: see mqtt_command_subscribe_refused"
        lines.append(f"queue mqtt outbox: {queues['mqtt_outbox']} ({conn})")
    for name, n in (queues.get("hj212_outbox") or {}).items():
        link = (reply.get("hj212") or {}).get(name) or {}
        conn = "connected" if link.get("connected") else "NOT connected"
        lines.append(f"queue hj212 {name}: {n} ({conn})")
        if "realtime" in link:
            lines.append(_hj212_line(name, link))
    recv = reply.get("receiver")
    if recv:
        refused = ", ".join(f"{k} {v}" for k, v in sorted((recv.get("refused") or {}).items()))
        lines.append(
            f"receiver {recv.get('listening') or 'NOT listening'}: {recv.get('in_flight')} open,"
            f" spool {recv.get('spool_mb')} MB" + (f", refused: {refused}" if refused else "")
        )
    clips = reply.get("clips")
    if clips:
        held = clips.get("days_held")
        say = (
            "unknown until clips are written"
            if held is None
            else f"{held} days at the current rate"
        )
        short = f", SHORT of the {clips['retention_days']} days kept" if clips.get("short") else ""
        lines.append(f"clips: {clips['clips']} ({clips['mb']} MB), disk holds {say}{short}")
    meters = reply.get("meters") or {}
    for name, state in (reply.get("datalogger") or {}).items():
        lines.append(_meter_line(name, state, meters.get(name)))
    disk = reply.get("disk")
    if disk:
        lines.append(
            f"disk {disk['path']}: {disk['free_mb']:.0f} MB free of {disk['total_mb']:.0f} MB"
            f" ({disk['used_pct']}% used)"
        )
    if "cpu_temp_c" in reply:
        lines.append(f"cpu temperature: {_na(reply['cpu_temp_c'], ' °C')}")
    mem = reply.get("memory")
    if isinstance(mem, dict):
        releases = mem.get("model_memory_releases")
        given = "" if releases is None else f", plate models' memory given back {releases} times"
        lines.append(f"memory: {mem.get('resident_mb')} MB resident{given}")
    clock = reply.get("clock")
    if clock:
        ntp = clock.get("ntp_synchronized")
        lines.append(
            "clock ntp: "
            + ("synchronised" if ntp else "unknown" if ntp is None else "NOT synchronised")
        )
        if clock.get("platform_offset_s") is not None:
            lines.append(
                f"clock platform offset: {clock['platform_offset_s']} s"
                f" (set {clock['platform_set_at']})"
            )
    for chain, head in (reply.get("ledger_head") or {}).items():
        lines.append(f"ledger {chain}: seq {head['seq']} {str(head['hash'])[:16]}…")
    if "device_key" in reply:
        key = reply["device_key"]
        lines.append(
            f"device key: {key} (edged export verify --key)" if key else "device key: none"
        )
    return lines


def _frames(cam: dict[str, Any]) -> str:
    """How the frame thread decodes, and how old its frames are (absent in older replies)."""
    if "decode" not in cam:
        return ""
    out = f"; {cam['decode']}, {cam.get('decoded_fps')} decoded/s"
    if cam.get("frame_age_ms") is not None:
        out += f", newest frame {cam['frame_age_ms']} ms old"
    if cam.get("passage_frame_age_ms") is not None:
        out += f", passage frames p95 {cam['passage_frame_age_ms']} ms after arrival"
    if cam.get("certificate_expires"):
        out += f"; https certificate ends {cam['certificate_expires'][:10]}"
    return out


def _meter_line(name: str, state: str, m: dict[str, Any] | None) -> str:
    """``meter NAME: STATE``, then the collection success behind it and the last error."""
    line = f"meter {name}: {state}"
    if not m or not m.get("polls"):
        return line
    line += f", {m['ok']} of {m['polls']} polls answered ({m['success_rate']:.1%}"
    if m.get("recent_success_rate") is not None:
        line += f", last 100: {m['recent_success_rate']:.1%}"
    line += ")"
    if state != "ok" and m.get("last_error"):
        line += f", last error: {m['last_error']}"
    return line


def _hj212_line(name: str, link: dict[str, Any]) -> str:
    """What one platform gets how often: each may set its own intervals (CN 1062/1064)."""
    last = link.get("last_realtime") or "never"
    realtime = (
        f"real-time on every {link.get('rtd_interval_s')} s (last sent {last})"
        if link.get("realtime")
        else f"real-time off (last sent {last})"
    )
    return f"hj212 {name}: {realtime}, minute data every {link.get('min_interval_min')} min"


def _lane_lines(name: str, lane: dict[str, Any]) -> list[str]:
    """One lane: its direction and counts, then its camera, reads and devices, indented."""
    lines = [
        f"lane {name}: {lane.get('direction')}, {lane.get('passages')} passages,"
        f" queue {lane.get('queue')}"
    ]
    cam = lane.get("camera")
    if isinstance(cam, dict) and "pushes" in cam:
        err = f" ({cam['error']})" if cam.get("error") and cam.get("state") != "ok" else ""
        counts = ", ".join(f"{k} {v}" for k, v in sorted(cam["pushes"].items())) or "none yet"
        off = cam.get("clock_offset_s")
        clock = f"; clock {describe(off)}" if off and abs(off) > TOLERANCE_S else ""
        lines.append(
            f"  camera: {cam.get('state')}, {cam.get('source')} pushes: {counts}{err}{clock}"
        )
    elif isinstance(cam, dict):
        err = f" ({cam['error']})" if cam.get("error") and cam.get("state") != "ok" else ""
        source = f"{cam['source']}, " if cam.get("source") else ""
        lines.append(
            f"  camera: {cam.get('state')}, {source}{cam.get('fps')} fps{err}{_frames(cam)}"
        )
    else:
        lines.append("  camera: none")
    read = lane.get("last_read")
    lines.append(
        f"  last read: {read['plate']} conf {read['confidence']} ({read['source']}) at {read['time']}"
        if read
        else "  last read: none yet"
    )
    last = lane.get("last_passage")
    lines.append(
        f"  last passage: seq {last['seq']} {last['plate'] or '-'} {last['direction']}"
        f" {last['decision']}" + (f" at {last['time']}" if last.get("time") else "")
        if last
        else "  last passage: none yet"
    )
    if lane.get("rfid"):
        lines.append(f"  rfid: {lane['rfid']}")
    scale = lane.get("scale")
    if scale is not None:
        kg = scale.get("stable_kg")
        lines.append(f"  scale: {'empty or moving' if kg is None else f'{kg} kg stable'}")
    video = lane.get("video")
    if video:
        where = f"{video['recorder']} channel {video['channel']}" if video.get("recorder") else "-"
        clips = video.get("clips")
        tail = ""
        if clips:
            err = f" ({clips['error']})" if clips.get("error") else ""
            tail = (
                f"; clips {clips['state']}{err}, {clips['clips']} written, {clips['failed']}"
                f" failed, {clips['buffered_s']} s buffered"
            )
        lines.append(f"  video: {where}{tail}")
    disp = lane.get("display")
    if disp:
        err = f" ({disp['error']})" if disp.get("error") else ""
        lines.append(
            f"  display: {disp['type']} {disp['state']}{err}, {disp['shown']} screens,"
            f" {disp['spoken']} spoken, {disp['failures']} failures, {disp['dropped']} dropped"
        )
    return lines


def _status(args: argparse.Namespace) -> int:
    reply = _call(args, {"cmd": "status"})
    if reply is None:
        return 1
    if args.json:
        print(json.dumps(reply, ensure_ascii=False, indent=2, default=str))
    else:
        print("\n".join(format_status(reply)))
    return 0 if reply.get("ok") else 1


def _simulate(args: argparse.Namespace) -> int:
    payload = {
        "cmd": "simulate_passage",
        "plate": args.plate,
        "rfid": args.rfid or [],
        "direction": args.direction,
        "lane": args.lane,
    }
    reply = _call(args, payload)
    if reply is None:
        return 1
    if not reply.get("ok"):
        print(f"FAIL: {reply.get('error')}", file=sys.stderr)
        return 1
    print(
        f"seq {reply['seq']} lane {reply['lane']} {reply['direction']}: {reply['plate'] or '-'}"
        f" {reply['decision']} ({reply['reason']}: {reply['text']})"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("status", help="health of the running daemon")
    s.add_argument("--json", action="store_true", help="the whole status as one JSON object")
    s.add_argument(
        "--socket",
        help="control socket (default: <data_dir>/state/control.sock of the config, else"
        " /var/lib/edged/state/control.sock)",
    )
    s.set_defaults(func=_status)
    sim = sub.add_parser(
        "simulate", help="inject a passage into the running daemon (acceptance tests)"
    )
    ssub = sim.add_subparsers(dest="what", required=True, metavar="WHAT")
    p = ssub.add_parser("passage", help="a vehicle with this plate (and tags) arrives")
    p.add_argument("--plate", help="plate as read, e.g. 冀B12345 (omit: plate unread)")
    p.add_argument("--rfid", action="append", help="tag EPC read with it (repeatable)")
    p.add_argument("--direction", choices=("in", "out"))
    p.add_argument("--lane", help="the lane it arrives at (needed on a box with several)")
    p.add_argument("--socket", help="control socket (default: <data_dir>/state/control.sock)")
    p.set_defaults(func=_simulate)
