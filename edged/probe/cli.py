"""``edged probe camera|gpio|modbus|mqtt|hj212`` (and ``rfid|scale``): installation checks.

Commissioning a gate is a day of "is it the wiring, the address or the
config?". Each probe takes its settings from the same config file the
daemon will use (flags override single values), goes through the same
drivers, prints what it sees, and ends with one ``PASS``/``FAIL`` line that
names the likely fault. Nothing is switched unless asked: the barrier relay
is pulsed only with ``probe gpio --pulse barrier``.

The serial devices (``rfid``, ``scale``) live in :mod:`edged.probe.serial`;
this module owns the ``probe`` command group and the other devices.
"""

from __future__ import annotations

import argparse
import queue
import socket
import ssl
import sys
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any, TextIO

from edged.probe.output import ProbeOutput, lane_device, probe_config

# -- camera --------------------------------------------------------------------


def probe_camera(
    cc: Any,
    out: TextIO,
    *,
    frames: int = 20,
    timeout: float | None = None,
    open_timeout: float = 20.0,
    read: bool = False,
    lpr: Any = None,
    save: str | None = None,
) -> int:
    """Open the camera, take ``frames`` frames, report size and measured fps."""
    from drivers import config as driver_config
    from drivers.camera.resilient import ResilientSource

    v = ProbeOutput(out)
    if cc.type in ("none", "mock"):
        what = "no camera" if cc.type == "none" else "frames handed in by a program, no camera"
        return v.failed(
            f"camera type is {cc.type} ({what})",
            "set the lane's camera type to opencv, picamera2 or folder to probe a camera",
        )
    timeout = timeout or cc.read_timeout_s
    src = driver_config.build(cc)
    cam = ResilientSource(src, read_timeout=timeout)
    v.line(f"opening {src.name} (frame timeout {timeout:g} s)")
    opener = threading.Thread(target=cam.open, name="probe-camera-open", daemon=True)
    opener.start()
    opener.join(open_timeout)
    if opener.is_alive():
        return v.failed(
            f"{src.name} did not open within {open_timeout:g} s",
            "check the camera's power and network, the device path or rtsp:// URL,"
            " user and password",
        )
    if cam.state != "ok":
        reason = cam.last_error.removeprefix("open failed: ") or "unknown error"
        hint = (
            ""
            if "check" in reason or "install" in reason
            else "check the camera's type, device (or folder) in the config"
        )
        return v.failed(f"cannot open {src.name}: {reason}", hint)
    times: list[float] = []
    frame = None
    try:
        for i in range(frames):
            got = cam.read()
            if got is None:
                return v.failed(
                    f"frame {i + 1} of {frames} from {src.name} did not arrive"
                    f" ({cam.last_error or 'no frame'})",
                    "check the camera's power, cable or network; for RTSP try the sub-stream"
                    " or a lower bit rate",
                )
            times.append(time.monotonic())
            frame = got
    finally:
        cam.close()
    assert frame is not None
    h, w = frame.shape[:2]
    span = times[-1] - times[0]
    fps = (len(times) - 1) / span if len(times) > 1 and span > 0 else 0.0
    v.line(f"{len(times)} frames {w}x{h}, {fps:.1f} fps measured (configured {cc.fps:g})")
    asked = (getattr(cc, "width", None), getattr(cc, "height", None))
    if None not in asked and (w, h) != asked:
        v.line(f"note: the camera delivers {w}x{h}; the config asks {asked[0]}x{asked[1]}")
    if len(times) > 1 and fps < cc.fps * 0.5:
        v.line(
            f"note: {fps:.1f} fps is less than half of camera.fps = {cc.fps:g};"
            " check the camera's frame rate and the network"
        )
    summary = f"{src.name}: {len(times)} frames {w}x{h} at {fps:.1f} fps"
    if save:
        import cv2

        if not cv2.imwrite(save, frame):
            return v.failed(
                f"{summary}, but the frame could not be saved to {save}",
                "check that the directory exists and the name ends in .jpg or .png",
            )
        v.line(f"saved the last frame to {save}")
    if read:
        from edged.lpr import ModelError, PlateRecognizer

        try:
            recognizer = PlateRecognizer(lpr)
        except ModelError as exc:
            return v.failed(f"{summary}, but the plate models did not load", str(exc))
        plates = recognizer.read(frame)
        for p in plates:
            note = "" if p.valid_syntax else f" (not a valid plate: {p.syntax_error})"
            width = plate_width(p.corners)
            v.line(
                f"plate {p.text} confidence {p.confidence:.2f} colour {p.colour} "
                f"width {width:.0f} px{note}"
            )
            if width < SMALL_PLATE_PX:
                v.line(
                    f"  plate is small: under {SMALL_PLATE_PX} px wide the recogniser finds it "
                    "only in its second pass, and under about 110 px maybe not at all; zoom "
                    "the lens in or set [lpr] roi around the lane (docs/LPR.md)"
                )
        if plates:
            summary += "; plates read: " + ", ".join(p.text for p in plates)
        else:
            v.line("no plate found in the last frame: put a plate in view to check aim and focus")
            summary += "; no plate in view"
    return v.passed(summary)


