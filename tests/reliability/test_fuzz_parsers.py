"""Every parser fuzzed for a bounded time: a result or its own error, never a crash.

Parsers read what cables, platforms, backends and technicians send. Each test
starts from valid inputs built with the project's own encoders (and, for HJ
212, real packets from other implementations when the shared data is
present), mutates them (see :mod:`tests.reliability.fuzzing`) and checks the
parser answers with a result or its documented refusal. Framed byte streams
are also checked for resync: garbage between valid frames must not lose the
valid frames that follow. ``EDGED_FUZZ_SECONDS`` runs each parser longer.
"""

from __future__ import annotations

import contextlib
import json
import queue
import random
import re
import threading
import time
import tomllib
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest

from drivers import config as driver_config
from drivers.rfid.asciihex import AsciiHexParser
from drivers.rfid.r2000 import (
    R2000Parser,
    R2000Variant,
    cmd_get_firmware_version,
    cmd_real_time_inventory,
    cmd_set_work_antenna,
    encode_frame,
    round_end_frame,
    tag_frame,
)
from drivers.rfid.r2000 import (
    decode as r2000_decode,
)
from drivers.rfid.wiegand import WiegandError, decode_wiegand, encode_wiegand
from drivers.scale.ascii import AsciiWeightParser
from drivers.scale.stable import StableDetector
from drivers.scale.xk3190 import Xk3190Parser, encode_xk3190
from edged.admission.csv_import import KINDS, MODES, ParseResult, RowError, parse_csv, parse_items
from edged.config.load import ConfigError, load_config, parse
from edged.hj212.codec import (
    Cp,
    Hj212Error,
    Packet,
    Reassembler,
    encode,
    encode_all,
    make_qn,
)
from edged.hj212.codec import (
    decode as hj212_decode,
)
from edged.hj212.framing import PacketFramer
from edged.hj212.serial_in import samples
from edged.mqtt.commands import (
    COMMAND_NAMES,
    CommandVerifier,
    Verdict,
    canonical_string,
    make_command,
    sign,
)
from edged.mqtt.topics import Topics
from tests.box_rig import running_box
from tests.broker import Mosquitto
from tests.conftest import SHARED_DATA
from tests.mqtt.helpers import wait_until
from tests.reliability import summary
from tests.reliability.fuzzing import (
    SECONDS,
    SEED,
    FuzzStats,
    Mutator,
    chunks,
    dump_toml,
    fuzz,
    json_text,
    mutate_tree,
)

pytestmark = pytest.mark.reliability

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 5, 1, 10, 0, 0, 123000)
TZ = timezone(timedelta(hours=8))


def _record(parser: str, runs: list[FuzzStats], note: str) -> None:
    refused = sum(r.refused for r in runs)
    summary.record(
        f"fuzz {parser}",
        faults=sum(r.tried for r in runs),
        seconds=sum(r.seconds for r in runs),
        note=f"{note}; {refused} refused with their own error" if refused else note,
    )


# -- HJ 212 ------------------------------------------------------------------------------


def _hj212_packets() -> list[Packet]:
    factors = {
        "a34004": {"Rtd": 12.5, "Flag": "N"},
        "w01018": {"Avg": 2.697, "Min": 1.2, "Max": 3.5, "Flag": "N"},
        "a21026": {"ZsRtd": 35.25, "Rtd": 30.0, "Flag": "T"},
    }
    many = {
        f"a{i:05d}": {"Avg": 1000.125 + i, "Min": 1.5, "Max": 2000.5, "Flag": "N"}
        for i in range(12)
    }
    return [
        Packet(
            cn="2011",
            mn="88888880000001",
            qn=make_qn(T0),
            flag=5,
            cp=Cp.build({"DataTime": T0}, factors),
        ),
        Packet(
            cn="2051",
            mn="41050022000017",
            pw="BF470F88957588DE",
            st="31",
            cp=Cp.build({"DataTime": T0}, factors),
        ),
        Packet(
            cn="9011",
            mn="88888880000001",
            st="91",
            qn=make_qn(T0),
            flag=4,
            cp=Cp.build({"QnRtn": 1}),
        ),
        Packet(
            cn="9012",
            mn="88888880000001",
            st="91",
            qn=make_qn(T0),
            flag=4,
            cp=Cp.build({"ExeRtn": 1}),
        ),
        Packet(cn="1011", mn="88888880000001", qn=make_qn(T0), flag=5),
        Packet(
            cn="2061",
            mn="Z13401000010301",
            qn=make_qn(T0),
            flag=5,
            cp=Cp.build({"DataTime": T0}, many),
        ),
    ]


def _hj212_wires() -> list[bytes]:
    wires: list[bytes] = []
    for p in _hj212_packets():
        wires += encode_all(p, max_len=400)
    folder = SHARED_DATA / "hj212"  # real packets from other implementations, when present
    for name in ("valid.txt", "bad-crc-as-logged.txt"):
        if (folder / name).is_file():
            wires += (folder / name).read_bytes().splitlines(keepends=True)
    return wires


class _NotJson(Exception):
    """The mutated text is no longer JSON: refused before the parser is reached."""


