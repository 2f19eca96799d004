"""``edged hj212 decode|encode``: look at packets and build test packets by hand.

For the technician with a laptop at the gate: paste a line from a platform's
log to see what it says and why it is refused, or build a packet from JSON
and (with ``--send``) push it to a platform to test the link.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from dataclasses import replace
from datetime import datetime
from typing import TextIO

from edged.hj212 import sm4
from edged.hj212.codec import Hj212Error, Packet, decode, encode_all, flag_standard, version_flag
from edged.hj212.framing import PacketFramer

_EXAMPLE = (
    '{"QN": "now", "ST": "31", "CN": "2011", "PW": "123456", "MN": "66330300010100001001",'
    ' "Flag": 5, "CP": {"params": {"DataTime": "now"},'
    ' "factors": {"a34013": {"Rtd": 12.5, "Flag": "N"}}}}'
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("hj212", help="HJ 212 packets (2005/2017/2025): decode and encode")
    cmds = parser.add_subparsers(dest="hj212_cmd", required=True)
    dec = cmds.add_parser(
        "decode",
        help="decode packets, one per line, to JSON lines",
        description="Exit 1 if any packet is refused; the reasons go to stderr.",
    )
    dec.add_argument("file", nargs="?", default="-", help="file of packets, or - for stdin")
    dec.add_argument(
        "--lenient",
        action="store_true",
        help="accept wrong CRC, over-long packets, character-counted lengths, empty PW/MN and"
        " mis-spelt header keys, each with a warning",
    )
    dec.add_argument(
        "--version",
        choices=("2005", "2017", "2025"),
        help="expect this version of the standard: a packet whose Flag names another is refused",
    )
    dec.add_argument(
        "--sm4-key",
        metavar="HEX",
        action="append",
        default=[],
        help="HJ 212-2025 SM4 key (32 hex digits) to open encrypted CP; give it twice to try"
        " an old and a new key",
    )
    dec.set_defaults(func=decode_cmd)
    enc = cmds.add_parser(
        "encode",
        help="build packet(s) from JSON",
        description='Build from JSON (stdin or --json); "now" for QN or DataTime. '
        f"Example: {_EXAMPLE}",
    )
    enc.add_argument("--json", help="the packet as JSON (default: read stdin)")
    enc.add_argument("--send", metavar="HOST:PORT", help="also send it to a platform over TCP")
    enc.add_argument("--wait", type=float, default=5.0, help="seconds to wait for replies (--send)")
    enc.add_argument(
        "--version",
        choices=("2005", "2017", "2025"),
        help="set the Flag version bits (2017: 4, 2025: 8), keeping its reply/split bits;"
        " 2005 writes no QN and no Flag bits",
    )
    enc.add_argument(
        "--sm4-key",
        metavar="HEX",
        help="HJ 212-2025 SM4 key (32 hex digits): encrypt the CP of 2000-2999, 1014 and 3020",
    )
    enc.set_defaults(func=encode_cmd)


def decode_cmd(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        keys = [sm4.parse_key(k) for k in args.sm4_key]
    except sm4.Sm4Error as exc:
        print(f"hj212 decode: --sm4-key: {exc}", file=err)
        return 2
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else open(args.file, "rb").read()  # noqa: SIM115
    except OSError as exc:
        print(f"hj212 decode: cannot read {args.file}: {exc.strerror}", file=err)
        return 2
    bad = 0
    number = 0
    for line_no, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        number += 1
        try:
            packet = decode(line.strip(b" \t"), strict=not args.lenient, sm4_keys=keys)
            if args.version and packet.standard != args.version:
                raise Hj212Error(
                    f"Flag={packet.flag} is HJ 212-{packet.standard or '?'},"
                    f" not the {args.version} asked for with --version",
                    "Flag",
                )
        except Hj212Error as exc:
            bad += 1
            print(f"packet {number} (line {line_no}): refused: {exc}", file=err)
            continue
        for warning in packet.warnings:
            print(f"packet {number} (line {line_no}): warning: {warning}", file=err)
        print(json.dumps(packet.to_json(), ensure_ascii=False), file=out)
    if bad:
        print(f"{bad} of {number} packets refused", file=err)
    return 1 if bad else 0


def encode_cmd(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    text = args.json if args.json is not None else sys.stdin.read()
    try:
        key = sm4.parse_key(args.sm4_key) if args.sm4_key else None
    except sm4.Sm4Error as exc:
        print(f"hj212 encode: --sm4-key: {exc}", file=err)
        return 1
    try:
        packet = Packet.from_json(json.loads(text), now=datetime.now())
        if args.version:
            packet = with_version(packet, args.version)
        if key is not None and packet.standard != "2025":
            raise Hj212Error("--sm4-key needs an HJ 212-2025 packet (Flag 8/9, or --version 2025)")
        wires = encode_all(packet, sm4_key=key)
    except json.JSONDecodeError as exc:
        print(f"hj212 encode: not valid JSON: {exc}", file=err)
        return 1
    except Hj212Error as exc:
        print(f"hj212 encode: {exc}", file=err)
        return 1
    for wire in wires:
        out.write(wire.decode("utf-8"))
    out.flush()
    if args.send:
        return _send(args.send, wires, args.wait, out, err, [key] if key else [])
    return 0


def with_version(packet: Packet, version: str) -> Packet:
    """``packet`` with the Flag version bits of ``version`` (reply/split bits kept)."""
    if version == "2005":
        return (
            replace(packet, flag=None)
            if packet.flag is None
            else replace(packet, flag=packet.flag & 0x03)
        )
    low = (packet.flag or 0) & 0x03
    out = replace(packet, flag=version_flag(version) | low)
    assert flag_standard(out.flag) == version
    return out


def _send(
    target: str, wires: list[bytes], wait: float, out: TextIO, err: TextIO, keys: list[bytes]
) -> int:
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        print(f"hj212 encode: --send wants HOST:PORT, found {target!r}", file=err)
        return 1
    try:
        with socket.create_connection((host, int(port)), timeout=wait) as sock:
            for wire in wires:
                sock.sendall(wire)
            framer = PacketFramer()
            deadline = time.monotonic() + wait
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    break
                if not chunk:
                    break
                for raw in framer.feed(chunk):
                    try:
                        reply = json.dumps(decode(raw, sm4_keys=keys).to_json(), ensure_ascii=False)
                        print(f"reply: {reply}", file=err)
                    except Hj212Error as exc:
                        print(f"reply refused: {exc}: {raw!r}", file=err)
    except OSError as exc:
        print(f"hj212 encode: cannot send to {target}: {exc}", file=err)
        return 1
    return 0