#: Plate width (frame pixels) from which aiming is comfortable: narrower plates are
#: found by the recogniser's second pass only, and under ~110 px not reliably.
SMALL_PLATE_PX = 120


def plate_width(corners: tuple[tuple[float, float], ...]) -> float:
    """Mean length of a plate's top and bottom edges (corners TL, TR, BR, BL)."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = corners
    return (((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5 + ((x2 - x3) ** 2 + (y2 - y3) ** 2) ** 0.5) / 2


# -- GPIO ----------------------------------------------------------------------

_INPUT_MEANING = {
    "ground_loop": "vehicle on the loop",
    "inner_loop": "vehicle on the inner loop",
    "ir_beam": "beam broken",
    "barrier_up": "barrier up",
}


def probe_gpio(gc: Any, out: TextIO, *, pulse: str | None = None, watch: float = 0.0) -> int:
    """Show inputs and outputs; pulse one output only when asked."""
    from gpiozero import Device
    from gpiozero.exc import GPIOZeroError

    from drivers.gpio import GateIO

    v = ProbeOutput(out)
    how = "set by the caller"
    if Device.pin_factory is None:  # chosen here, explicitly: no fallback chain, no warnings
        from edged.app.pins import PinFactoryError, open_pin_factory

        try:
            Device.pin_factory, choice = open_pin_factory()
        except PinFactoryError as exc:
            return v.failed(exc.message, exc.hint)
        chip = getattr(Device.pin_factory, "chip", None)
        how = f"{choice.name}, chosen by {choice.source}" + (
            f", chip {chip}" if chip is not None else ""
        )
        if choice.board:
            how += f", board {choice.board}"
    try:
        io = GateIO(gc)
    except (GPIOZeroError, OSError, RuntimeError) as exc:
        return v.failed(
            f"GPIO pins could not be opened: {type(exc).__name__}: {exc}",
            "stop the daemon first (sudo systemctl stop edged) if it holds the pins, check"
            " the pin numbers in [gpio] and that the user is in the gpio group",
        )
    try:
        v.line(f"pin factory: {type(Device.pin_factory).__name__} ({how})")
        inputs = (
            ("ground_loop", gc.ground_loop, io.loop),
            ("inner_loop", gc.inner_loop, io.inner_loop),
            ("ir_beam", gc.ir_beam, io.beam),
            ("barrier_up", gc.barrier_up, io.barrier_up),
        )

        def state(name: str, dev: Any) -> str:
            return f"ACTIVE ({_INPUT_MEANING[name]})" if dev.is_active else "inactive"

        for name, pin, dev in inputs:
            if dev is None:
                v.line(f"input  {name:<14} not fitted")
            else:
                v.line(f"input  {name:<14} BCM{pin.pin:<3} {state(name, dev)}")
        for name in ("barrier_open", "barrier_close", "alarm", "allowed_lamp"):
            pin = getattr(gc, name).pin
            v.line(f"output {name:<14} " + ("not fitted" if pin is None else f"BCM{pin:<3} off"))
        if watch > 0:
            v.line(f"watching inputs for {watch:g} s: drive over the loop, break the beam")
            last = {n: d.is_active for n, _, d in inputs if d is not None}
            t0 = time.monotonic()
            while time.monotonic() - t0 < watch:
                for name, _, dev in inputs:
                    if dev is not None and dev.is_active != last[name]:
                        last[name] = dev.is_active
                        v.line(f"{time.monotonic() - t0:7.2f}s {name} {state(name, dev)}")
                time.sleep(0.02)
        done = ""
        output = {"barrier": "barrier_open", "close": "barrier_close", "lamp": "allowed_lamp"}
        name = output.get(pulse or "", pulse or "")
        if pulse and getattr(gc, name).pin is None:
            return v.failed(f"{name} is not fitted (no pin)", f"set gpio.{name}.pin")
        if pulse:
            v.line(f"switching {name} now: watch it")
        if pulse == "barrier":
            io.open_barrier()
            done = f"; barrier_open pulsed {gc.pulse_ms} ms (the arm should have gone up)"
        elif pulse == "close":
            if not io.close_barrier():
                return v.failed(
                    "close refused: the loop or beam reports a vehicle",
                    "clear the lane (or check the loop/beam wiring if it is empty)",
                )
            done = f"; barrier_close pulsed {gc.pulse_ms} ms (the arm should have come down)"
        elif pulse == "alarm":
            seconds = min(gc.alarm_seconds, 2.0)
            io.alarm(seconds)
            time.sleep(seconds + 0.05)
            done = f"; alarm on for {seconds:g} s (light/buzzer should have come on)"
        elif pulse == "lamp":
            io.allowed_lamp(True)
            time.sleep(1.0)
            io.allowed_lamp(False)
            done = "; allowed lamp on for 1 s"
        present = " (a vehicle is reported present)" if io.vehicle_present() else ""
    finally:
        io.close()
    return v.passed(f"GPIO opened, inputs read{present}{done}")


# -- Modbus --------------------------------------------------------------------


def _pick(items: list[Any], names: list[str] | None) -> tuple[list[Any], list[str]]:
    """The items named (a technician may probe a disabled one), else every enabled one;
    and the names that are not configured at all."""
    if not names:
        return [i for i in items if i.enabled], []
    known = {i.name for i in items}
    return [i for i in items if i.name in names], [n for n in names if n not in known]


def _names(items: list[Any]) -> str:
    return ", ".join(sorted(i.name for i in items)) or "none"


_FLAG_WORDS = {"N": "ok", "T": "over limit", "D": "device error", "B": "no answer"}


def probe_modbus(
    mc: Any, out: TextIO, *, names: list[str] | None = None, overrides: dict[str, Any] | None = None
) -> int:
    """Read every configured point of each device once and print the values."""
    from edged.datalogger.poller import Poller
    from edged.datalogger.registers import ModbusConfig, point_key

    v = ProbeOutput(out)
    devices, missing = _pick(mc.devices, names)
    if missing:
        return v.failed(
            f"no Modbus device named {', '.join(missing)}",
            f"configured devices: {_names(mc.devices)}",
        )
    if not devices:
        return v.failed(
            "no Modbus devices configured",
            "add [[modbus.devices]] with their register maps (see config/ for common meters)",
        )
    devices = [replace(d, enabled=True, **(overrides or {})) for d in devices]
    poller = Poller(ModbusConfig(poll_groups=mc.poll_groups, devices=devices), lambda s: None)
    failed: list[str] = []
    values = 0
    hint = set()
    try:
        for d in devices:
            where = (
                f"tcp://{d.host}:{d.port}"
                if d.transport == "tcp"
                else f"{d.serial_port} {d.baudrate} {d.parity}8{d.stopbits}"
            )
            v.line(f"device {d.name}: {where} unit {d.unit}, {len(d.points)} points")
            if not d.points:
                failed.append(f"{d.name} (no points in its register map)")
                continue
            points = {point_key(d.name, p): p for p in d.points}
            t0 = time.monotonic()
            samples = poller.poll_device(d)
            ms = (time.monotonic() - t0) * 1000
            for s in samples:
                p = points[s.key]
                val = "-" if s.value is None else f"{s.value:g}"
                v.line(f"  {p.name:<18} {val:>14} {p.unit:<6} {s.flag} {_FLAG_WORDS[s.flag]}")
                values += s.value is not None
            st = poller.stats()[d.name]
            if st["state"] == "comm_fault":
                v.line(f"device {d.name}: NO ANSWER ({st['last_error']})")
                failed.append(f"{d.name} (no answer)")
                hint.add(
                    "check power, RS485 A/B wiring, baud rate/parity, unit id, or the"
                    " gateway's IP and port"
                )
            elif st["state"] == "device_fault":
                v.line(f"device {d.name}: ANSWERED WITH AN ERROR ({st['last_error']})")
                failed.append(f"{d.name} ({st['last_error']})")
                hint.add("check addresses, function codes and types against the meter manual")
            else:
                v.line(f"device {d.name}: ok in {ms:.0f} ms")
    finally:
        poller.stop()
    if failed:
        return v.failed(
            f"{len(failed)} of {len(devices)} Modbus devices failed: {', '.join(failed)}",
            "; ".join(sorted(hint)) or "check the register map",
        )
    return v.passed(f"{len(devices)} Modbus devices answered, {values} values read")


# -- MQTT ----------------------------------------------------------------------

_FALLBACK = -1


def probe_mqtt(mc: Any, site: str, gate: str, out: TextIO, *, timeout: float = 10.0) -> int:
    """Connect as configured, publish on ``.../probe`` and time the message's return."""
    from edged.mqtt.topics import Topics

    v = ProbeOutput(out)
    topic = f"{Topics(mc.prefix, site, gate).base}/probe"
    # never the daemon's own client id: the broker would drop the running daemon
    client_id = (mc.client_id or f"edged-{site}-{gate}") + "-probe"
    v.line(
        f"broker {mc.host}:{mc.port}, tls {'on' if mc.tls else 'off'},"
        f" user {mc.username or '(none)'}, client id {client_id}"
    )
    versions = ["5", "3.1.1"] if mc.protocol == "auto" else [mc.protocol]
    for version in versions:
        rc = _mqtt_try(mc, version, client_id, topic, timeout, site, gate, v)
        if rc != _FALLBACK:
            return rc
        v.line("the broker refused MQTT 5; trying MQTT 3.1.1 (protocol = auto)")
    return v.failed("the broker refused both MQTT 5 and 3.1.1", "check the broker's version")