def test_fuzz_hj212_decoder_framer_and_json() -> None:
    wires = _hj212_wires()
    docs = [p.to_json() for p in _hj212_packets()]
    reassembler = Reassembler(timeout_s=30, max_groups=8)
    clock = [0.0]

    def packet_target(data: bytes) -> None:
        try:
            lenient = hj212_decode(data, strict=False)
            samples(lenient)
            lenient.to_json()
        except Hj212Error:
            pass
        packet = hj212_decode(data)
        samples(packet)
        json.dumps(packet.to_json(), ensure_ascii=False)
        clock[0] += 1.0
        with contextlib.suppress(Hj212Error):
            reassembler.feed(packet, clock[0])
        reassembler.expire(clock[0])
        try:
            wire = encode(packet)
        except Hj212Error:
            return
        assert hj212_decode(wire) == packet, "a decoded packet does not survive encode/decode"

    def stream_target(pieces: list[bytes]) -> None:
        framer = PacketFramer()
        for piece in pieces:
            for raw in framer.feed(piece):
                assert raw.startswith(b"##") and raw.endswith(b"\n")
            assert len(framer._buf) <= framer.max_packet

    def json_target(data: bytes) -> None:
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise _NotJson(str(exc)) from None
        packet = Packet.from_json(doc, now=T0)
        encode_all(packet)

    mut = Mutator(wires)

    def gen_stream(rng: random.Random) -> list[bytes]:
        return chunks(rng, b"".join(mut.mutate(rng) for _ in range(rng.randint(1, 4))))

    def gen_json(rng: random.Random) -> bytes:
        if rng.random() < 0.5:
            return Mutator([json_text(d) for d in docs]).mutate(rng)
        return json_text(mutate_tree(rng, rng.choice(docs)))

    runs = [
        fuzz(
            "hj212.decode",
            packet_target,
            lambda rng: mut.mutate(rng),
            allowed=(Hj212Error,),
            seconds=SECONDS * 0.5,
        ),
        fuzz("hj212.framer", stream_target, gen_stream, seconds=SECONDS * 0.2),
        fuzz(
            "hj212.from_json",
            json_target,
            gen_json,
            allowed=(Hj212Error, _NotJson),
            seconds=SECONDS * 0.3,
        ),
    ]
    _record("hj212", runs, note="decode, framer, reassembler, from_json")


# -- RFID ----------------------------------------------------------------------------------

EPCS = ("E2003412B802011512345678", "300833B2DDD9014000000001", "E28011606000020D4A1B2C3D", "AABB")
VARIANTS = (
    R2000Variant(),
    R2000Variant(checksum="xor"),
    R2000Variant(
        header=0xBB,
        checksum="sum",
        commands={"real_time_inventory": 0x22, "set_work_antenna": 0x23},
    ),
)


def _r2000_frames(v: R2000Variant) -> list[bytes]:
    return [
        *(
            tag_frame(e, antenna=a, rssi_dbm=r, variant=v)
            for e in EPCS
            for a, r in ((1, -50), (6, -70))
        ),
        round_end_frame(antenna=2, read_rate=42, total_read=7, variant=v),
        encode_frame(0xFF, v.code("real_time_inventory"), b"\x36", v),
        encode_frame(0xFF, v.code("real_time_inventory"), b"\x22", v),
        encode_frame(0x01, 0x72, b"\x01\x08", v),
        cmd_real_time_inventory(variant=v),
        cmd_set_work_antenna(3, variant=v),
        *([cmd_get_firmware_version(variant=v)] if "get_firmware_version" in v.commands else []),
    ]


def test_fuzz_rfid_parsers() -> None:
    ascii_lines = [
        b"E2003412B802011512345678\r\n",
        b"EPC:E2 00 34 12 B8 02 01 15\r\n",
        b"Tag=300833B2DDD90140,RSSI=-55\r\n",
        b"ID# 30-08-33-B2-DD-D9\n",
    ]
    wiegand = [
        bytes(encode_wiegand(12, 34567)),
        bytes(encode_wiegand(255, 65535)),
        bytes(encode_wiegand(1, 2, 34)),
    ]

    def r2000_target(pieces: list[bytes]) -> None:
        for v in VARIANTS:
            parser = R2000Parser(v)
            frames = []
            for piece in pieces:
                frames += parser.feed(piece)
                assert len(parser._buf) <= 257, "R2000 buffer grew past one frame"
            while parser.pending:  # what the reader does when the line goes quiet
                frames += parser.resync()
            for frame in frames:
                r2000_decode(frame, v)  # documented never to raise

    def ascii_target(pieces: list[bytes]) -> None:
        parser = AsciiHexParser()
        for piece in pieces:
            for epc in parser.feed(piece):
                assert epc and all(c in "0123456789ABCDEF" for c in epc), epc
            assert len(parser._lines._buf) <= parser.max_line

    def wiegand_target(data: bytes) -> None:
        card = decode_wiegand([b & 1 for b in data])
        for fmt in ("decimal", "hex", "facility_card"):
            card.tag_id(fmt)  # type: ignore[arg-type]

    r2000 = Mutator([f for v in VARIANTS for f in _r2000_frames(v)])
    asciihex = Mutator(ascii_lines)
    wg = Mutator(wiegand)

    def gen_r2000(rng: random.Random) -> list[bytes]:
        return chunks(rng, b"".join(r2000.mutate(rng) for _ in range(rng.randint(1, 5))))

    def gen_ascii(rng: random.Random) -> list[bytes]:
        return chunks(rng, b"".join(asciihex.mutate(rng) for _ in range(rng.randint(1, 5))))

    runs = [
        fuzz("rfid.r2000", r2000_target, gen_r2000, seconds=SECONDS * 0.5),
        fuzz("rfid.asciihex", ascii_target, gen_ascii, seconds=SECONDS * 0.3),
        fuzz(
            "rfid.wiegand",
            wiegand_target,
            lambda rng: wg.mutate(rng)[:40],
            allowed=(WiegandError,),
            seconds=SECONDS * 0.2,
        ),
    ]
    _record("rfid", runs, note="r2000 (3 variants), asciihex, wiegand")


