"""Export to a USB stick or folder: rows, reports, the national tables, a signed manifest.

What goes out (file formats in :mod:`edged.ledger.export_format`):
``passages.jsonl`` / ``audit.jsonl`` (the hashed rows byte for byte),
``passages.csv`` (the same rows for people), ``reports/daily-<day>.csv``,
``national/`` (the national-format tables, CSV and XLSX), ``photos/<seq>/``
(snapshots and document photos, with ``export_images``), ``logger/`` (the data
logger's minute/hour/day data, when the box has a logger), ``ATTESTATION.json``
and ``MANIFEST.json`` signed by the device key in ``MANIFEST.sig``. Anyone with
the package checks it with ``edged export verify DIR`` (:mod:`edged.ledger.export_verify`).

Two kinds: the automatic export carries the rows since the last one and
moves that position; a range export (``--from``/``--to``) carries the rows
of a time range and leaves the position where it was, so an inspector's
stick never makes the next automatic export skip anything.

A stick can be pulled at any moment, so nothing on it may *look* complete
before it is: everything goes into ``.<name>.partial/``, each file under a
temporary name, fsynced, renamed; the manifest is written last, then the
folder is renamed. Files are created with O_EXCL in a folder we just made;
the only thing read from a stick is the marker (:mod:`edged.ledger.stick`).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from edged.devicekey import DeviceKey
from edged.ledger.attest import Attestation, attest
from edged.ledger.chain import GENESIS_HASH
from edged.ledger.export_format import (
    CSV_COLUMNS,
    FORMAT,
    HASH_SPEC,
    MANIFEST,
    SIG_KIND,
    SIGNATURE,
    csv_cells,
    manifest_bytes,
    raw_line,
)
from edged.ledger.national import Photos, write_national
from edged.ledger.reports import ReportSpec, standing_rows, write_report_csv_to
from edged.ledger.store import LedgerStore, seq_range
from edged.logs import get_logger

log = get_logger("ledger")

STATE_PASSAGES = "export.passages_seq"
STATE_AUDIT = "export.audit_seq"
STATE_LOGGER = "export.logger"  # JSON: period -> start of the first period not yet exported

#: (folder, where each period starts (None: all kept), end (None: what is closed)) ->
#: (files written, where each period stopped). See edged.datalogger.export.export_to_folder.
LoggerExport = Callable[
    [Path, dict[str, datetime | None], datetime | None],
    tuple[list[str], dict[str, datetime]],
]


class ExportError(Exception):
    """The export could not be done; nothing marked complete was left behind."""


class _Out:
    """A new file written once: created with O_EXCL, fsynced, renamed into place."""

    def __init__(self, folder: Path, name: str) -> None:
        self.final = folder / name
        self.tmp = folder / f".{name}.partial"
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.tmp, "xb")  # noqa: SIM115 - closed in close()

    def write(self, data: str | bytes) -> int:
        self.fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        return len(data)

    def close(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.replace(self.tmp, self.final)


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


def file_digest(path: Path) -> dict[str, Any]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return {"size": size, "sha256": h.hexdigest()}


@dataclass
class Segment:
    """The rows of one chain that went out: seq range, the hash before and the last hash."""

    first: int
    last: int
    prev_hash: str = GENESIS_HASH
    last_hash: str = GENESIS_HASH
    rows: int = 0
    days: set[str] = field(default_factory=set)  # site-time days the rows fall on

    def to_json(self) -> dict[str, Any]:
        return {
            "first_seq": self.first,
            "last_seq": self.last,
            "rows": self.rows,
            "first_prev_hash": self.prev_hash,
            "last_hash": self.last_hash,
        }


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
    signed: bool = False
    national: dict[str, int] = field(default_factory=dict)
    logger_files: list[str] = field(default_factory=list)


def export(
    store: LedgerStore,
    dest: str | Path,
    *,
    tz: tzinfo,
    site: str = "site",
    gate: str = "gate",
    plant: str = "",
    gate_name: str = "",
    images_dir: str | Path | None = None,
    documents_dir: str | Path | None = None,
    include_images: bool = False,
    report_days: int = 31,
    frequent_per_day: int = 8,
    actor: str = "export",
    device_key: DeviceKey | None = None,
    start: float | None = None,
    end: float | None = None,
    logger_export: LoggerExport | None = None,
) -> ExportResult:
    """Write one export folder under ``dest/edged-export/``.

    Without ``start``/``end``: the rows since the last export, and the position
    moves. With them (UNIX times, end exclusive): the rows of that range, and the
    position stays. With ``device_key`` the heads are attested first and the
    manifest is signed.
    """
    dest = Path(dest)
    if dest.is_symlink() or not dest.is_dir():
        raise ExportError(f"--to: expected an existing folder (the mounted stick), found {dest}")
    root = dest / "edged-export"
    if root.is_symlink():
        raise ExportError(f"{root} is a symlink on the stick: refusing to write through it")
    root.mkdir(exist_ok=True)
    ranged = start is not None or end is not None

    att: Attestation | None = None
    if device_key is not None:
        att = attest(store, device_key, site, gate)
        heads = att.heads
    else:
        heads = store.heads()
    if ranged:
        lo, hi = start if start is not None else 0.0, end if end is not None else 1e12
        p_range = seq_range(store, "passages", lo, hi) or (1, 0)
        a_range = seq_range(store, "audit", lo, hi) or (1, 0)
    else:
        p_range = (int(store.get_state(STATE_PASSAGES, "0") or 0) + 1, heads["passages"][0])
        a_range = (int(store.get_state(STATE_AUDIT, "0") or 0) + 1, heads["audit"][0])
    now = datetime.now(tz)
    name = f"{site}-{gate}-{now.strftime('%Y%m%dT%H%M%S')}-p{p_range[0]}-{p_range[1]}"
    name += "-range" if ranged else ""
    base, n = name, 1
    while (root / name).exists() or (root / f".{name}.partial").exists():
        n += 1  # two exports within a second: the second gets its own folder
        name = f"{base}-{n}"
    work, final = root / f".{name}.partial", root / name
    work.mkdir()
    res = ExportResult(final, p_range, a_range, heads, attestation=att)
    logger_marks: dict[str, datetime] = {}
    try:
        segs = {
            "passages": _write_passages(store, work, tz, *p_range),
            "audit": _write_audit(store, work, *a_range),
        }
        days = segs["passages"].days
        spec = ReportSpec("daily", "", tz, plant or site, gate_name or gate, frequent_per_day)
        for day in sorted(days)[-report_days:] if report_days else []:
            out = _Out(work / "reports", f"daily-{day}.csv")
            out.write("\ufeff")
            write_report_csv_to(store, dataclasses.replace(spec, date=day), _Text(out))
            out.close()
        photos = (
            Photos(work, Path(images_dir) if images_dir else None, _opt(documents_dir))
            if include_images
            else None
        )
        if photos is not None:
            _row_photos(store, photos, *p_range)
        nat = write_national(
            standing_rows(store, p_range[0] - 1, until_seq=p_range[1]),
            work / "national",
            tz,
            photos=photos,
            title=f"{plant or site} {gate_name or gate}",
        )
        res.national, res.images, res.missing_images = nat.rows, nat.photos, nat.missing_photos
        if logger_export is not None:
            res.logger_files, logger_marks = _logger(store, logger_export, work, start, end)
        if att is not None:
            out = _Out(work, "ATTESTATION.json")
            out.write(json.dumps(att.to_json(), ensure_ascii=False))
            out.close()
        res.files = _digests(work)
        manifest = {
            "format": FORMAT,
            "site": site,
            "gate": gate,
            "plant": plant,
            "gate_name": gate_name,
            "created": now.isoformat(timespec="seconds"),
            "key": device_key.public_hex if device_key is not None else None,
            "range": _range_json(start, end, tz) if ranged else None,
            "passages": segs["passages"].to_json(),
            "audit": segs["audit"].to_json(),
            "heads": {k: {"seq": s, "hash": h} for k, (s, h) in heads.items()},
            "attestation": att.to_json() if att is not None else None,
            "files": res.files,
            "csv_columns": list(CSV_COLUMNS),
            "national": nat.rows,
            "missing_photos": res.missing_images,
            "logger": res.logger_files,
            "hash_spec": HASH_SPEC,
        }
        body = manifest_bytes(manifest)
        out = _Out(work, MANIFEST)
        out.write(body)
        out.close()
        if device_key is not None:
            sig = {"kind": SIG_KIND, "key": device_key.public_hex, "sig": device_key.sign(body)}
            out = _Out(work, SIGNATURE)
            out.write(json.dumps(sig, ensure_ascii=False, indent=1))
            out.close()
            res.signed = True
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

    if not ranged:
        store.set_state(STATE_PASSAGES, str(p_range[1]))
        store.set_state(STATE_AUDIT, str(a_range[1]))
        if logger_marks:
            store.set_state(
                STATE_LOGGER,
                json.dumps({k: v.isoformat(timespec="seconds") for k, v in logger_marks.items()}),
            )
    store.append_audit(
        actor,
        "export",
        {
            "folder": name,
            "passages": list(p_range),
            "audit": list(a_range),
            "range": _range_json(start, end, tz) if ranged else None,
            "heads": {k: [s, h] for k, (s, h) in heads.items()},
            "images": res.images,
            "attestation": att.n if att is not None else None,
            "signed": res.signed,
        },
    )
    log.info(
        "export_done",
        folder=str(final),
        passages=max(0, p_range[1] - p_range[0] + 1),
        images=res.images,
        missing_images=len(res.missing_images),
        signed=res.signed,
        range=ranged,
    )
    return res


class _Text:
    """A text stream over an :class:`_Out` (the csv module writes str)."""

    def __init__(self, out: _Out) -> None:
        self.out = out

    def write(self, s: str) -> int:
        return self.out.write(s)


def _opt(p: str | Path | None) -> Path | None:
    return Path(p) if p else None


def _range_json(start: float | None, end: float | None, tz: tzinfo) -> dict[str, Any]:
    def iso(t: float | None) -> str | None:
        return None if t is None else datetime.fromtimestamp(t, tz).isoformat(timespec="seconds")

    return {"from": iso(start), "to": iso(end)}


def _segment(store: LedgerStore, chain: str, first: int, last: int) -> Segment:
    """A segment starts after row ``first - 1``: its hash links the segment to what came
    before (and, for an export with no new rows, is where the chain stands)."""
    seg = Segment(first, last)
    if first > 1:
        rows = (
            store.passage_rows(first - 2, until_seq=first - 1)
            if chain == "passages"
            else store.audit_rows(first - 2)
        )
        row = next(iter(rows), None)
        if row is not None:
            seg.prev_hash = seg.last_hash = row[1]
    return seg


def _write_passages(store: LedgerStore, work: Path, tz: tzinfo, first: int, last: int) -> Segment:
    seg = _segment(store, "passages", first, last)
    csv_out, jsonl_out = _Out(work, "passages.csv"), _Out(work, "passages.jsonl")
    csv_out.write("\ufeff")
    w = csv.writer(_Text(csv_out), lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    if last >= first:
        for seq, digest, prev, fields in store.passage_rows(first - 1, until_seq=last):
            if seg.rows == 0:
                seg.prev_hash = prev
            seg.last_hash = digest
            seg.rows += 1
            jsonl_out.write(raw_line(seq, digest, prev, fields))
            f = json.loads(fields)
            w.writerow(csv_cells(seq, digest, f))
            seg.days.add(datetime.fromisoformat(f["time"]).astimezone(tz).date().isoformat())
    csv_out.close()
    jsonl_out.close()
    return seg


def _write_audit(store: LedgerStore, work: Path, first: int, last: int) -> Segment:
    seg = _segment(store, "audit", first, last)
    out = _Out(work, "audit.jsonl")
    if last >= first:
        for seq, digest, prev, fields in store.audit_rows(first - 1):
            if seq > last:
                break
            if seg.rows == 0:
                seg.prev_hash = prev
            seg.last_hash = digest
            seg.rows += 1
            out.write(raw_line(seq, digest, prev, fields))
    out.close()
    return seg


def _logger(
    store: LedgerStore,
    logger_export: LoggerExport,
    work: Path,
    start: float | None,
    end: float | None,
) -> tuple[list[str], dict[str, datetime]]:
    """The logger's data under logger/: of the range, or since the last automatic export.

    The logger keeps naive local times (HJ 212 DataTime, the box's clock), so a
    range is turned into the box's local time, not the site zone.
    """
    if start is not None or end is not None:
        begin = datetime.fromtimestamp(start) if start is not None else None
        until = datetime.fromtimestamp(end) if end is not None else datetime.now()
        files, _ = logger_export(work / "logger", dict.fromkeys(_PERIODS, begin), until)
        return files, {}
    try:
        marks = json.loads(store.get_state(STATE_LOGGER) or "{}")
        begins = {p: datetime.fromisoformat(marks[p]) if marks.get(p) else None for p in _PERIODS}
    except (ValueError, TypeError, AttributeError):
        begins = dict.fromkeys(_PERIODS)  # an unreadable mark: export all that is kept
    return logger_export(work / "logger", begins, None)


_PERIODS = ("minute", "hour", "day")


def _row_photos(store: LedgerStore, photos: Photos, first: int, last: int) -> None:
    """Every exported row's snapshots, refused and held ones too, in ``photos/<seq>/``
    (a correction's are its original's, under the original's seq)."""
    if last < first:
        return
    for p in store.passages(first - 1, until_seq=last):
        seq = p.record.correction_of or p.seq
        for n, snap in enumerate(p.record.snapshots, 1):
            photos.snapshot(seq, n, snap.path, snap.sha256)


def _digests(work: Path) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every file written, by path relative to the export folder."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in work.rglob("*") if p.is_file()):
        rel = path.relative_to(work).as_posix()
        if rel in (MANIFEST, SIGNATURE):
            continue
        out[rel] = file_digest(path)
    return out
