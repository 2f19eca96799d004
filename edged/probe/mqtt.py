"""``edged probe mqtt``: connect, subscribe, publish and time a probe message."""

from __future__ import annotations

import queue
import socket
import ssl
import threading
import time
import uuid
from typing import Any, TextIO

from edged.probe.output import ProbeOutput

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