# -- scale -------------------------------------------------------------------------------


def test_fuzz_scale_parsers() -> None:
    frames = [
        encode_xk3190(kg, d) for kg, d in ((49860, 0), (-15.5, 1), (0, 0), (20.0, 2), (9.9999, 4))
    ]
    lines = [
        b"ST,GS,+  31240 kg\r\n",
        b"WT: 31.25 t\r\n",
        b"-120\r\n",
        b"N=5 G=31\r\n",
        b"\x02+031240\x03",
    ]

    def xk_target(pieces: list[bytes]) -> None:
        parser = Xk3190Parser()
        detector = StableDetector(20.0, 3.0)
        t = 0.0
        for piece in pieces:
            for kg in parser.feed(piece):
                assert isinstance(kg, float) and abs(kg) <= 999999, kg
                t += 0.1
                detector.feed(t, kg)
            assert len(parser._buf) < 12 + len(piece)

    def ascii_target(pieces: list[bytes]) -> None:
        for parser in (AsciiWeightParser(), AsciiWeightParser(r"G=(?P<weight>\d+)", unit="t")):
            for piece in pieces:
                for kg in parser.feed(piece):
                    assert isinstance(kg, float), kg
                assert len(parser._lines._buf) <= parser.max_line

    xk = Mutator(frames)
    asc = Mutator(lines)
    runs = [
        fuzz(
            "scale.xk3190",
            xk_target,
            lambda rng: chunks(rng, b"".join(xk.mutate(rng) for _ in range(rng.randint(1, 6)))),
            seconds=SECONDS * 0.5,
        ),
        fuzz(
            "scale.ascii",
            ascii_target,
            lambda rng: chunks(rng, b"".join(asc.mutate(rng) for _ in range(rng.randint(1, 6)))),
            seconds=SECONDS * 0.5,
        ),
    ]
    _record("scale", runs, note="xk3190, ascii lines")


# -- MQTT commands -------------------------------------------------------------------------

KEY = "fuzz-site-key-0123456789abcdef"
TS = 1_714_550_400
VALID_PARAMS: dict[str, dict[str, Any]] = {
    "registry_upsert": {
        "vehicles": [
            {
                "plate": "冀B12345",
                "plate_color": "yellow",
                "fuel": "diesel",
                "emission_stage": "6",
                "rfid": "E2003412B802011512345678",
            },
            {
                "plate": "京AD12345",
                "plate_color": "green",
                "fuel": "electric",
                "vin": "LGXCE4CB5N0123456",
            },
        ]
    },
    "registry_delete": {"plates": ["冀B12345"]},
    "registry_replace": {
        "vehicles": [{"plate": "冀B12345", "plate_colour": "yellow", "fuel": "diesel"}],
        "version": "v7",
    },
    "blacklist_upsert": {
        "entries": [
            {
                "plate": "晋C55667",
                "reason": "遥感监测超标排放",
                "until": "2030-12-31T00:00:00+08:00",
            }
        ]
    },
    "blacklist_delete": {"plates": ["晋C55667"]},
    "approval": {
        "plate": "冀A8K302",
        "applicant": "张三",
        "approver": "李四",
        "reason": "抢修设备",
        "valid_from": "2024-05-01T08:00:00+08:00",
        "valid_until": "2024-05-01T18:00:00+08:00",
        "uses": 1,
    },
    "open": {"reason": "司机卡顿，人工放行", "hold_s": 10},
    "alert_level": {
        "level": "orange",
        "reason": "重污染天气橙色预警",
        "valid_from": "2024-05-01T20:00:00+08:00",
        "valid_until": "2024-05-03T00:00:00+08:00",
    },
    "plant_vehicles_upsert": {
        "vehicles": [{"plate": "冀A0C001", "plate_colour": "yellow", "fuel": "diesel"}]
    },
    "plant_vehicles_delete": {"plates": ["冀A0C001"]},
    "machinery_upsert": {
        "machines": [
            {"registry_no": "HB130001", "emission_stage": "3", "made_on": "2018-06-01"},
            {"registry_no": "HB130002", "emission_stage": "x", "plate": "冀A9999X"},
        ]
    },
    "machinery_delete": {"registry_nos": ["HB130001"]},
    "cargo": {"plate": "冀B12345", "cargo": "焦炭", "valid_until": "2024-05-01T18:00:00+08:00"},
    "resend": {"from_seq": 1, "to_seq": 100},
    "ping": {"echo": "hi"},
}
LIST_COMMANDS = {
    "registry_upsert": ("vehicles", "upsert", "vehicles"),
    "registry_replace": ("vehicles", "replace", "vehicles"),
    "registry_delete": ("vehicles", "delete", "plates"),
    "blacklist_upsert": ("blacklist", "upsert", "entries"),
    "blacklist_delete": ("blacklist", "delete", "plates"),
    "plant_vehicles_upsert": ("plant_vehicles", "upsert", "vehicles"),
    "plant_vehicles_delete": ("plant_vehicles", "delete", "plates"),
    "machinery_upsert": ("nrmm", "upsert", "machines"),
    "machinery_delete": ("nrmm", "delete", "registry_nos"),
}
REFUSALS = {
    "too_large",
    "busy",
    "malformed",
    "unknown_command",
    "unsigned",
    "not_configured",
    "bad_signature",
    "stale",
    "replayed",
    "not_allowed",
    "invalid_params",
}


