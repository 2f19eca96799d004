from __future__ import annotations

import threading

import pytest

from drivers.rfid import RfidConfig, TagRead, open_reader, variant_from_config
from drivers.rfid.r2000 import (
    FirmwareVersion,
    InventoryRoundEnd,
    InventoryTag,
    R2000Parser,
    R2000Variant,
    StatusReply,
    UnknownFrame,
    checksum,
    cmd_get_firmware_version,
    cmd_real_time_inventory,
    cmd_set_work_antenna,
    decode,
    encode_frame,
    round_end_frame,
    tag_frame,
)
from drivers.rfid.simulator import R2000Simulator
from tests.ptys import PtyCable, wait_for

EPC1 = "E2003412B802011512345678"
EPC2 = "300833B2DDD9014000000001"


def test_command_bytes_match_published_examples() -> None:
    # Examples printed in the R2000 serial protocol manual (address 0x01).
    assert cmd_real_time_inventory(address=0x01, repeat=1) == bytes.fromhex("A0040189 01D1")
    assert cmd_get_firmware_version(address=0x01) == bytes.fromhex("A0030172EA")
    assert cmd_set_work_antenna(1, address=0x01) == bytes.fromhex("A004017400E7")


def test_checksum_kinds() -> None:
    data = bytes.fromhex("A0040189 01")
    assert checksum(data) == 0xD1
    assert (sum(data) + checksum(data)) & 0xFF == 0
    assert checksum(data, "sum") == 0x2F
    assert checksum(data, "xor") == 0xA0 ^ 0x04 ^ 0x01 ^ 0x89 ^ 0x01


def test_decode_tag_round_end_error_and_version() -> None:
    p = R2000Parser()
    stream = (
        tag_frame(EPC1, antenna=2, rssi_dbm=-48, freq_param=5)
        + round_end_frame(antenna=2, read_rate=42, total_read=7)
        + encode_frame(0xFF, 0x89, b"\x22")
        + encode_frame(0x01, 0x72, b"\x01\x08")
        + encode_frame(0x01, 0x99, b"\x01\x02\x03")
    )
    msgs = [decode(f) for f in p.feed(stream)]
    tag, end, err, ver, unk = msgs
    assert isinstance(tag, InventoryTag)
    assert (tag.epc, tag.antenna, tag.rssi_dbm, tag.freq_param, tag.pc) == (EPC1, 2, -48, 5, 0x3000)
    assert isinstance(end, InventoryRoundEnd)
    assert (end.antenna, end.read_rate, end.total_read) == (2, 42, 7)
    assert isinstance(err, StatusReply) and err.name == "antenna_missing_error" and not err.ok
    assert isinstance(ver, FirmwareVersion) and (ver.major, ver.minor) == (1, 8)
    assert isinstance(unk, UnknownFrame)


def test_handwritten_tag_frame() -> None:
    # A0 13 01 89 | freq/ant 0x04 (freq 1, ant 1) | PC 30 00 | 12-byte EPC | RSSI 0x58
    body = bytes.fromhex("A0130189043000E28011606000020D4A1B2C3D58")
    frame = body + bytes([(-sum(body)) & 0xFF])
    (f,) = R2000Parser().feed(frame)
    msg = decode(f)
    assert isinstance(msg, InventoryTag)
    assert msg.epc == "E28011606000020D4A1B2C3D"
    assert msg.antenna == 1 and msg.rssi_dbm == 0x58 - 129 and msg.address == 1


def test_eight_port_reader_high_antenna_bit() -> None:
    (f,) = R2000Parser().feed(tag_frame(EPC1, antenna=6, rssi_dbm=-60))
    msg = decode(f)
    assert isinstance(msg, InventoryTag) and msg.antenna == 6 and msg.rssi_dbm == -60


def test_garbage_partial_and_bad_checksum_resync() -> None:
    p = R2000Parser()
    good = tag_frame(EPC1)
    bad = bytearray(tag_frame(EPC2))
    bad[-1] ^= 0xFF
    stream = b"\x00\x13\x37garbage" + good[:7] + bytes(bad) + good + b"\xa0" + b"\x01" + good
    frames = []
    for i in range(0, len(stream), 5):  # arrives in small pieces
        frames += p.feed(stream[i : i + 5])
    epcs = [decode(f).epc for f in frames]  # type: ignore[union-attr]
    assert epcs == [EPC1, EPC1]
    assert p.stats.bad_checksums >= 1
    assert p.stats.bad_lengths >= 1
    assert p.stats.garbage_bytes >= 10


