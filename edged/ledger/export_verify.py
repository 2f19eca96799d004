"""``edged export verify DIR``: check an export on any computer, without the box.

Everything it needs is in the folder and the package: the manifest's
signature (Ed25519, :mod:`edged.devicekey`), the size and SHA-256 of every
file, the hash chain over the exported rows (``passages.jsonl``,
``audit.jsonl``) linked to the ranges and heads the manifest states, the
attestation of those heads, that ``passages.csv`` — the file people open and
could edit — says exactly what the hashed rows say, and that each exported
photo is the one its row's hash names. It does not stop at the first
problem: it names every file and every row that does not hold, so an
inspector knows what to distrust.

Who signed: the manifest names its key. Give ``--key`` (the box's public key,
as ``edged status`` prints it and the box publishes retained on MQTT under
``device_key``) to check the export comes from that box; without it the
signature is checked against the key the manifest names, and the output
says so.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edged.devicekey import verify as verify_signature
from edged.ledger.attest import Attestation
from edged.ledger.chain import hash_bytes
from edged.ledger.export_format import (
    CSV_COLUMNS,
    FORMAT,
    MANIFEST,
    SIG_KIND,
    SIGNATURE,
    csv_cells,
    parse_line,
    snapshot_name,
)

MAX_PROBLEMS = 200  # a wholly wrong folder says so without printing every row


@dataclass
class ExportCheck:
    folder: Path
    problems: list[str] = field(default_factory=list)
    key: str | None = None
    site: str = ""
    gate: str = ""
    rows: int = 0
    files: int = 0
    more: int = 0  # problems found beyond MAX_PROBLEMS

    @property
    def ok(self) -> bool:
        return not self.problems

    def bad(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
        else:
            self.more += 1


def verify_export(folder: str | Path, key: str | None = None) -> ExportCheck:
    """Check one export folder; ``key``: the public key (hex) it must be signed with."""
    folder = Path(folder)
    res = ExportCheck(folder)
    try:
        body = (folder / MANIFEST).read_bytes()
        manifest = json.loads(body)
    except FileNotFoundError:
        res.bad(f"{MANIFEST}: missing (an export that never finished, or not an export folder)")
        return res
    except ValueError as exc:
        res.bad(f"{MANIFEST}: not JSON ({exc})")
        return res
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        res.bad(f"{MANIFEST}: not an {FORMAT} manifest")
        return res
    res.site, res.gate = str(manifest.get("site")), str(manifest.get("gate"))
    _signature(folder, body, manifest, key, res)
    files = manifest.get("files") or {}
    _files(folder, files, res)
    rows = _chain(folder, "passages", manifest, res)
    _chain(folder, "audit", manifest, res)
    if "passages.csv" in files:
        _csv(folder, rows, res)
    _photos(folder, rows, files, res)
    res.rows = len(rows)
    res.files = len(files)
    return res


def _signature(
    folder: Path, body: bytes, manifest: dict[str, Any], key: str | None, res: ExportCheck
) -> None:
    named = manifest.get("key")
    try:
        sig = json.loads((folder / SIGNATURE).read_bytes())
    except FileNotFoundError:
        res.bad(f"{SIGNATURE}: missing: the export is not signed (the box's key was unreadable)")
        return
    except ValueError:
        res.bad(f"{SIGNATURE}: not JSON")
        return
    signer = sig.get("key") if isinstance(sig, dict) else None
    if not isinstance(sig, dict) or sig.get("kind") != SIG_KIND or not isinstance(signer, str):
        res.bad(f"{SIGNATURE}: not an export signature")
        return
    res.key = signer
    if signer != named:
        res.bad(f"{SIGNATURE}: signed by key {signer[:16]}…, but {MANIFEST} names {named}")
    if not verify_signature(signer, body, str(sig.get("sig"))):
        res.bad(
            f"{SIGNATURE}: the signature does not verify over {MANIFEST}: the manifest or the"
            " signature was changed"
        )
    if key is not None and signer.lower() != key.lower():
        res.bad(
            f"{SIGNATURE}: signed by key {signer[:16]}…, not by the expected box {key[:16]}…"
            f" (site {res.site}, gate {res.gate}): another box's export"
        )
    att = manifest.get("attestation")
    if att is None:
        return
    try:
        a = Attestation.from_json(att)
        ok = a.signed_by(signer)
        heads = a.heads
    except (KeyError, TypeError, ValueError):
        res.bad(f"{MANIFEST}: attestation unreadable")
        return
    if not ok:
        res.bad(f"{MANIFEST}: attestation {a.n} is not signed by the export's key")
    stated = {k: (v["seq"], v["hash"]) for k, v in (manifest.get("heads") or {}).items()}
    if heads != stated:
        res.bad(f"{MANIFEST}: heads differ from the attestation's")


def _files(folder: Path, files: dict[str, Any], res: ExportCheck) -> None:
    for name, meta in sorted(files.items()):
        path = folder / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            res.bad(f"{name}: a name outside the export folder")
            continue
        if path.is_symlink():
            res.bad(f"{name}: a link, not a file")
            continue
        if not path.is_file():
            res.bad(f"{name}: missing")
            continue
        h = hashlib.sha256()
        size = 0
        with path.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
                size += len(block)
        if size != meta.get("size") or h.hexdigest() != meta.get("sha256"):
            res.bad(f"{name}: changed (SHA-256 or size differs from the manifest)")
    listed = set(files) | {MANIFEST, SIGNATURE}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel not in listed:
            res.bad(f"{rel}: not in the manifest (added after the export)")


def _chain(folder: Path, chain: str, manifest: dict[str, Any], res: ExportCheck) -> list[Any]:
    """Re-hash ``<chain>.jsonl`` and link it to the manifest's range; returns the rows."""
    name = f"{chain}.jsonl"
    seg = manifest.get(chain) or {}
    rows: list[Any] = []
    try:
        lines = (folder / name).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return rows  # named by the file check
    except UnicodeDecodeError:
        res.bad(f"{name}: not UTF-8 text")
        return rows
    prev = seg.get("first_prev_hash")
    expect = seg.get("first_seq")
    for n, line in enumerate(lines, 1):
        try:
            seq, row_prev, digest, raw = parse_line(line)
        except ValueError:
            res.bad(f"{name} line {n}: not an exported row")
            prev = None
            continue
        if expect is not None and seq != expect:
            res.bad(f"{name} seq {seq}: expected seq {expect} here (a row removed or added)")
        expect = seq + 1
        if prev is not None and row_prev != prev:
            res.bad(f"{name} seq {seq}: does not link to the row before it")
        if hash_bytes(row_prev, seq, raw) != digest:
            res.bad(f"{name} seq {seq}: edited (its hash does not match its content)")
        prev = digest
        if chain == "passages":
            try:
                rows.append((seq, digest, json.loads(raw)))
            except ValueError:
                res.bad(f"{name} seq {seq}: fields are not JSON")
    if seg.get("rows") is not None and len(lines) != seg["rows"]:
        res.bad(f"{name}: {len(lines)} rows, the manifest says {seg['rows']}")
    if lines and prev is not None and prev != seg.get("last_hash"):
        res.bad(f"{name}: the last row's hash is not the manifest's last_hash")
    head = (manifest.get("heads") or {}).get(chain) or {}
    if seg.get("last_seq") == head.get("seq") and seg.get("last_hash") != head.get("hash"):
        res.bad(f"{MANIFEST}: {chain} ends at the head seq but not at the head hash")
    return rows