def _command(
    rng: random.Random,
    name: str,
    params: dict[str, Any],
    *,
    key: str = KEY,
    actor: str = "fuzz",
    ts: int | None = None,
) -> dict[str, Any]:
    """A signed command whose id and nonce come from ``rng``, so runs stay reproducible."""
    return make_command(
        key,
        "p1",
        "g1",
        name,
        params,
        actor=actor,
        ts=ts,
        nonce=rng.randbytes(16).hex(),
        cmd_id=str(uuid.UUID(int=rng.getrandbits(128))),
    )


class MemoryNonces:
    def __init__(self) -> None:
        self.seen: set[str] = set()

    def claim_nonce(self, nonce: str, ts: int, horizon_s: float) -> str:
        if nonce in self.seen:
            return "seen"
        self.seen.add(nonce)
        return "new"


def _resign(body: Any, name: str, rng: random.Random) -> Any:
    """Sign a mutated command again, so the fuzz reaches the parameter checks."""
    if not isinstance(body, dict) or rng.random() < 0.2:
        return body
    if rng.random() < 0.8:
        body["nonce"] = rng.randbytes(12).hex()
    try:
        canonical = canonical_string(
            "p1", "g1", name, body["ts"], body["nonce"], body["actor"], body["params"]
        )
        body["sig"] = sign(KEY, canonical)
    except (KeyError, TypeError, ValueError):
        pass
    return body


def test_fuzz_mqtt_command_parser() -> None:
    verifier = CommandVerifier("p1", "g1", [KEY], MemoryNonces(), clock=lambda: TS + 5)
    ids = random.Random(SEED)
    signed = {n: _command(ids, n, VALID_PARAMS[n], actor="backend", ts=TS) for n in COMMAND_NAMES}
    raw = Mutator([json_text(c) for c in signed.values()])
    names = [*COMMAND_NAMES, "teleport", "", "开门", "open/../x", "a" * 300]
    accepted_kinds: set[str] = set()

    def target(item: tuple[str, bytes]) -> None:
        name, payload = item
        verdict = verifier.check(name, payload)
        assert isinstance(verdict, Verdict)
        assert verdict.ok or verdict.error in REFUSALS, verdict
        assert verdict.ok or verdict.detail, "a refusal must say why"
        json.dumps(verdict.reply(), ensure_ascii=False)
        if verdict.ok and name in LIST_COMMANDS:
            kind, mode, key = LIST_COMMANDS[name]
            _records, errors = parse_items(kind, mode, verdict.params[key], TZ)  # type: ignore[arg-type]
            assert all(isinstance(e, RowError) and str(e) for e in errors)
        if verdict.ok:
            accepted_kinds.add(name)

    def gen(rng: random.Random) -> tuple[str, bytes]:
        name = rng.choice(COMMAND_NAMES) if rng.random() < 0.9 else rng.choice(names)
        roll = rng.random()
        if roll < 0.35:
            return name, raw.mutate(rng, json_text(signed.get(name, signed["ping"])))
        if roll < 0.45:
            return name, raw.mutate(rng)
        if roll < 0.5:  # nesting deeper than any sane payload
            depth = rng.choice((50, 1000, 5000, 100000))
            return name, b'{"params":' + b"[" * depth + b"]" * depth + b"}"
        base = json.loads(json_text(signed.get(name, signed["ping"])))
        body = mutate_tree(rng, base)
        for _ in range(rng.randint(0, 3)):
            body = mutate_tree(rng, body)
        return name, json_text(_resign(body, name, rng))

    run = fuzz("mqtt.commands", target, gen, seconds=SECONDS)
    _record(
        "mqtt commands",
        [run],
        note=f"CommandVerifier.check, parse_items; {len(accepted_kinds)} kinds accepted after mutation",
    )


# -- CSV imports -----------------------------------------------------------------------------


def _csv_corpus() -> list[bytes]:
    vehicles_zh = (
        "车牌号,车牌颜色,车辆识别代码,注册日期,车辆类型,燃料类型,排放阶段,危险品车辆,运输单位,电子标签,有效期至\n"
        "冀B12345,黄,LZZ1BLSF6JD123456,2019-05-20,重型半挂牵引车,柴油,国六,否,唐山运达物流,E2003412B802011512345678;E2003412B802011512345679,2030-12-31\n"
        "京AD12345,绿色,LGXCE4CB5N0123456,2021/3/4,纯电动重型牵引车,纯电动,,是,北京新能运输,,2030年12月31日\n"
    )
    vehicles_en = (
        "plate,plate_colour,vin,fuel,stage,hazardous,fleet,rfid,valid_until,source\n"
        "冀A8K302,yellow,LFWSRXSJ4G1A12345,diesel,IV,no,顺通,E2003412B802011599990001,2030-12-31 08:00,erp\n"
        '"晋C 55667",blue,,gas,国Ⅴ,0,"阳泉,煤运",,,\n'
    )
    blacklist = "车牌号,原因,发布单位,开始时间,结束时间\n晋C55667,遥感监测超标排放,生态环境局,2026-01-01,2030-12-31\n"
    nrmm = "登记号,机械类型,排放阶段,所属单位\nHB130123456789,装载机,国三,唐山港务\n"
    out = []
    for text in (vehicles_zh, vehicles_en, blacklist, nrmm):
        out += [text.encode("utf-8"), b"\xef\xbb\xbf" + text.encode("utf-8"), text.encode("gbk")]
        out.append(text.replace("\n", "\r\n").encode("utf-8"))
    for name in ("demo-vehicles.csv", "demo-blacklist.csv"):
        path = REPO / "config" / name
        if path.is_file():
            out.append(path.read_bytes())
    return out


