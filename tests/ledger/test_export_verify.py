"""A signed export an inspector checks on any computer, and every tampering it names."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from edged.devicekey import create, key_path
from edged.ledger import LedgerStore
from edged.ledger.chain import hash_bytes
from edged.ledger.cli import register
from edged.ledger.export import STATE_PASSAGES, export
from edged.ledger.export_verify import verify_export
from edged.ledger.query import zone
from edged.ledger.stick import MARKER
from tests.ledger.gate_day import fill

TZ = zone("Asia/Shanghai")


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="edged")
    parser.add_argument("--config")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def box(root: Path, site: str = "hbsteel") -> tuple[Path, str]:
    """A box's data directory: ledger with the two gate days, images, documents, its key."""
    data = root / site
    data.mkdir(parents=True)
    with LedgerStore(data / "ledger.db") as s:
        fill(s, data / "images", data / "documents")
    key, _ = create(key_path(data))
    return data, key.public_hex


def export_of(data: Path, dest: Path, *extra: str) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    argv = ["export", "--db", str(data / "ledger.db"), "--dest", str(dest), "--images"]
    argv += ["--images-dir", str(data / "images"), "--site", data.name, *extra]
    assert run(argv) == 0
    (folder,) = [p for p in (dest / "edged-export").iterdir() if not p.name.startswith(".")]
    return folder


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    root = tmp_path_factory.mktemp("box")
    data, key = box(root)
    return export_of(data, root / "stick"), key, root


def tampered(signed: tuple[Path, str, Path], tmp_path: Path) -> Path:
    copy = tmp_path / signed[0].name
    shutil.copytree(signed[0], copy)
    return copy


def check(folder: Path, key: str | None, capsys) -> tuple[int, str]:
    argv = ["export", "verify", str(folder)] + (["--key", key] if key else [])
    rc = run(argv)
    return rc, capsys.readouterr().out


def test_an_untouched_export_verifies(signed, capsys) -> None:
    folder, key, _ = signed
    rc, out = check(folder, key, capsys)
    assert rc == 0, out
    assert "21 + 1 rows" not in out and "22 rows" in out and "OK: export unaltered" in out
    man = json.loads((folder / "MANIFEST.json").read_text())
    assert man["key"] == key and man["passages"]["rows"] == 22
    assert man["national"] == {"transport": 14, "in_plant": 0, "machinery": 1}
    for name in ("passages.csv", "passages.jsonl", "audit.jsonl", "photos/10/nameplate.jpg"):
        assert name in man["files"]
    assert (
        "photos/1/env_list.jpg" in man["files"] and "reports/daily-2024-05-02.csv" in man["files"]
    )


def test_editing_passages_csv_names_the_file_and_the_row(signed, tmp_path, capsys) -> None:
    folder = tampered(signed, tmp_path)
    csv = folder / "passages.csv"
    text = csv.read_bytes().decode("utf-8-sig")
    # the row of seq 3 (refused 国4 truck) made to look like an admitted one
    lines = text.split("\r\n")
    i = next(n for n, line in enumerate(lines) if line.startswith("3,"))
    lines[i] = lines[i].replace(",deny,", ",allow,")
    csv.write_bytes("\r\n".join(lines).encode("utf-8-sig"))
    rc, out = check(folder, signed[1], capsys)
    assert rc == 1
    assert "FAIL: passages.csv: changed" in out
    assert "FAIL: passages.csv seq 3 (line 4): decision differ from the hashed row" in out


def test_editing_passages_jsonl_names_the_row(signed, tmp_path, capsys) -> None:
    folder = tampered(signed, tmp_path)
    path = folder / "passages.jsonl"
    path.write_text(path.read_text().replace("冀A00003", "冀A00033"))
    rc, out = check(folder, signed[1], capsys)
    assert rc == 1
    assert "FAIL: passages.jsonl: changed" in out
    assert "FAIL: passages.jsonl seq 3: edited (its hash does not match its content)" in out


