"""Export to a USB stick or folder: rows since the last export, reports, a manifest.

A stick can be pulled at any moment, so nothing on it may *look* complete
before it is: everything goes into ``.<name>.partial/``, each file first
under a ``.partial`` name, fsynced, renamed; ``MANIFEST.json`` (file names,
sizes, SHA-256, chain heads) is written last, then the folder is renamed.
A folder without a manifest, or still named ``.partial``, is an aborted
export. Nothing is ever read from the stick or run from it: files are
created with O_EXCL (no overwriting, no following a planted symlink) and
the export folder name is ours.

``passages.jsonl`` / ``audit.jsonl`` carry each row's stored canonical JSON
byte for byte with seq, prev_hash and hash, so anyone can re-hash the
exported segment and link it to the heads published before.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from edged.devicekey import DeviceKey
from edged.ledger.attest import Attestation, attest
from edged.ledger.query import COLUMNS, safe_text
from edged.ledger.record import safe_relative_path
from edged.ledger.reports import ReportSpec, write_report_csv_to
from edged.ledger.store import LedgerStore
from edged.logs import get_logger

log = get_logger("ledger")

FORMAT = "edged-export/1"
STATE_PASSAGES = "export.passages_seq"
STATE_AUDIT = "export.audit_seq"


class ExportError(Exception):
    """The export could not be done; nothing marked complete was left behind."""


class _Out:
    """A new file written once: hashed as it is written, fsynced, renamed into place."""

    def __init__(self, folder: Path, name: str) -> None:
        self.final = folder / name
        self.tmp = folder / f".{name}.partial"
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.tmp, "xb")  # noqa: SIM115 - closed in close()
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: str | bytes) -> int:
        b = data.encode("utf-8") if isinstance(data, str) else data
        self.sha.update(b)
        self.fh.write(b)
        self.size += len(b)
        return len(data)

    def close(self) -> dict[str, Any]:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.replace(self.tmp, self.final)
        return {"size": self.size, "sha256": self.sha.hexdigest()}


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some FAT drivers refuse fsync on directories; the rename order still holds
    finally:
        os.close(fd)


def _raw_line(seq: int, digest: str, prev: str, fields: str) -> str:
    return f'{{"seq":{seq},"prev_hash":"{prev}","hash":"{digest}","fields":{fields}}}\n'


@dataclass
class ExportResult:
    folder: Path
    passages: tuple[int, int]  # first, last seq exported (last < first: none)
    audit: tuple[int, int]
    heads: dict[str, tuple[int, str]]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: int = 0
    missing_images: list[str] = field(default_factory=list)
    attestation: Attestation | None = None


def export(
    store: LedgerStore,
    dest: str | Path,
    *,
    tz: tzinfo,
    site: str = "site",
    gate: str = "gate",
    images_dir: str | Path | None = None,
    include_images: bool = False,
    report_days: int = 31,
    frequent_per_day: int = 8,
    actor: str = "export",
    device_key: DeviceKey | None = None,
) -> ExportResult:
    """Write one export folder under ``dest/edged-export/`` and remember what was exported.

    With ``device_key`` the heads are attested (signed, stored, kept beside the
    ledger) first, and the attestation goes into the manifest and
    ``ATTESTATION.json``: whoever holds the stick can check the rows against the
    box's key without trusting the stick.
    """
    dest = Path(dest)
    if dest.is_symlink() or not dest.is_dir():
        raise ExportError(f"--to: expected an existing folder (the mounted stick), found {dest}")
    root = dest / "edged-export"
    if root.is_symlink():
        raise ExportError(f"{root} is a symlink on the stick: refusing to write through it")
    root.mkdir(exist_ok=True)

    since_p = int(store.get_state(STATE_PASSAGES, "0") or 0)
    since_a = int(store.get_state(STATE_AUDIT, "0") or 0)
    att: Attestation | None = None
    if device_key is not None:
        att = attest(store, device_key, site, gate)
        heads = att.heads
    else:
        heads = store.heads()
    until_p, until_a = heads["passages"][0], heads["audit"][0]
    stamp = datetime.now(tz).strftime("%Y%m%dT%H%M%S")
    name = f"{site}-{gate}-{stamp}-p{since_p + 1}-{until_p}"
    work = root / f".{name}.partial"
    final = root / name
    if work.exists() or final.exists():
        raise ExportError(f"{final} already exists on the stick; try again in a second")
    work.mkdir()
    res = ExportResult(final, (since_p + 1, until_p), (since_a + 1, until_a), heads)
    res.attestation = att
    days: set[str] = set()
    snaps: list[tuple[str, str]] = []
    try:
        csv_out, jsonl_out = _Out(work, "passages.csv"), _Out(work, "passages.jsonl")
        csv_out.write("\ufeff")
        w = csv.writer(csv_out)
        w.writerow((*COLUMNS, "hash"))
        for seq, digest, prev, fields in store.passage_rows(since_p, until_seq=until_p):
            jsonl_out.write(_raw_line(seq, digest, prev, fields))
            f = json.loads(fields)
            row = [seq] + [f.get(c) for c in COLUMNS[1:]] + [digest]
            w.writerow(
                [
                    "" if v is None else safe_text(",".join(v) if isinstance(v, list) else str(v))
                    for v in row
                ]
            )
            days.add(datetime.fromisoformat(f["time"]).astimezone(tz).date().isoformat())
            if include_images:
                snaps.extend((s["path"], s["sha256"]) for s in f.get("snapshots") or ())
        res.files["passages.csv"] = csv_out.close()
        res.files["passages.jsonl"] = jsonl_out.close()

        audit_out = _Out(work, "audit.jsonl")
        for seq, digest, prev, fields in store.audit_rows(since_a):
            if seq > until_a:
                break
            audit_out.write(_raw_line(seq, digest, prev, fields))
        res.files["audit.jsonl"] = audit_out.close()

        for day in sorted(days)[-report_days:] if report_days else []:
            spec = ReportSpec("daily", day, tz, site, gate, frequent_per_day)
            out = _Out(work / "reports", f"daily-{day}.csv")
            out.write("\ufeff")
            write_report_csv_to(store, spec, out)
            res.files[f"reports/daily-{day}.csv"] = out.close()

        if include_images and images_dir is not None:
            _copy_images(Path(images_dir), work, snaps, res)

        if att is not None:
            out = _Out(work, "ATTESTATION.json")
            out.write(json.dumps(att.to_json(), ensure_ascii=False))
            res.files["ATTESTATION.json"] = out.close()
        manifest = {
            "attestation": att.to_json() if att is not None else None,
            "format": FORMAT,
            "site": site,
            "gate": gate,
            "created": datetime.now(tz).isoformat(timespec="seconds"),
            "passages": {"first_seq": since_p + 1, "last_seq": until_p},
            "audit": {"first_seq": since_a + 1, "last_seq": until_a},
            "heads": {k: {"seq": s, "hash": h} for k, (s, h) in heads.items()},
            "files": res.files,
            "missing_images": res.missing_images,
            "hash_spec": "sha256(prev_hash + ':' + seq + ':' + "
            "fields) over each jsonl row's fields bytes",
        }
        out = _Out(work, "MANIFEST.json")
        out.write(json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True))
        out.close()
        _fsync_dir(work)
        os.replace(work, final)
        _fsync_dir(root)
    except OSError as exc:
        log.error(
            "export_failed",
            dest=str(dest),
            error=str(exc),
            hint="stick removed or full? the partial folder is marked .partial; export again",
        )
        store.append_event("export_failed", "error", f"export to {dest} failed: {exc}")
        raise ExportError(f"export to {dest} failed: {exc} (nothing was marked complete)") from exc

    store.set_state(STATE_PASSAGES, str(until_p))
    store.set_state(STATE_AUDIT, str(until_a))
    store.append_audit(
        actor,
        "export",
        {
            "folder": name,
            "passages": [since_p + 1, until_p],
            "audit": [since_a + 1, until_a],
            "heads": {k: [s, h] for k, (s, h) in heads.items()},
            "images": res.images,
            "attestation": att.n if att is not None else None,
        },
    )
    log.info(
        "export_done",
        folder=str(final),
        passages=max(0, until_p - since_p),
        images=res.images,
        missing_images=len(res.missing_images),
    )
    return res


def _copy_images(
    images_dir: Path, work: Path, snaps: list[tuple[str, str]], res: ExportResult
) -> None:
    for rel, want in snaps:
        src = images_dir / rel
        if not safe_relative_path(rel) or not src.is_file():
            res.missing_images.append(rel)
            continue
        out = _Out(work / "images" / Path(rel).parent, Path(rel).name)
        with src.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                out.write(block)
        meta = out.close()
        if meta["sha256"] != want:
            res.missing_images.append(rel)
            log.warning(
                "export_image_hash_mismatch", path=rel, hint="run edged ledger verify --images"
            )
        res.files[f"images/{rel}"] = meta
        res.images += 1