def test_fuzz_csv_import() -> None:
    corpus = _csv_corpus()
    mut = Mutator(corpus)
    items = [
        [
            {
                "plate": "冀B12345",
                "plate_color": "yellow",
                "fuel": "diesel",
                "rfid": ["E200", "E201"],
            }
        ],
        [{"车牌号": "晋C55667", "原因": "遥感监测超标排放", "结束时间": "2030-12-31"}],
        ["冀B12345", "京AD12345"],
        [{"registry_no": "HB130123456789", "stage": "国三"}],
    ]

    def csv_target(item: tuple[str, str, bytes]) -> None:
        kind, mode, data = item
        result = parse_csv(data, kind, mode, TZ)  # type: ignore[arg-type]
        assert isinstance(result, ParseResult)
        assert all(isinstance(e, RowError) and str(e) for e in result.errors)
        assert result.ok or not result.records or result.errors

    def items_target(item: tuple[str, str, Any]) -> None:
        kind, mode, data = item
        if not isinstance(data, list):
            data = [data]
        _records, errors = parse_items(kind, mode, data, TZ)  # type: ignore[arg-type]
        assert all(isinstance(e, RowError) and str(e) for e in errors)

    def gen_csv(rng: random.Random) -> tuple[str, str, bytes]:
        return rng.choice(KINDS), rng.choice(MODES), mut.mutate(rng)

    def gen_items(rng: random.Random) -> tuple[str, str, Any]:
        return rng.choice(KINDS), rng.choice(MODES), mutate_tree(rng, rng.choice(items))

    runs = [
        fuzz("csv.parse_csv", csv_target, gen_csv, seconds=SECONDS * 0.7),
        fuzz("csv.parse_items", items_target, gen_items, seconds=SECONDS * 0.3),
    ]
    _record("csv import", runs, note="parse_csv (UTF-8/BOM/GBK), parse_items")


# -- config ---------------------------------------------------------------------------------


def _config_texts() -> list[str]:
    example = (REPO / "config" / "edged.example.toml").read_text(encoding="utf-8")
    small = (
        '[site]\nid = "p1"\ngate_id = "g1"\ntimezone = "Asia/Shanghai"\n'
        '[daemon]\ndata_dir = "/tmp/edged"\n[mqtt]\nhost = "127.0.0.1"\nport = 1883\n'
        '[rfid]\ntype = "r2000"\nport = "/dev/serial/by-id/usb-reader"\nantennas = [1, 2]\n'
        '[scale]\ntype = "ascii"\nport = "/dev/ttyUSB1"\nregex = "G=(?P<weight>\\\\d+)"\n'
        '[[hj212.platforms]]\nname = "city"\nhost = "10.0.0.1"\nport = 5000\nmn = "88888880000001"\n'
    )
    texts = [example, small]
    demo = REPO / "config" / "demo.toml"
    if demo.is_file():
        texts.append(demo.read_text(encoding="utf-8"))
    return texts


def _usable(cfg: Any) -> None:
    """A config the parser accepted must not fail later when the daemon starts:
    what start-up builds from plain values (time zone, regexes, protocol variant)."""
    ZoneInfo(cfg.site.timezone)
    for lane in cfg.lanes:
        if lane.scale is not None:
            driver_config.build(lane.scale)  # parser and reader, not started
        rfid = lane.rfid
        if rfid is not None and rfid.type == "asciihex":
            AsciiHexParser(rfid.prefix, rfid.min_hex, rfid.max_hex)
        if rfid is not None and rfid.type == "r2000":
            rfid.variant()
    Topics(cfg.mqtt.prefix, cfg.site.id, cfg.site.gate_id)


def test_fuzz_config(tmp_path: Path) -> None:
    texts = _config_texts()
    trees = []
    for text in texts:
        with contextlib.suppress(tomllib.TOMLDecodeError):
            trees.append(tomllib.loads(text))
    mut = Mutator([t.encode("utf-8") for t in texts])
    file = tmp_path / "edged.toml"

    def text_target(text: str) -> None:
        _usable(parse(text, "edged.toml"))

    def file_target(data: bytes) -> None:
        file.write_bytes(data)
        _usable(load_config(file))

    def gen_tree(rng: random.Random) -> str:
        tree = rng.choice(trees)
        for _ in range(rng.randint(1, 4)):
            tree = mutate_tree(rng, tree)
        return dump_toml(tree if isinstance(tree, dict) else {"x": tree})

    runs = [
        fuzz("config.tree", text_target, gen_tree, allowed=(ConfigError,), seconds=SECONDS * 0.5),
        fuzz(
            "config.text",
            text_target,
            lambda rng: mut.mutate(rng).decode("utf-8", errors="replace"),
            allowed=(ConfigError,),
            seconds=SECONDS * 0.3,
        ),
        fuzz(
            "config.file",
            file_target,
            lambda rng: mut.mutate(rng),
            allowed=(ConfigError,),
            seconds=SECONDS * 0.2,
        ),
    ]
    _record("config", runs, note="parse, load_config")


# -- resync on framed streams ----------------------------------------------------------------