def _csv(folder: Path, rows: list[Any], res: ExportCheck) -> None:
    """Every passages.csv line must say what its hashed row says."""
    name = "passages.csv"
    try:
        text = (folder / name).read_text(encoding="utf-8-sig")
    except (FileNotFoundError, UnicodeDecodeError):
        res.bad(f"{name}: unreadable")
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or tuple(header) != CSV_COLUMNS:
        res.bad(f"{name}: header differs from the columns an export writes")
    by_seq = {seq: (digest, fields) for seq, digest, fields in rows}
    seen: set[int] = set()
    for n, line in enumerate(reader, 2):
        try:
            seq = int(line[0])
        except (ValueError, IndexError):
            res.bad(f"{name} line {n}: no seq in the first column")
            continue
        if seq not in by_seq:
            res.bad(f"{name} seq {seq} (line {n}): no such row in passages.jsonl")
            continue
        seen.add(seq)
        want = csv_cells(seq, *by_seq[seq])
        if line != want:
            cols = [
                CSV_COLUMNS[i]
                for i in range(max(len(want), len(line)))
                if i >= len(line) or i >= len(want) or line[i] != want[i]
            ]
            res.bad(
                f"{name} seq {seq} (line {n}): {', '.join(cols[:5])} differ from the hashed row"
            )
    for seq in sorted(set(by_seq) - seen):
        res.bad(f"{name} seq {seq}: missing (the hashed row has no line)")


def _photos(folder: Path, rows: list[Any], files: dict[str, Any], res: ExportCheck) -> None:
    """An exported snapshot must be the one its row's hash names."""
    for seq, _digest, fields in rows:
        if fields.get("correction_of") is not None:
            continue  # a correction keeps its original's photos, under the original's seq
        for n, snap in enumerate(fields.get("snapshots") or (), 1):
            name = snapshot_name(seq, n, str(snap.get("path", "")))
            meta = files.get(name)
            if meta is not None and meta.get("sha256") != snap.get("sha256"):
                res.bad(f"{name}: not the snapshot row seq {seq} recorded")


def report_lines(res: ExportCheck, key_given: bool) -> list[str]:
    if res.ok:
        who = f"key {res.key[:16]}…" if res.key else "no key"
        checked = "the expected box's" if key_given else "the key it names (pass --key to pin it)"
        return [
            f"site {res.site}, gate {res.gate}: {res.rows} rows, {res.files} files verified",
            f"signature: {who}, checked against {checked}",
            "OK: export unaltered",
        ]
    out = [f"FAIL: {p}" for p in res.problems]
    if res.more:
        out.append(f"FAIL: … and {res.more} more problems")
    return out