def test_corrupt_length_byte_does_not_stall_forever() -> None:
    p = R2000Parser()
    # 0xA0 0xFF announces a 257-byte frame that never comes; the real frame waits
    assert p.feed(b"\xa0\xff" + tag_frame(EPC1)) == []
    assert p.pending > 0
    (f,) = p.resync()  # what the reader does when the line stays quiet
    assert decode(f).epc == EPC1  # type: ignore[union-attr]
    assert p.stats.stalled_resyncs == 1 and p.pending == 0


def test_vendor_variant_header_checksum_and_codes() -> None:
    v = R2000Variant(
        header=0xBB,
        checksum="xor",
        commands={"real_time_inventory": 0x22, "set_work_antenna": 0x23},
    )
    frame = tag_frame(EPC1, variant=v)
    assert frame[0] == 0xBB and frame[3] == 0x22
    (f,) = R2000Parser(v).feed(b"\xa0\x04" + frame)
    assert decode(f, v).epc == EPC1  # type: ignore[union-attr]
    assert R2000Parser().feed(frame) == []  # the default variant rejects it


def test_variant_from_config_overrides() -> None:
    cfg = RfidConfig(r2000_header=0xBB, r2000_commands={"real_time_inventory": 0x8B})
    v = variant_from_config(cfg)
    assert v.header == 0xBB and v.code("real_time_inventory") == 0x8B
    assert v.code("set_work_antenna") == 0x74


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"antennas": [0]}, "antennas"),
        ({"address": 300}, "address"),
        ({"r2000_commands": {"teleport": 1}}, "r2000_commands"),
        ({"wiegand_bits": [37]}, "wiegand_bits"),
        ({"repeat": 0}, "repeat"),
    ],
)
def test_config_errors_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        RfidConfig(**kwargs)


def test_reader_over_pty_with_simulator(cable: PtyCable) -> None:
    reads: list[TagRead] = []
    lock = threading.Lock()

    def on_read(r: TagRead) -> None:
        with lock:
            reads.append(r)

    sim = R2000Simulator(cable.master, {EPC1: -50, EPC2: -70}).start()
    cfg = RfidConfig(enabled=True, protocol="r2000", port=cable.port, antennas=[1, 2], resend_s=0.3)
    reader = open_reader(cfg, on_read, line_kwargs={"backoff_initial": 0.02})
    reader.start()
    try:
        assert wait_for(lambda: {r.epc for r in reads} == {EPC1, EPC2} and len(reads) >= 8)
        assert {r.antenna for r in reads} == {1, 2}  # both antennas cycled
        assert all(r.rssi in (-50.0, -70.0) for r in reads)
        # garbage injected by the "reader" side is skipped, reads go on
        sim.write_raw(b"\xa0\xff\x00junk\xa0\x05")
        n = len(reads)
        assert wait_for(lambda: len(reads) > n + 4)
        sim.set_tags({})
        assert wait_for(lambda: reader.stats()["rounds"] > 0)
        st = reader.stats()
        assert st["garbage_bytes"] + st["bad_checksums"] + st["stalled_resyncs"] > 0
    finally:
        assert reader.close()
        sim.close()


def test_reader_survives_unplug_and_restarts_inventory(cable: PtyCable) -> None:
    reads: list[TagRead] = []
    cfg = RfidConfig(enabled=True, protocol="r2000", port=cable.port, resend_s=0.2)
    reader = open_reader(cfg, reads.append, line_kwargs={"backoff_initial": 0.02})
    reader.start()
    try:
        # the driver asks for inventory as soon as the port opens
        assert cable.read(2.0).startswith(cmd_real_time_inventory())
        cable.write(tag_frame(EPC1))
        assert wait_for(lambda: len(reads) == 1)
        cable.unplug()
        assert wait_for(lambda: reader.stats()["line_read_errors"] >= 1)
        cable.plug()
        assert wait_for(lambda: reader.stats()["line_reconnects"] >= 1)
        assert cmd_real_time_inventory() in cable.read(2.0)  # restarted after reconnect
        cable.write(tag_frame(EPC2))
        assert wait_for(lambda: reads[-1].epc == EPC2)
    finally:
        assert reader.close()


def test_min_rssi_filters_weak_tags(cable: PtyCable) -> None:
    reads: list[TagRead] = []
    cfg = RfidConfig(protocol="r2000", port=cable.port, min_rssi_dbm=-60)
    reader = open_reader(cfg, reads.append).start()
    try:
        assert wait_for(lambda: reader.stats()["line_connected"])
        cable.write(tag_frame(EPC1, rssi_dbm=-75) + tag_frame(EPC2, rssi_dbm=-45))
        assert wait_for(lambda: len(reads) >= 1)
        assert [r.epc for r in reads] == [EPC2]
    finally:
        reader.close()