def _garbage(rng: random.Random, valid: list[bytes]) -> bytes:
    """What lies between good frames on a real line: noise, half frames, damaged frames."""
    roll = rng.random()
    if roll < 0.4:
        return rng.randbytes(rng.choice((1, 2, 5, 17, 64, 300)))
    frame = rng.choice(valid)
    if roll < 0.7:  # a frame cut short (cable pulled, reader reset mid-frame)
        return frame[: rng.randrange(1, len(frame))]
    out = Mutator(valid).mutate(rng, frame)
    return out if out not in valid else b"\x00"


def _not_received(sent: list[bytes], got: list[bytes]) -> list[bytes]:
    """Frames of ``sent`` missing from ``got``, matched in order (longest common
    subsequence), so garbage that happens to equal a valid frame cannot hide a loss."""
    n, m = len(sent), len(got)
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best[i][j] = (
                best[i + 1][j + 1] + 1 if sent[i] == got[j] else max(best[i + 1][j], best[i][j + 1])
            )
    missing, i, j = [], 0, 0
    while i < n:
        if j < m and sent[i] == got[j] and best[i][j] == best[i + 1][j + 1] + 1:
            i, j = i + 1, j + 1
        elif j < m and best[i][j + 1] >= best[i + 1][j]:
            j += 1
        else:
            missing.append(sent[i])
            i += 1
    return missing


def _resync_run(
    name: str,
    valid: list[bytes],
    parse_stream: Callable[[list[bytes]], list[bytes]],
    rng_seed: str,
    seconds: float,
) -> tuple[int, int, int, int]:
    """Frames sent, received, lost, and losses explained by a garbage-made frame.

    A check of 8 or 16 bits cannot rule out that garbage plus the start of a
    good frame happens to pass as a frame ("phantom"); such a phantom may take
    the good frame with it. Every other loss is a resync bug.
    """
    rng = random.Random(rng_seed)
    sent = received = lost = explained = 0
    t0 = time.monotonic()
    rounds = 0
    while rounds < 5000 and time.monotonic() - t0 < seconds:
        rounds += 1
        frames = [rng.choice(valid) for _ in range(rng.randint(1, 6))]
        stream = b""
        for f in frames:
            if rng.random() < 0.8:
                stream += _garbage(rng, valid)
            stream += f
        if rng.random() < 0.5:
            stream += _garbage(rng, valid)
        pieces = chunks(rng, stream)
        out = parse_stream(pieces)
        good = [f for f in out if f in valid]
        phantoms = [f for f in out if f not in valid]
        missing = _not_received(frames, good)
        sent += len(frames)
        received += len(frames) - len(missing)
        for f in missing:
            lost += 1
            if any(f in p or any(p.endswith(f[:k]) for k in range(1, len(f))) for p in phantoms):
                explained += 1
            else:
                raise AssertionError(
                    f"{name}: valid frame lost after garbage: {f!r}\n"
                    f"  stream: {stream!r}\n  pieces: {[len(p) for p in pieces]}\n"
                    f"  parsed: {out!r}\n  reproduce: seed {rng_seed!r}, round {rounds}"
                )
    return sent, received, lost, explained


def test_resync_after_garbage_r2000_xk3190_hj212() -> None:
    t0 = time.monotonic()
    v = R2000Variant()
    r2000_valid = _r2000_frames(v)

    def r2000_stream(pieces: list[bytes]) -> list[bytes]:
        parser = R2000Parser(v)
        out = [f.raw for piece in pieces for f in parser.feed(piece)]
        while parser.pending:  # the reader resyncs when the line stays quiet
            out += [f.raw for f in parser.resync()]
        return out

    xk_valid = [encode_xk3190(kg) for kg in (0, 18000, 31240, 49860)] + [encode_xk3190(-15.5, 1)]

    def xk_stream(pieces: list[bytes]) -> list[bytes]:
        parser = Xk3190Parser()
        values = [v for piece in pieces for v in parser.feed(piece)]
        by_value = {Xk3190Parser().feed(f)[0]: f for f in xk_valid}
        return [by_value.get(x, b"phantom %r" % x) for x in values]

    hj_valid = _hj212_wires()[:6]

    def hj_stream(pieces: list[bytes]) -> list[bytes]:
        framer = PacketFramer()
        out = []
        for piece in pieces:
            for raw in framer.feed(piece):
                try:
                    hj212_decode(raw)
                except Hj212Error:
                    continue
                out.append(raw)
        return out

    seed = str(SEED)
    results = {
        "r2000": _resync_run("r2000", r2000_valid, r2000_stream, f"r2000:{seed}", SECONDS * 0.4),
        "xk3190": _resync_run("xk3190", xk_valid, xk_stream, f"xk3190:{seed}", SECONDS * 0.3),
        "hj212": _resync_run("hj212", hj_valid, hj_stream, f"hj212:{seed}", SECONDS * 0.3),
    }
    sent = sum(r[0] for r in results.values())
    received = sum(r[1] for r in results.values())
    explained = sum(r[3] for r in results.values())
    summary.record(
        "resync after garbage",
        faults=sent,
        delivered=received,
        lost=sent - received - explained,
        seconds=time.monotonic() - t0,
        note=f"r2000/xk3190/hj212 streams; {explained} taken by checksum-valid garbage",
    )
    assert sent - received == explained


# -- MQTT commands end to end: garbage on the command topics of a running gate ---------------

_REPLY_LEVEL = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _wrong_type(value: Any) -> Any:
    if isinstance(value, (bool, str)):
        return 12345
    if isinstance(value, int):
        return "12"
    if isinstance(value, list):
        return "冀B12345"
    return [1, 2]


