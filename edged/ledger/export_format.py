"""What an export folder holds, byte for byte: shared by the writer and ``edged export verify``.

Kept apart so that the checker on an inspector's laptop and the box that
wrote the stick agree on every name and every cell, and neither needs the
other's machinery. Pure: no I/O.

- ``passages.jsonl`` / ``audit.jsonl``: one row a line, ``{"seq":…,"prev_hash":…,
  "hash":…,"fields":<the stored canonical JSON, byte for byte>}``.
- ``passages.csv``: the same rows for people, one line each: :data:`CSV_COLUMNS`,
  cells from :func:`csv_cells` (spreadsheet-safe), UTF-8 with BOM.
- ``photos/<seq>/snapshot-<n>.<ext>`` and ``photos/<seq>/<document kind>.<ext>``:
  a row's snapshots and document photos, in a folder named by the row.
- ``MANIFEST.json``: every file with size and SHA-256, the chain ranges and
  heads, the attestation; ``MANIFEST.sig``: the device key's Ed25519 signature
  over the exact bytes of ``MANIFEST.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from edged.sheets.table import safe_text

FORMAT = "edged-export/2"
MANIFEST = "MANIFEST.json"
SIGNATURE = "MANIFEST.sig"
SIG_KIND = "edged-export-signature/1"
HASH_SPEC = (
    "sha256(prev_hash + ':' + seq + ':' + fields) over each jsonl row's fields bytes;"
    " MANIFEST.sig is Ed25519 over the bytes of MANIFEST.json"
)

#: passages.csv: the columns people filter on, then the row's hash.
CSV_COLUMNS = (
    "seq",
    "time",
    "gate",
    "lane",
    "direction",
    "plate",
    "plate_colour",
    "vehicle_type",
    "vin",
    "engine_no",
    "fuel",
    "emission_stage",
    "stage_code",
    "category",
    "fleet",
    "decision",
    "reason_code",
    "reason_zh",
    "id_source",
    "rfid_tag",
    "weight_kg",
    "net_t",
    "cargo",
    "alert_level",
    "flags",
    "correction_of",
    "operator",
    "event_id",
    "hash",
)

_ROW = re.compile(r'^\{"seq":(\d+),"prev_hash":"([0-9a-f]{64})","hash":"([0-9a-f]{64})","fields":')


def raw_line(seq: int, digest: str, prev: str, fields: str) -> str:
    return f'{{"seq":{seq},"prev_hash":"{prev}","hash":"{digest}","fields":{fields}}}\n'


def parse_line(line: str) -> tuple[int, str, str, bytes]:
    """(seq, prev_hash, hash, fields bytes as written) of a jsonl line; ValueError if not one."""
    m = _ROW.match(line)
    if not m or not line.endswith("}"):
        raise ValueError("not an exported row")
    return int(m.group(1)), m.group(2), m.group(3), line[m.end() : -1].encode("utf-8")


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    return safe_text(str(value))


def csv_cells(seq: int, digest: str, fields: Mapping[str, Any]) -> list[str]:
    """One passages.csv line from the hashed fields: what verify expects to find there."""
    return [str(seq)] + [cell(fields.get(c)) for c in CSV_COLUMNS[1:-1]] + [digest]


def snapshot_name(seq: int, n: int, path: str) -> str:
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else "jpg"
    ext = ext if re.fullmatch(r"[a-z0-9]{1,5}", ext) else "jpg"
    return f"photos/{seq}/snapshot-{n}.{ext}"


def document_name(seq: int, kind: str, ext: str) -> str:
    kind = kind if re.fullmatch(r"[a-z_]{1,32}", kind) else "document"
    return f"photos/{seq}/{kind}.{ext}"


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """How MANIFEST.json is written (readable; the signature covers these exact bytes)."""
    return json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")


#: Characters no FAT or exFAT file name may hold, and names Windows reserves.
_FAT_BAD = set('"*/:<>?\\|') | {chr(c) for c in range(32)}
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10))} | {
    f"LPT{i}" for i in range(1, 10)
}


def fat_safe(name: str) -> bool:
    """A path a FAT32/exFAT stick can hold: no forbidden characters, no trailing dot or
    space, no reserved device names, parts at most 255 characters."""
    for part in name.split("/"):
        if not part or len(part) > 255 or _FAT_BAD & set(part):
            return False
        if part.endswith((".", " ")) or part.split(".")[0].upper() in _RESERVED:
            return False
    return True