def test_a_rehashed_jsonl_with_a_new_manifest_fails_the_signature(signed, tmp_path, capsys) -> None:
    folder = tampered(signed, tmp_path)
    path = folder / "passages.jsonl"
    prev, out_lines = None, []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        raw = line[line.index('"fields":') + 9 : -1].replace("冀A00003", "冀A00033")
        prev = prev or row["prev_hash"]
        digest = hash_bytes(prev, row["seq"], raw.encode())
        out_lines.append(
            f'{{"seq":{row["seq"]},"prev_hash":"{prev}","hash":"{digest}","fields":{raw}}}'
        )
        prev = digest
    path.write_text("\n".join(out_lines) + "\n")
    man = json.loads((folder / "MANIFEST.json").read_text())
    import hashlib

    data = path.read_bytes()
    man["files"]["passages.jsonl"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    man["passages"]["last_hash"] = prev
    (folder / "MANIFEST.json").write_text(json.dumps(man, ensure_ascii=False, indent=1))
    rc, out = check(folder, signed[1], capsys)
    assert rc == 1 and "MANIFEST.sig: the signature does not verify" in out


def test_removing_a_photo_names_it(signed, tmp_path, capsys) -> None:
    folder = tampered(signed, tmp_path)
    (folder / "photos/5/snapshot-1.jpg").unlink()
    rc, out = check(folder, signed[1], capsys)
    assert rc == 1 and out.strip() == "FAIL: photos/5/snapshot-1.jpg: missing"


def test_replacing_the_signature_names_it(signed, tmp_path, capsys) -> None:
    folder = tampered(signed, tmp_path)
    other, _ = create(tmp_path / "other.pem")
    sig = json.loads((folder / "MANIFEST.sig").read_text())
    sig["sig"] = other.sign((folder / "MANIFEST.json").read_bytes())
    (folder / "MANIFEST.sig").write_text(json.dumps(sig))
    rc, out = check(folder, signed[1], capsys)
    assert rc == 1 and "FAIL: MANIFEST.sig: the signature does not verify" in out
    sig["key"] = other.public_hex
    (folder / "MANIFEST.sig").write_text(json.dumps(sig))
    rc, out = check(folder, signed[1], capsys)
    assert "MANIFEST.sig: signed by key" in out and "not by the expected box" in out


def test_another_box_export_swapped_in_is_named(signed, tmp_path, capsys) -> None:
    key = signed[1]
    other_data, other_key = box(tmp_path, "cokeplant")
    other = export_of(other_data, tmp_path / "stick")
    # the whole folder of the other box, presented as this box's
    rc, out = check(other, key, capsys)
    assert rc == 1 and "another box's export" in out and "site cokeplant" in out
    assert check(other, other_key, capsys)[0] == 0
    # only its manifest and signature, put over this box's files
    mixed = tampered(signed, tmp_path / "mixed")
    for name in ("MANIFEST.json", "MANIFEST.sig"):
        shutil.copy(other / name, mixed / name)
    (mixed / "photos/3/snapshot-1.jpg").write_bytes(b"x")
    rc, out = check(mixed, key, capsys)
    assert rc == 1 and "another box's export" in out
    assert "FAIL: photos/3/snapshot-1.jpg: changed" in out


def test_a_manifest_naming_files_outside_the_folder_or_links_is_refused(signed, tmp_path) -> None:
    folder = tampered(signed, tmp_path)
    (folder / "photos/1/snapshot-1.jpg").unlink()
    (folder / "photos/1/snapshot-1.jpg").symlink_to("/dev/zero")
    man = json.loads((folder / "MANIFEST.json").read_text())
    man["files"]["/etc/hostname"] = {"size": 1, "sha256": "0" * 64}
    man["files"]["../x"] = {"size": 1, "sha256": "0" * 64}
    (folder / "MANIFEST.json").write_text(json.dumps(man))
    problems = verify_export(folder).problems
    assert "/etc/hostname: a name outside the export folder" in problems
    assert "../x: a name outside the export folder" in problems
    assert "photos/1/snapshot-1.jpg: a link, not a file" in problems


def test_without_a_key_the_output_says_what_was_trusted(signed, capsys) -> None:
    rc, out = check(signed[0], None, capsys)
    assert rc == 0 and "checked against the key it names (pass --key to pin it)" in out


def test_an_unsigned_export_does_not_pass(signed, tmp_path) -> None:
    folder = tampered(signed, tmp_path)
    (folder / "MANIFEST.sig").unlink()
    res = verify_export(folder)
    assert not res.ok and res.problems == [
        "MANIFEST.sig: missing: the export is not signed (the box's key was unreadable)"
    ]


def test_verify_a_whole_stick(signed, capsys) -> None:
    rc, out = check(signed[0].parent.parent, signed[1], capsys)
    assert rc == 0 and f"{signed[0].name}:" in out


def test_a_range_export_leaves_the_automatic_position(tmp_path: Path) -> None:
    data, key = box(tmp_path)
    with LedgerStore(data / "ledger.db") as s:
        s.set_state(STATE_PASSAGES, "5")
    folder = export_of(data, tmp_path / "inspector", "--from", "2024-05-02", "--to", "2024-05-03")
    man = json.loads((folder / "MANIFEST.json").read_text())
    assert (man["passages"]["first_seq"], man["passages"]["last_seq"]) == (19, 21)
    assert man["range"] == {"from": "2024-05-02T00:00:00+08:00", "to": "2024-05-03T00:00:00+08:00"}
    assert folder.name.endswith("-p19-21-range")
    assert verify_export(folder, key).ok
    with LedgerStore(data / "ledger.db") as s:
        assert s.get_state(STATE_PASSAGES) == "5"
        audit = [json.loads(r[3]) for r in s.audit_rows()]
    assert audit[-1]["action"] == "export" and audit[-1]["details"]["range"]["from"]
    # the next automatic export still starts after row 5
    auto = export_of(data, tmp_path / "auto")
    assert json.loads((auto / "MANIFEST.json").read_text())["passages"]["first_seq"] == 6


def test_to_is_a_time_now_and_a_folder_there_is_explained(tmp_path: Path, capsys) -> None:
    data, _ = box(tmp_path)
    assert run(["export", "--db", str(data / "ledger.db"), "--to", str(tmp_path)]) == 2
    assert "the target folder is --dest DIR" in capsys.readouterr().err


def test_only_a_prepared_stick_gets_the_automatic_export(tmp_path: Path, capsys) -> None:
    data, key = box(tmp_path)
    stick = tmp_path / "stick"
    stick.mkdir()
    usb = ["export", "--db", str(data / "ledger.db"), "--usb", str(stick), "--label", "KINGSTON"]
    usb += ["--site", "hbsteel"]
    assert run(usb) == 0
    assert not (stick / "edged-export").exists() and list(stick.iterdir()) == []
    assert "ignored: not prepared" in capsys.readouterr().out
    with LedgerStore(data / "ledger.db") as s:
        assert s.recent_events(1)[0].kind == "usb_stick_ignored"
        assert s.get_state(STATE_PASSAGES) is None
    assert run(["export", "prepare-stick", str(stick), "--site", "othersite"]) == 0
    assert run(usb) == 0 and not (stick / "edged-export").exists()
    assert "marker for another site" in capsys.readouterr().out
    assert run(["export", "prepare-stick", str(stick), "--site", "hbsteel"]) == 0
    assert json.loads((stick / MARKER).read_text())["site"] == "hbsteel"
    assert run(usb) == 0
    (folder,) = (stick / "edged-export").iterdir()
    assert verify_export(folder, key).ok
    with LedgerStore(data / "ledger.db") as s:
        assert s.get_state(STATE_PASSAGES) == "22"


def test_export_function_signs_only_with_a_key(tmp_path: Path) -> None:
    with LedgerStore(tmp_path / "ledger.db") as s:
        fill(s)
        res = export(s, tmp_path, tz=TZ)
    assert not res.signed and not (res.folder / "MANIFEST.sig").exists()