def _mqtt_refusal_hint(rc: Any) -> str:
    text = str(rc).lower()
    if "authori" in text or "user" in text or "password" in text:
        return "check mqtt.username and mqtt.password and the broker's user list and ACL"
    if "identifier" in text:
        return "check mqtt.client_id (the broker refuses it)"
    if "unavailable" in text or "busy" in text:
        return "the broker is not ready; try again and check its log"
    return "check the broker's log for why it refused this client"


def _mqtt_try(
    mc: Any,
    version: str,
    client_id: str,
    topic: str,
    timeout: float,
    site: str,
    gate: str,
    v: ProbeOutput,
) -> int:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from edged.mqtt.client import fallback_needed
    from edged.mqtt.topics import build_envelope, encode, new_id, now_iso

    v5 = version == "5"
    kwargs: dict[str, Any] = {
        "client_id": client_id,
        "protocol": mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
    }
    if not v5:
        kwargs["clean_session"] = True
    client = mqtt.Client(CallbackAPIVersion.VERSION2, **kwargs)
    client.connect_timeout = timeout
    if mc.username:
        client.username_pw_set(mc.username, mc.password or None)
    if mc.tls:
        try:
            client.tls_set(
                ca_certs=mc.ca_file or None,
                certfile=mc.cert_file or None,
                keyfile=mc.key_file or None,
            )
        except (OSError, ssl.SSLError, ValueError) as exc:
            return v.failed(
                f"cannot load the TLS files: {exc}",
                "check mqtt.ca_file, mqtt.cert_file and mqtt.key_file",
            )
    connack: dict[str, Any] = {}
    connected, subscribed = threading.Event(), threading.Event()
    messages: queue.Queue[tuple[float, bytes]] = queue.Queue()

    def on_connect(_c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        connack["rc"] = rc
        connected.set()

    def on_subscribe(_c: Any, _u: Any, _mid: int, rcs: Any, _p: Any) -> None:
        connack["sub"] = list(rcs)
        subscribed.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = lambda _c, _u, m: messages.put((time.monotonic(), bytes(m.payload)))
    where = f"{mc.host}:{mc.port}"
    t0 = time.monotonic()
    try:
        client.connect(mc.host, mc.port, mc.keepalive_s)
    except ConnectionRefusedError:
        return v.failed(
            f"connection refused by {where}",
            "check mqtt.host and mqtt.port, that the broker runs and listens there,"
            " and the firewall",
        )
    except socket.gaierror as exc:
        return v.failed(f"cannot resolve {mc.host}: {exc}", "check mqtt.host and the DNS setting")
    except (ssl.SSLError, ssl.CertificateError) as exc:
        return v.failed(
            f"TLS handshake with {where} failed: {exc}",
            "check mqtt.ca_file, the broker certificate's name and the board's clock",
        )
    except TimeoutError:
        return v.failed(
            f"no answer from {where} within {timeout:g} s",
            "check the network (4G modem, VPN), mqtt.host, mqtt.port and the firewall",
        )
    except OSError as exc:
        return v.failed(f"cannot reach {where}: {exc}", "check the network and mqtt.host")
    client.loop_start()
    try:
        if not connected.wait(timeout):
            return v.failed(
                f"{where} accepted TCP but sent no MQTT answer within {timeout:g} s",
                "check that the port speaks MQTT and mqtt.tls matches it (8883 is usually TLS)",
            )
        rc = connack["rc"]
        if rc.is_failure:
            if fallback_needed(mc.protocol, v5, rc.value):
                return _FALLBACK
            return v.failed(
                f"broker {where} refused the connection: {rc} (reason code {rc.value})",
                _mqtt_refusal_hint(rc),
            )
        connect_ms = (time.monotonic() - t0) * 1000
        v.line(f"connected with MQTT {version} in {connect_ms:.0f} ms")
        client.subscribe(topic, qos=1)
        if not subscribed.wait(timeout):
            return v.failed(
                f"no answer to the subscription within {timeout:g} s", "check the broker"
            )
        refused = [r for r in connack["sub"] if getattr(r, "is_failure", False)]
        if refused:
            return v.failed(
                f"the broker refused the subscription to {topic}: {refused[0]}",
                f"the broker's ACL must let this user read and write {topic.rsplit('/', 1)[0]}/#",
            )
        nonce = uuid.uuid4().hex
        body = encode(
            build_envelope(
                msg_id=new_id(),
                seq=0,
                ts=now_iso(),
                site=site,
                gate=gate,
                type="probe",
                payload={"nonce": nonce},
            )
        )
        t_pub = time.monotonic()
        client.publish(topic, body, qos=1)
        v.line(f"published a probe message on {topic}")
        deadline = t_pub + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                t_got, data = messages.get(timeout=max(left, 0.001))
            except queue.Empty:
                return v.failed(
                    f"the probe message did not come back within {timeout:g} s",
                    "the broker's ACL must let this user publish and subscribe under"
                    f" {topic.rsplit('/', 1)[0]}/#",
                )
            if nonce.encode() in data:
                break
        rtt_ms = (t_got - t_pub) * 1000
        return v.passed(
            f"MQTT {version} broker {where}: connected in {connect_ms:.0f} ms,"
            f" round trip {rtt_ms:.0f} ms on {topic}"
        )
    finally:
        client.disconnect()
        client.loop_stop()


# -- HJ 212 --------------------------------------------------------------------


def probe_hj212(
    hc: Any,
    out: TextIO,
    *,
    names: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    timeout: float | None = None,
    cn: str = "2011",
) -> int:
    """Send each platform one packet asking for a reply and wait for its 9014."""
    v = ProbeOutput(out)
    platforms, missing = _pick(hc.platforms, names)
    if missing:
        return v.failed(
            f"no HJ 212 platform named {', '.join(missing)}",
            f"configured platforms: {_names(hc.platforms)}",
        )
    if not platforms:
        return v.failed(
            "no HJ 212 platforms configured",
            "add [[hj212.platforms]] with host, port, mn and pw as the platform operator gave them",
        )
    platforms = [replace(p, **(overrides or {})) for p in platforms]
    failed: list[tuple[str, str]] = []
    rtts = []
    for p in platforms:
        result = _hj212_one(p, v, timeout or p.timeout, cn)
        if isinstance(result, float):
            rtts.append(f"{p.name} {result:.0f} ms")
        else:
            failed.append(result)
            if len(platforms) > 1:
                v.line(f"platform {p.name}: {result[0]}")
    if failed:
        if len(failed) == 1 and len(platforms) == 1:
            return v.failed(*failed[0])
        reasons = "; ".join(r for r, _ in failed)
        return v.failed(
            f"{len(failed)} of {len(platforms)} HJ 212 platforms failed: {reasons}",
            "; ".join(sorted({h for _, h in failed})),
        )
    return v.passed("HJ 212 9014 reply from " + ", ".join(rtts))


def _hj212_one(p: Any, v: ProbeOutput, timeout: float, cn: str) -> float | tuple[str, str]:
    """Round trip in ms, or (reason, what to check)."""
    from edged.hj212.codec import (
        FLAG_REPLY,
        Cp,
        Hj212Error,
        Packet,
        decode,
        encode_all,
        make_qn,
        version_flag,
    )
    from edged.hj212.framing import PacketFramer

    where = f"{p.host}:{p.port}"
    v.line(f"platform {p.name}: {where} MN {p.mn} ST {p.st}")
    try:
        sock = socket.create_connection((p.host, p.port), timeout=p.connect_timeout)
    except ConnectionRefusedError:
        return (
            f"{p.name}: connection refused by {where}",
            "check host and port in [[hj212.platforms]] and that the platform's receiver runs",
        )
    except socket.gaierror as exc:
        return f"{p.name}: cannot resolve {p.host}: {exc}", "check the host name and DNS"
    except TimeoutError:
        return (
            f"{p.name}: no TCP answer from {where} within {p.connect_timeout:g} s",
            "check the network (4G modem, APN), the firewall and the platform address",
        )
    except OSError as exc:
        return f"{p.name}: cannot reach {where}: {exc}", "check the network and the address"
    with sock:
        now = datetime.now()
        qn = make_qn(now)
        flag = version_flag(getattr(p, "version", "2017")) | FLAG_REPLY
        keys = [bytes.fromhex(p.sm4_key)] if getattr(p, "sm4_key", "") else []
        packet = Packet(
            cn=cn, mn=p.mn, pw=p.pw, st=p.st, qn=qn, flag=flag, cp=Cp.build({"DataTime": now})
        )
        no_reply = (
            "check that mn and pw match what the platform registered for this logger"
            " (many platforms ignore unknown MNs)"
        )
        closed = f"{p.name}: the platform closed the connection without a reply"
        t_sent = time.monotonic()
        try:
            sock.sendall(b"".join(encode_all(packet, sm4_key=keys[0] if keys else None)))
        except ConnectionError:
            return closed, no_reply
        except OSError as exc:
            return f"{p.name}: sending failed: {exc}", "check the network and the platform"
        v.line(f"  sent CN {cn} QN {qn} Flag={flag} (reply wanted)")
        framer = PacketFramer()
        while True:
            left = t_sent + timeout - time.monotonic()
            if left <= 0:
                return f"{p.name}: no 9014 reply within {timeout:g} s", no_reply
            sock.settimeout(left)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            except ConnectionError:  # reset: closed while our packet was on its way
                return closed, no_reply
            except OSError as exc:
                return f"{p.name}: connection lost: {exc}", no_reply
            if not data:
                return closed, no_reply
            for raw in framer.feed(data):
                try:
                    reply = decode(raw, sm4_keys=keys)
                except Hj212Error as exc:
                    return (
                        f"{p.name}: the platform answered with a malformed packet: {exc}",
                        "check that the port is the platform's HJ 212 receiver",
                    )
                v.line(f"  received CN {reply.cn} QN {reply.qn} {reply.cp.text()[:80]}")
                if reply.qn != qn:
                    continue
                if reply.cn == "9014":
                    return (time.monotonic() - t_sent) * 1000
                if reply.cn == "9011" and reply.cp.params.get("QnRtn", "1") != "1":
                    return (
                        f"{p.name}: the platform refused the packet"
                        f" (QnRtn={reply.cp.params.get('QnRtn')})",
                        "QnRtn 3 = wrong PW, 4 = wrong MN, 5 = wrong ST: check [[hj212.platforms]]",
                    )
            if framer.garbage_bytes:
                return (
                    f"{p.name}: the platform sent {framer.garbage_bytes} bytes that are not"
                    " HJ 212 packets",
                    "check that the port is the platform's HJ 212 receiver, not another service",
                )


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
    )


def _gpio(args: argparse.Namespace) -> int:
    out = ProbeOutput(sys.stdout)
    lane, gc = lane_device(probe_config(args, out), "gpio", args.lane)
    out.line(f"lane: {lane}")
    return probe_gpio(gc, sys.stdout, pulse=args.pulse, watch=args.watch)


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
        overrides["timeout_seconds"] = args.timeout
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
