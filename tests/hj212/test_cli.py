"""``hj212 decode|encode`` through our own argparse parser."""

from __future__ import annotations

import argparse
import io
import json
import shlex
from pathlib import Path

from edged.hj212 import cli
from edged.hj212.codec import decode
from tests.conftest import shared_data


def call(argv: list[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    code = args.func(args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_decode_real_file_prints_one_json_per_packet() -> None:
    code, out, err = call(["hj212", "decode", str(shared_data("hj212") / "valid.txt")])
    assert code == 0 and err == ""
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o["CN"] for o in objs] == ["2011", "2061", "2011"]
    assert objs[1]["CP"]["factors"]["a34006"] == {"Avg": 2.697, "Flag": "N"}
    assert objs[1]["CP"]["params"] == {"DataTime": "20190924220000"}


def test_decode_mixed_file_says_which_packet_and_why(tmp_path: Path) -> None:
    folder = shared_data("hj212")
    valid = (folder / "valid.txt").read_bytes().splitlines()
    bad = (folder / "bad-crc-as-logged.txt").read_bytes().splitlines()
    mixed = tmp_path / "mixed.log"
    # no \r\n on some lines, a blank line, a truncated packet
    mixed.write_bytes(b"\n".join([valid[0], b"", bad[0], valid[1], valid[2][:50]]) + b"\n")
    code, out, err = call(["hj212", "decode", str(mixed)])
    assert code == 1
    assert len(out.splitlines()) == 2
    assert "packet 2 (line 3): refused: CRC A6EC does not match" in err
    assert "packet 4 (line 5): refused: length field says 872" in err
    code, out, err = call(["hj212", "decode", "--lenient", str(mixed)])
    assert code == 1 and len(out.splitlines()) == 3
    assert "packet 2 (line 3): warning: CRC" in err


def test_decode_missing_file() -> None:
    code, _, err = call(["hj212", "decode", "/nonexistent/x.log"])
    assert code == 2 and "cannot read" in err


def test_encode_from_json_round_trips_and_reports_errors() -> None:
    spec = {
        "QN": "now",
        "ST": "31",
        "CN": "2011",
        "PW": "123456",
        "MN": "66330300010100001001",
        "Flag": 5,
        "CP": {"params": {"DataTime": "now"}, "factors": {"a34013": {"Rtd": 12.5, "Flag": "N"}}},
    }
    code, out, err = call(["hj212", "encode", "--json", json.dumps(spec)])
    assert code == 0, err
    assert out.endswith("\r\n")
    packet = decode(out.encode())
    assert packet.cp.factors["a34013"] == {"Rtd": "12.5", "Flag": "N"}
    assert packet.qn is not None and packet.cp.data_time is not None
    spec["CP"]["factors"]["a34013"]["Flag"] = "N;x"  # type: ignore[index]
    code, out, err = call(["hj212", "encode", "--json", json.dumps(spec)])
    assert code == 1 and out == "" and "separator" in err
    code, _, err = call(["hj212", "encode", "--json", "{nope"])
    assert code == 1 and "not valid JSON" in err
    code, _, err = call(["hj212", "encode", "--json", '{"CN": "2011"}'])
    assert code == 1 and "MN" in err


KEY = "0123456789abcdeffedcba9876543210"
SPEC_2025 = {
    "QN": "20240601085857223",
    "ST": "31",
    "CN": "2051",
    "MN": "010000A8900016F000169DC0",
    "Flag": 5,
    "CP": {"params": {"DataTime": "20240601085800"}, "factors": {"a34013": {"Avg": 1e-05}}},
}


def test_encode_and_decode_with_version_and_sm4_key(tmp_path: Path) -> None:
    spec = json.dumps(SPEC_2025)
    code, out, err = call(["hj212", "encode", "--json", spec, "--version", "2025"])
    assert code == 0, err
    plain = decode(out.encode())
    assert plain.flag == 9 and plain.standard == "2025"
    assert plain.cp.factors["a34013"]["Avg"] == "0.00001"  # never 1e-05
    code, out, err = call(
        ["hj212", "encode", "--json", spec, "--version", "2025", "--sm4-key", KEY]
    )
    assert code == 0, err
    assert "CP=&&{0x" in out
    wire = tmp_path / "wire.log"
    wire.write_text(out)
    code, dec, err = call(["hj212", "decode", str(wire)])
    assert code == 1 and "no key was given" in err
    code, dec, err = call(["hj212", "decode", "--sm4-key", "ff" * 16, "--sm4-key", KEY, str(wire)])
    assert code == 0, err
    obj = json.loads(dec)
    assert obj["encrypted"] is True and obj["version"] == "2025"
    assert obj["CP"]["params"] == {"DataTime": "20240601085800"}
    code, _, err = call(["hj212", "decode", "--version", "2017", "--sm4-key", KEY, str(wire)])
    assert code == 1 and "not the 2017 asked for with --version" in err
    code, _, err = call(["hj212", "encode", "--json", spec, "--sm4-key", KEY])
    assert code == 1 and "needs an HJ 212-2025 packet" in err
    code, _, err = call(["hj212", "decode", "--sm4-key", "xyz", str(wire)])
    assert code == 2 and "32 hex digits" in err


def test_the_example_in_docs_hj212_is_what_the_code_prints(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "HJ212.md").read_text(encoding="utf-8")
    block = doc.split("```console\n", 1)[1].split("```", 1)[0].splitlines()
    enc_cmd, enc_out, dec_cmd, dec_out = block
    argv = shlex.split(enc_cmd.removeprefix("$ edged "))
    code, out, err = call(argv)
    assert code == 0, err
    assert out == enc_out + "\r\n"
    (tmp_path / "packets.log").write_text(out)
    argv = shlex.split(dec_cmd.removeprefix("$ edged "))
    code, out, err = call([*argv[:-1], str(tmp_path / "packets.log")])
    assert code == 0, err
    assert out == dec_out + "\n"
