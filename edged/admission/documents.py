"""Document photos, stored by content: ``<data_dir>/documents/<sha256>.<ext>``.

The national table wants each vehicle's environmental list (随车清单) and
licence (行驶证), and each machine's engine nameplate (发动机铭牌). A record
holds only the SHA-256 of its photo, so a ledger row can reference the photo
by hash, the same photo given twice is stored once, and a photo edited after
the fact no longer matches its name. Files are checked to be pictures (JPEG,
PNG, WebP) or PDF, and bounded in size.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

_KINDS = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"%PDF-", "pdf"),
)
EXTENSIONS = ("jpg", "png", "webp", "pdf")
DEFAULT_MAX_BYTES = 20 * 1024 * 1024


class DocumentRefused(ValueError):
    """A file that cannot be a document photo (missing, too big, not a picture or PDF)."""


def sniff(head: bytes) -> str | None:
    """The extension a file's first bytes say it is, or None."""
    for magic, ext in _KINDS:
        if head.startswith(magic):
            return ext
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


class DocumentStore:
    """A folder of content-addressed document files."""

    def __init__(self, root: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def put(self, src: str | Path) -> str:
        """Copy ``src`` into the store (once); returns its SHA-256."""
        return self.store(src)[0]

    def store(self, src: str | Path) -> tuple[str, bool]:
        """``put``, also saying whether the file is new to the store."""
        src = Path(src)
        try:
            size = src.stat().st_size
            with src.open("rb") as fh:
                head = fh.read(16)
        except OSError as exc:
            raise DocumentRefused(f"{src}: cannot read ({exc.strerror or exc})") from None
        if not src.is_file():
            raise DocumentRefused(f"{src}: not a file")
        if size > self.max_bytes:
            raise DocumentRefused(
                f"{src}: {size} bytes, over the {self.max_bytes} byte limit for a document photo"
            )
        ext = sniff(head)
        if ext is None:
            raise DocumentRefused(f"{src}: not a JPEG, PNG, WebP picture or a PDF")
        return self.put_bytes(src.read_bytes(), ext)

    def put_bytes(self, data: bytes, ext: str) -> tuple[str, bool]:
        """Store ``data`` as ``<sha256>.<ext>`` unless it is there; write, fsync, rename."""
        digest = hashlib.sha256(data).hexdigest()
        if self.path(digest) is not None:
            return digest, False
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.root / f"{digest}.{ext}")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest, True

    def remove(self, sha256: str) -> None:
        """Take a file out again (an import that was refused after copying it)."""
        p = self.path(sha256)
        if p is not None:
            p.unlink(missing_ok=True)

    def path(self, sha256: str) -> Path | None:
        """The stored file of a digest, None if it is not in the store."""
        if not is_sha256(sha256):
            return None
        for ext in EXTENSIONS:
            p = self.root / f"{sha256}.{ext}"
            if p.is_file():
                return p
        return None

    def verify(self, sha256: str) -> bool:
        """True if the stored file still hashes to its name (an inspector's check)."""
        p = self.path(sha256)
        return p is not None and hashlib.sha256(p.read_bytes()).hexdigest() == sha256