def _e2e_messages(rng: random.Random, count: int) -> list[tuple[str, bytes, str | None]]:
    """(command, payload, expected error) ; expected None: any specific refusal (or ok)."""

    def signed(name: str, params: dict[str, Any], **kw: Any) -> bytes:
        return json_text(_command(rng, name, params, **kw))

    out: list[tuple[str, bytes, str | None]] = []
    kinds = 11
    for i in range(count):
        name = rng.choice(COMMAND_NAMES)
        kind = i % kinds if i < count // 2 else kinds
        if kind == 0:
            out.append((name, rng.randbytes(rng.randint(0, 200)), "malformed"))
        elif kind == 1:
            out.append((name, b'{"ts": "\xff\xfe\xc3\x28"}', "malformed"))
        elif kind == 2:
            out.append((name, rng.choice((b"[1, 2]", b"42", b"null", b'"open"', b"")), "malformed"))
        elif kind == 3:
            depth = rng.choice((2000, 50000))
            out.append((name, b'{"params": ' + b"[" * depth + b"]" * depth + b"}", "malformed"))
        elif kind == 4:
            body = _command(rng, name, VALID_PARAMS[name])
            del body["sig"]
            out.append((name, json_text(body), "unsigned"))
        elif kind == 5:
            out.append(
                (
                    name,
                    signed(name, VALID_PARAMS[name], key="wrong-key-0123456789abcdef"),
                    "bad_signature",
                )
            )
        elif kind == 6:
            params = dict(VALID_PARAMS[name])
            key = rng.choice(sorted(params))
            params[key] = _wrong_type(params[key])
            out.append((name, signed(name, params), "invalid_params"))
        elif kind == 7:
            out.append(
                (rng.choice(("teleport", "reboot", "shell")), signed("ping", {}), "unknown_command")
            )
        elif kind == 8:
            out.append(
                (name, signed(name, VALID_PARAMS[name], ts=int(time.time()) - 3600), "stale")
            )
        elif kind == 9:
            once = signed("ping", {"echo": f"replay {i}"})
            out += [("ping", once, None), ("ping", once, "replayed")]
        elif kind == 10:
            body = _command(rng, name, VALID_PARAMS[name])
            body[rng.choice(("ts", "nonce", "actor", "params"))] = rng.choice((True, None, 3.5))
            out.append((name, json_text(body), "malformed"))
        else:  # mutated commands, some signed again so they reach the parameter checks
            pick = rng.choice([*COMMAND_NAMES, "teleport", "开门", "a" * 300])
            base = _command(
                rng, pick if pick in VALID_PARAMS else "ping", VALID_PARAMS.get(pick, {})
            )
            if rng.random() < 0.3:
                data = Mutator([json_text(base)]).mutate(rng)
            else:
                body = mutate_tree(rng, base)
                data = json_text(_resign(body, pick, rng))
            out.append((pick, data, None))
    return out


