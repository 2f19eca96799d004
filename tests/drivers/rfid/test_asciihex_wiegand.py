from __future__ import annotations

import threading
import time

import pytest
from gpiozero.pins.mock import MockFactory

from drivers.rfid import RfidConfig, TagRead, open_reader
from drivers.rfid.asciihex import AsciiHexParser
from drivers.rfid.wiegand import (
    WiegandCard,
    WiegandError,
    WiegandReceiver,
    decode_wiegand,
    encode_wiegand,
)
from tests.ptys import PtyCable, wait_for

# -- ASCII hex ------------------------------------------------------------------


def test_asciihex_lines_with_prefixes_spaces_and_crlf() -> None:
    p = AsciiHexParser()
    stream = (
        b"E2003412B802011512345678\r\n"
        b"EPC: 30 08 33 B2 DD D9 01 40\r\n"
        b"tag=e2801160600002\n"
        b"ID:E2003412B8020115 RSSI -55\r\n"
        b"\r\n\r\n"
    )
    assert p.feed(stream) == [
        "E2003412B802011512345678",
        "300833B2DDD90140",
        "E2801160600002",
        "E2003412B8020115",
    ]
    assert p.stats.rejected_lines == 0


def test_asciihex_rejects_noise_and_bounds_lines() -> None:
    p = AsciiHexParser(min_hex=8, max_hex=24)
    assert p.feed(b"hello world\r\nAB\r\n" + b"F" * 30 + b"\r\nE200XYZ1\r\n") == []
    assert p.stats.rejected_lines == 4
    assert p.feed(b"A" * 1000 + b"\r\n12345678\r\n") == ["12345678"]
    assert p.stats.overlong_lines == 1


def test_asciihex_custom_prefix_and_split_chunks() -> None:
    p = AsciiHexParser(prefix=r"^\s*\[UHF\]\s*")
    out = []
    for ch in b"[UHF] DEADBEEF01\r\n":
        out += p.feed(bytes([ch]))
    assert out == ["DEADBEEF01"]


def test_asciihex_reader_over_pty(cable: PtyCable) -> None:
    reads: list[TagRead] = []
    cfg = RfidConfig(protocol="asciihex", port=cable.port, baudrate=9600)
    reader = open_reader(cfg, reads.append).start()
    try:
        assert wait_for(lambda: reader.stats()["line_connected"])
        cable.write(b"\xff\xfe junk\r\nEPC:E2003412B802011512345678\r\n")
        assert wait_for(lambda: len(reads) == 1)
        assert reads[0].epc == "E2003412B802011512345678" and reads[0].rssi is None
        assert reader.stats()["rejected_lines"] == 1
    finally:
        assert reader.close()


# -- Wiegand ----------------------------------------------------------------------


@pytest.mark.parametrize(("bits", "facility", "card"), [(26, 18, 52345), (34, 4660, 65535)])
def test_wiegand_roundtrip(bits: int, facility: int, card: int) -> None:
    frame = encode_wiegand(facility, card, bits)
    assert len(frame) == bits
    assert decode_wiegand(frame) == WiegandCard(bits, facility, card)


def test_wiegand26_known_frame() -> None:
    # facility 1, card 1: data 00000001 0000000000000001; even parity over
    # bits 1-12 (one 1) -> 1, odd parity over bits 13-24 (one 1) -> 0
    bits = [int(c) for c in "1" + "00000001" + "0000000000000001" + "0"]
    card = decode_wiegand(bits)
    assert (card.facility, card.card) == (1, 1)
    assert card.tag_id() == "0000065537"
    assert card.tag_id("facility_card") == "001,00001"
    assert card.tag_id("hex") == "010001"


def test_wiegand_parity_and_length_errors() -> None:
    frame = encode_wiegand(18, 52345, 26)
    for i in (0, 5, 20, 25):
        flipped = list(frame)
        flipped[i] ^= 1
        with pytest.raises(WiegandError, match="parity"):
            decode_wiegand(flipped)
    with pytest.raises(WiegandError, match="25 bits"):
        decode_wiegand(frame[:-1])


def _drive(factory: MockFactory, d0: int, d1: int, bits: list[int]) -> None:
    for b in bits:
        pin = factory.pin(d1 if b else d0)
        pin.drive_low()
        time.sleep(0.0002)
        pin.drive_high()
        time.sleep(0.001)


def test_wiegand_receiver_on_mock_pins() -> None:
    factory = MockFactory()
    cards: list[WiegandCard] = []
    rx = WiegandReceiver(5, 6, cards.append, timeout_s=0.02, pin_factory=factory)
    try:
        for fac, num in ((18, 52345), (200, 7)):
            t = threading.Thread(target=_drive, args=(factory, 5, 6, encode_wiegand(fac, num)))
            t.start()
            t.join()
            assert wait_for(lambda n=len(cards): len(cards) == n + 1, 2)
        assert [(c.facility, c.card) for c in cards] == [(18, 52345), (200, 7)]
        bad = encode_wiegand(18, 52345)
        bad[3] ^= 1
        _drive(factory, 5, 6, bad)
        assert wait_for(lambda: rx.stats.parity_errors == 1, 2)
        _drive(factory, 5, 6, [1, 0, 1])  # a burst of noise
        assert wait_for(lambda: rx.stats.wrong_length == 1, 2)
        assert len(cards) == 2
    finally:
        assert rx.close()


def test_wiegand_reader_via_config() -> None:
    factory = MockFactory()
    reads: list[TagRead] = []
    cfg = RfidConfig(
        protocol="wiegand",
        wiegand_d0_pin=20,
        wiegand_d1_pin=21,
        wiegand_bits=[34],
        wiegand_id_format="facility_card",
    )
    reader = open_reader(cfg, reads.append, pin_factory=factory)
    try:
        _drive(factory, 20, 21, encode_wiegand(4660, 99, 34))
        assert wait_for(lambda: len(reads) == 1, 2)
        assert reads[0].epc == "4660,00099"
        _drive(factory, 20, 21, encode_wiegand(1, 1, 26))  # 26 bits not accepted here
        assert wait_for(lambda: reader.stats()["wrong_length"] == 1, 2)
    finally:
        assert reader.close()
