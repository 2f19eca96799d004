"""Readers that print one tag per line as ASCII hex.

Cheap readers (and many "keyboard mode" ones re-wired to RS232) just print
``E2003412B802011512345678\\r\\n``, sometimes with a prefix (``EPC:``,
``Tag:``), spaces between bytes, or a trailing RSSI. The parser strips a
configurable prefix, keeps the hex, and drops anything that is not a
plausible EPC with a counted, logged reason.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drivers.config import Invalid, doc, driver
from drivers.log import get_logger
from drivers.rfid.base import RfidReader, SerialRfidConfig, TagCallback, TagRead
from drivers.serialport import LineSplitter, SerialLine

log = get_logger("rfid")

DEFAULT_PREFIX = r"^\s*(?:EPC|TAG|ID|UID)?\s*[:=#]?\s*"
_HEX_RUN = re.compile(r"[0-9A-Fa-f]{2}(?:[ \-:]?[0-9A-Fa-f]{2})*")


@dataclass
class AsciiHexStats:
    lines: int = 0
    tags: int = 0
    rejected_lines: int = 0
    overlong_lines: int = 0


class AsciiHexParser:
    """Bytes in, EPC strings out. ``min_hex``/``max_hex`` are lengths in hex digits."""

    def __init__(
        self,
        prefix: str = DEFAULT_PREFIX,
        min_hex: int = 8,
        max_hex: int = 64,
        max_line: int = 256,
        name: str = "rfid",
    ) -> None:
        self._prefix = re.compile(prefix, re.IGNORECASE)
        self.min_hex = min_hex
        self.max_hex = max_hex
        self.max_line = max_line
        self.name = name
        self.stats = AsciiHexStats()
        self._lines = LineSplitter(b"\r\n", max_line)

    def feed(self, data: bytes) -> list[str]:
        lines, overlong = self._lines.feed(data)
        for dropped in overlong:
            self.stats.overlong_lines += 1
            log.warning(
                "asciihex_line_too_long",
                reader=self.name,
                start=dropped[:32].hex(),
                hint="no line end seen: check baud rate and that the reader prints lines",
            )
        return [epc for epc in map(self.parse_line, lines) if epc is not None]

    def parse_line(self, raw: bytes) -> str | None:
        """One line to an upper-case EPC, or None (counted) if it is not one."""
        self.stats.lines += 1
        text = raw.decode("ascii", errors="replace").strip()
        body = self._prefix.sub("", text, count=1)
        match = _HEX_RUN.match(body)
        if match is None:
            return self._reject(raw, "no hex at start of line")
        digits = re.sub(r"[ \-:]", "", match.group(0)).upper()
        rest = body[match.end() :]
        if rest and rest[0] not in " \t,;":
            return self._reject(raw, "hex run followed by other characters")
        if not self.min_hex <= len(digits) <= self.max_hex:
            return self._reject(
                raw, f"{len(digits)} hex digits, expected {self.min_hex}..{self.max_hex}"
            )
        self.stats.tags += 1
        return digits

    def _reject(self, raw: bytes, reason: str) -> None:
        self.stats.rejected_lines += 1
        log.warning(
            "asciihex_line_rejected",
            reader=self.name,
            line=raw[:64].hex(),
            reason=reason,
            hint="check baud rate and the reader output format / prefix setting",
        )
        return None


class AsciiHexReader(RfidReader):
    """Serial line + :class:`AsciiHexParser` -> :class:`TagRead` callbacks."""

    def __init__(
        self,
        port: str,
        baudrate: int,
        on_read: TagCallback,
        *,
        name: str = "rfid",
        prefix: str = DEFAULT_PREFIX,
        min_hex: int = 8,
        max_hex: int = 64,
        on_raw: Callable[[bytes], None] | None = None,
        line_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name, on_read)
        self.parser = AsciiHexParser(prefix, min_hex, max_hex, name=name)
        self._on_raw = on_raw
        self.line = SerialLine(port, baudrate, self._on_bytes, name=name, **(line_kwargs or {}))

    def start(self) -> AsciiHexReader:
        self.line.start()
        return self

    def close(self, timeout: float = 2.0) -> bool:
        return self.line.close(timeout)

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out.update(vars(self.parser.stats))
        out.update({f"line_{k}": v for k, v in self.line.stats().items()})
        return out

    def _on_bytes(self, chunk: bytes) -> None:
        if self._on_raw is not None:
            self._on_raw(chunk)
        for epc in self.parser.feed(chunk):
            self._emit(TagRead(epc=epc, time=time.time(), reader=self.name))


@dataclass(frozen=True)
class AsciiHexConfig(SerialRfidConfig):
    """Readers that print each tag id as a line of hex text."""

    type: str = field(
        default="asciihex",
        metadata=doc("Reader protocol; the keys below depend on it", was="protocol"),
    )
    baudrate: int = field(default=9600, metadata=doc("Serial speed", min=1))
    prefix: str = field(
        default=DEFAULT_PREFIX,
        metadata=doc("Regex stripped from the start of each tag line", was="asciihex_prefix"),
    )
    min_hex: int = field(
        default=8, metadata=doc("Shortest accepted id, hex digits", min=1, was="asciihex_min_hex")
    )
    max_hex: int = field(
        default=64, metadata=doc("Longest accepted id, hex digits", min=1, was="asciihex_max_hex")
    )

    def __post_init__(self) -> None:
        problems = []
        try:  # the reader compiles it at start; a bad one must be a config error, not a crash
            re.compile(self.prefix)
        except re.error as exc:
            problems.append(("prefix", f"not a valid regular expression ({exc})"))
        if self.min_hex > self.max_hex:
            problems.append(
                ("min_hex", f"must be <= max_hex, found {self.min_hex} > {self.max_hex}")
            )
        if problems:
            raise Invalid(problems)


@driver("rfid", "asciihex", AsciiHexConfig, "one hex tag id per text line")
def _build(
    cfg: AsciiHexConfig,
    *,
    on_read: TagCallback,
    name: str = "rfid",
    on_raw: Callable[[bytes], None] | None = None,
    line_kwargs: dict[str, Any] | None = None,
    **_: Any,
) -> AsciiHexReader:
    return AsciiHexReader(
        cfg.port,
        cfg.baudrate,
        on_read,
        name=name,
        prefix=cfg.prefix,
        min_hex=cfg.min_hex,
        max_hex=cfg.max_hex,
        on_raw=on_raw,
        line_kwargs=line_kwargs,
    )
