"""``type = "ascii"``: indicators that print one weight per line (the regex finds it)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from drivers.config import Invalid, doc, driver
from drivers.log import get_logger
from drivers.scale import UNIT_TO_KG, ScaleConfig, ScaleParserStats
from drivers.scale.reader import ScaleReader
from drivers.serialport import LineSplitter

log = get_logger("scale")

STX, ETX = 0x02, 0x03
DEFAULT_ASCII_REGEX = r"(?P<weight>[+-]?\s*\d+(?:\.\d+)?)\s*(?P<unit>kg|t|g|lb)?"


@dataclass(frozen=True)
class AsciiScaleConfig(ScaleConfig):
    type: str = field(
        default="ascii", metadata=doc("Indicator output; the keys below depend on it", was="format")
    )
    regex: str = field(
        default=DEFAULT_ASCII_REGEX,
        metadata=doc("Regex with group 'weight' and optional group 'unit', searched in each line"),
    )

    def __post_init__(self) -> None:
        try:
            pattern = re.compile(self.regex)
        except re.error as exc:
            raise Invalid([("regex", f"not a valid regular expression ({exc})")]) from None
        if "weight" not in pattern.groupindex:
            raise Invalid([("regex", f"needs a named group (?P<weight>...), found {self.regex!r}")])


class AsciiWeightParser:
    """Line-oriented indicators: the regex picks the weight (and unit) out of each line."""

    def __init__(
        self,
        regex: str = DEFAULT_ASCII_REGEX,
        unit: str = "kg",
        max_line: int = 128,
        name: str = "scale",
    ) -> None:
        self._re = re.compile(regex, re.IGNORECASE)
        self.default_factor = UNIT_TO_KG[unit]
        self.max_line = max_line
        self.name = name
        self.stats = ScaleParserStats()
        self._lines = LineSplitter(bytes((0x0A, 0x0D, STX, ETX)), max_line)

    def feed(self, data: bytes) -> list[float]:
        lines, overlong = self._lines.feed(data)
        for dropped in overlong:
            self.stats.overlong_lines += 1
            self.stats.garbage_bytes += len(dropped)
            log.warning(
                "scale_line_too_long",
                scale=self.name,
                start=dropped[:32].hex(),
                hint="no line end seen: check baud rate and the indicator output mode",
            )
        return [v for v in map(self.parse_line, lines) if v is not None]

    def parse_line(self, raw: bytes) -> float | None:
        text = raw.decode("ascii", errors="replace")
        m = self._re.search(text)
        if m is None:
            self.stats.rejected_lines += 1
            log.warning(
                "scale_line_rejected",
                scale=self.name,
                line=raw[:64].hex(),
                hint="line does not match the configured weight regex",
            )
            return None
        try:
            value = float(m.group("weight").replace(" ", ""))
        except ValueError:
            self.stats.rejected_lines += 1
            return None
        unit = (m.groupdict().get("unit") or "").lower()
        self.stats.frames += 1
        return value * UNIT_TO_KG.get(unit, self.default_factor)


@driver("scale", "ascii", AsciiScaleConfig, "one weight per text line")
def _build(cfg: AsciiScaleConfig, *, name: str = "scale", **kwargs: Any) -> ScaleReader:
    """The reader around this model's parser; ``kwargs`` are :class:`ScaleReader`'s callbacks."""
    return ScaleReader(cfg, AsciiWeightParser(cfg.regex, cfg.unit, name=name), name=name, **kwargs)
