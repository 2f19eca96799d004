"""``edged probe hj212``: each platform sent a packet, its 9014 reply waited for."""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from datetime import datetime
from typing import Any, TextIO

from edged.probe.output import ProbeOutput, listed, pick


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
    platforms, missing = pick(hc.platforms, names)
    if missing:
        return v.failed(
            f"no HJ 212 platform named {', '.join(missing)}",
            f"configured platforms: {listed(hc.platforms)}",
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
        result = _hj212_one(p, v, timeout or p.timeout_s, cn)
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
        sock = socket.create_connection((p.host, p.port), timeout=p.connect_timeout_s)
    except ConnectionRefusedError:
        return (
            f"{p.name}: connection refused by {where}",
            "check host and port in [[hj212.platforms]] and that the platform's receiver runs",
        )
    except socket.gaierror as exc:
        return f"{p.name}: cannot resolve {p.host}: {exc}", "check the host name and DNS"
    except TimeoutError:
        return (
            f"{p.name}: no TCP answer from {where} within {p.connect_timeout_s:g} s",
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