def test_garbage_commands_on_a_running_gate_get_specific_replies(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    t0 = time.monotonic()
    extra = (
        f'[camera]\ntype = "none"\n[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto.port}\n'
        f'hmac_key = "{KEY}"\n'
        "cmd_refusal_replies_per_min = 100000\n"  # every refusal answered, to check each
    )
    replies: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fuzz-backend")
    client.on_message = lambda _c, _u, m: replies.put((m.topic, json.loads(m.payload)))
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    client.subscribe("edged/p1/g1/cmd/+/reply", qos=1)
    assert subscribed.wait(10)
    rng = random.Random(f"mqtt-e2e:{SEED}")
    messages = _e2e_messages(rng, 200)
    # One worker handles commands in arrival order, so replies come back in the
    # order the commands were sent: everything is published at once and the
    # replies are matched up afterwards (round trips on loopback cost ~40 ms).
    answerable = [m for m in messages if _REPLY_LEVEL.fullmatch(m[0])]
    got: list[tuple[str, dict[str, Any]]] = []

    def collect(n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            try:
                got.append(replies.get(timeout=0.2))
            except queue.Empty:
                continue

    def command(name: str, params: dict[str, Any]) -> dict[str, Any]:
        payload = json_text(make_command(KEY, "p1", "g1", name, params, actor="ops"))
        client.publish(f"edged/p1/g1/cmd/{name}", payload, qos=1)
        collect(len(got) + 1, 10)
        topic, envelope = got[-1]
        assert topic == f"edged/p1/g1/cmd/{name}/reply", (topic, envelope)
        return envelope["payload"]

    try:
        parts = ["ledger", "registry", "mqtt", "passage_feed", "main.gpio", "main.worker"]
        with running_box(tmp_path, extra, parts) as gate:
            # listening, not just connected: a command sent before the broker
            # acknowledged the subscription would never reach the gate
            assert wait_until(lambda: gate.mqtt.listening, 10)
            before = gate.mqtt.status()

            def handled() -> int:  # commands the gate has answered or refused since ``before``
                st = gate.mqtt.status()
                return sum(st[k] - before[k] for k in ("commands_accepted", "commands_refused"))

            for name, payload, _ in messages:
                client.publish(f"edged/p1/g1/cmd/{name}", payload, qos=1)
            collect(len(answerable), 180)  # about 3 s here; generous for a loaded CI machine
            if len(got) != len(answerable):
                st = gate.mqtt.status()
                pytest.fail(
                    f"{len(answerable) - len(got)} commands unanswered: the gate handled"
                    f" {handled()} of {len(messages)}, {st['commands_queued']} still queued,"
                    f" reply backlog {st['backlog']}"
                )
            # Signed commands, list commands and refusals of unverified ones are answered
            # by different workers, so replies are matched per topic, not by position.
            by_topic: dict[str, list[dict[str, Any]]] = {}
            for topic, envelope in got:
                by_topic.setdefault(topic, []).append(envelope["payload"])
            for topic, topic_replies in by_topic.items():
                name = topic.split("/")[-2]
                sent = [m for m in answerable if m[0] == name]
                where = (name, topic_replies[:5])
                assert len(topic_replies) == len(sent), where
                errors = [r["error"] for r in topic_replies]
                for _n, _p, expected in sent:
                    if expected is not None:
                        assert expected in errors, (name, expected, errors)
                        errors.remove(expected)
                ids = set()
                for _n, payload, _e in sent:
                    try:
                        body = json.loads(payload)
                    except (ValueError, RecursionError):
                        continue
                    if isinstance(body, dict) and isinstance(body.get("id"), str):
                        ids.add(body["id"])
                for reply in topic_replies:
                    assert reply["command"] == name, where
                    if reply["ok"]:
                        continue
                    assert reply["error"] in REFUSALS | {"handler_error", "timeout"}, reply
                    assert reply["detail"], reply
                    if reply["error"] == "handler_error":  # the gate's own checks, never a crash
                        assert reply["detail"].startswith("ValueError: "), reply
                    assert reply["cmd_id"] is None or reply["cmd_id"] in ids, reply
            # the gate kept running: valid commands still work afterwards
            pong = command("ping", {"echo": "still here"})
            assert pong["ok"] and pong["result"]["echo"] == "still here", pong
            heads = gate.ledger.heads()["passages"][0]
            opened = command("open", {"reason": "fuzz test, valid open"})
            assert opened["ok"], opened
            assert gate.ledger.heads()["passages"][0] == heads + 1
            assert handled() == len(messages) + 2, "a command was dropped or crashed the worker"
            assert gate.mqtt.connected and gate.health() and gate.lane(None).worker.depth == 0
            rows = gate.ledger.heads()["passages"][0]
    finally:
        client.loop_stop()
        client.disconnect()
    summary.record(
        "mqtt garbage commands (gate)",
        faults=len(messages),
        rows=rows,
        delivered=len(got) - 2,
        lost=len(answerable) - (len(got) - 2),
        seconds=time.monotonic() - t0,
        note=f"{len(messages) - len(answerable)} had no reply topic; valid commands work after",
    )


# -- what the fuzzer found, kept as plain regression checks -----------------------------------


def test_inputs_the_fuzzer_found_are_refused_cleanly() -> None:
    """Each of these once escaped its parser with the wrong exception (or lost data)."""
    # HJ 212 JSON (hj212 encode): CP.params not an object -> TypeError/ValueError
    with pytest.raises(Hj212Error, match=r"CP\.params"):
        Packet.from_json({"CN": "2011", "MN": "88888880000001", "CP": {"params": "x" * 10}})
    # a lone surrogate in PW (JSON "\ud800") passed the checks, then encode() crashed
    with pytest.raises(Hj212Error, match="PW"):
        Packet.from_json({"CN": "2011", "MN": "88888880000001", "PW": "12\ud80034"})
    # framer: a packet cut short swallowed the good packet behind it; '#' before '##' too
    good = _hj212_wires()[0]
    for junk in (good[:40], b"#", b"##1234", good[:-3]):
        assert PacketFramer().feed(junk + good)[-1:] == [good], junk
    # MQTT: JSON nested deeper than the stack, a non-ASCII signature, an empty actor
    verifier = CommandVerifier("p1", "g1", [KEY], MemoryNonces(), clock=lambda: TS)
    deep = b'{"params": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    assert verifier.check("registry_replace", deep).error == "malformed"
    assert verifier.check("ping", deep).error == "too_large"  # over its cap: never parsed
    body = make_command(KEY, "p1", "g1", "ping", {}, actor="x", ts=TS)
    body["sig"] = "签名" + body["sig"][2:]
    assert verifier.check("ping", json_text(body)).error == "bad_signature"
    body = make_command(KEY, "p1", "g1", "ping", {}, actor="", ts=TS)
    assert verifier.check("ping", json_text(body)).actor == "unknown"  # so the refusal is audited
    # CSV: valid until 9999-12-31 ("for ever") overflowed the date
    rows, errors = parse_items(
        "blacklist",
        "upsert",
        [{"plate": "晋C55667", "reason": "遥感监测超标排放", "valid_until": "9999-12-31"}],
        TZ,
    )
    assert not errors and rows[0].valid_until.year == 9999
    # config: a 5000-digit integer, deep nesting, 10**400 where a number goes,
    # and values start-up could not use (time zone, regex, non-ASCII ids in topics)
    for text in (
        "[daemon]\nheartbeat_s = " + "9" * 5000,
        "x = " + "[" * 5000 + "]" * 5000,
        "[daemon]\nstop_timeout_s = 1" + "0" * 400,
        '[site]\ntimezone = "Mars/Olympus"',
        '[site]\ntimezone = "' + "Asia/Shanghai" * 300 + '"',
        '[rfid]\nasciihex_prefix = "(EPC"',
        '[site]\nid = "唐钢"',
    ):
        with pytest.raises(ConfigError):
            parse(text, "edged.toml")
