"""A small seeded mutation fuzzer for the daemon's parsers.

Every parser that reads bytes from a device, a broker, a platform or a
technician must either return a result or refuse with its own documented
error; anything else (a stray ``TypeError``, ``RecursionError``, a hang) is a
crash in the field. The fuzzer starts from real, valid inputs (built with the
project's own encoders), mutates them the way cables, firmware and people do
(bit flips, truncation, junk, spliced samples, huge lengths, non-UTF-8, NUL,
Chinese text) and runs each result through the parser for a bounded time.

Runs are reproducible: one ``random.Random(seed)`` drives the whole run, so a
failure names the seed and the iteration, and shows the input.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

SECONDS = float(os.environ.get("EDGED_FUZZ_SECONDS", "2.5"))
"""Time budget per parser (``EDGED_FUZZ_SECONDS=60`` for a long run)."""
MAX_ITERATIONS = int(os.environ.get("EDGED_FUZZ_ITERATIONS", "200000"))
SEED = int(os.environ.get("EDGED_FUZZ_SEED", "212"))
HANG_S = 5.0
"""One input taking longer than this is reported as a hang."""

INTERESTING_BYTES = b"\x00\x01\x02\x03\x0a\x0d\x1b\x7f\x80\xa0\xff#;=&,\"'[]{}\\-+.0129"
INTERESTING_NUMBERS = (
    b"0",
    b"-1",
    b"-0",
    b"1e309",
    b"-1e309",
    b"NaN",
    b"nan",
    b"inf",
    b"9" * 40,
    b"18446744073709551616",
    b"-9223372036854775809",
    b"0x1F",
    b"1_000",
    b"\xef\xbc\x91",  # full-width digit one
    b"",
)
NON_UTF8 = (b"\xff", b"\xfe\xff", b"\xc3\x28", b"\x80", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80")
CJK = "冀京晋豫粤沪苏浙鲁川渝蒙新藏宁桂琼黑吉辽甘青陕闽赣湘鄂皖津警学挂领使港澳电子标签车牌号黄绿"


class FuzzHang(Exception):
    """Raised in the main thread when one input ran past :data:`HANG_S`."""


@dataclass
class FuzzStats:
    """What a run did: the figures behind a green test."""

    name: str
    seed: int
    tried: int = 0
    accepted: int = 0
    refused: int = 0
    seconds: float = 0.0
    reasons: set[str] = field(default_factory=set)


class Mutator:
    """Byte-level mutations, stacked 1-4 deep, from a corpus of valid samples."""

    def __init__(self, corpus: Sequence[bytes]) -> None:
        if not corpus:
            raise ValueError("corpus: expected at least one valid sample")
        self.rng = random.Random(0)
        self.corpus = list(corpus)
        self.ops: list[Callable[[bytes], bytes]] = [
            self.bit_flip,
            self.set_byte,
            self.truncate,
            self.insert_random,
            self.delete_range,
            self.duplicate_range,
            self.splice,
            self.huge,
            self.non_utf8,
            self.nul,
            self.cjk,
            self.number,
        ]

    def sample(self) -> bytes:
        return self.rng.choice(self.corpus)

    def mutate(self, rng: random.Random, data: bytes | None = None) -> bytes:
        """A mutant of ``data`` (or of a corpus sample) drawn from ``rng`` alone, so a
        run's inputs depend only on its seed, never on timing."""
        self.rng = rng
        out = self.sample() if data is None else data
        for _ in range(self.rng.choice((1, 1, 1, 2, 2, 3, 4))):
            out = self.rng.choice(self.ops)(out)
        return out

    # -- operations --------------------------------------------------------------
    def _pos(self, data: bytes) -> int:
        return self.rng.randint(0, len(data))

    def bit_flip(self, data: bytes) -> bytes:
        if not data:
            return bytes([self.rng.randrange(256)])
        buf = bytearray(data)
        for _ in range(self.rng.randint(1, 8)):
            i = self.rng.randrange(len(buf))
            buf[i] ^= 1 << self.rng.randrange(8)
        return bytes(buf)

    def set_byte(self, data: bytes) -> bytes:
        if not data:
            return bytes([self.rng.choice(INTERESTING_BYTES)])
        buf = bytearray(data)
        buf[self.rng.randrange(len(buf))] = self.rng.choice(INTERESTING_BYTES)
        return bytes(buf)

    def truncate(self, data: bytes) -> bytes:
        cut = self._pos(data)
        return data[:cut] if self.rng.random() < 0.7 else data[cut:]

    def insert_random(self, data: bytes) -> bytes:
        junk = self.rng.randbytes(self.rng.choice((1, 2, 4, 16, 64)))
        i = self._pos(data)
        return data[:i] + junk + data[i:]

    def delete_range(self, data: bytes) -> bytes:
        if not data:
            return data
        i = self.rng.randrange(len(data))
        j = min(len(data), i + self.rng.choice((1, 2, 4, 16, 64)))
        return data[:i] + data[j:]

    def duplicate_range(self, data: bytes) -> bytes:
        if not data:
            return data
        i = self.rng.randrange(len(data))
        j = min(len(data), i + self.rng.randint(1, 64))
        return data[:j] + data[i:j] * self.rng.randint(1, 8) + data[j:]

    def splice(self, data: bytes) -> bytes:
        other = self.sample()
        return data[: self._pos(data)] + other[self._pos(other) :]

    def huge(self, data: bytes) -> bytes:
        """Huge lengths: a long run of one byte, a chunk repeated, or a giant number."""
        i = self._pos(data)
        kind = self.rng.randrange(3)
        if kind == 0:
            blob = bytes([self.rng.choice(INTERESTING_BYTES)]) * self.rng.choice((300, 5000, 70000))
        elif kind == 1:
            blob = (data[i : i + 16] or b"A") * self.rng.choice((100, 3000))
        else:
            blob = b"9" * self.rng.choice((20, 400, 5000))
        return data[:i] + blob + data[i:]

    def non_utf8(self, data: bytes) -> bytes:
        i = self._pos(data)
        if self.rng.random() < 0.3:  # Chinese text as GBK, what old loggers and Excel send
            blob = self._cjk_text().encode("gbk", errors="ignore")
        else:
            blob = self.rng.choice(NON_UTF8)
        return data[:i] + blob + data[i:]

    def nul(self, data: bytes) -> bytes:
        i = self._pos(data)
        return data[:i] + b"\x00" * self.rng.choice((1, 1, 2, 8)) + data[i:]

    def _cjk_text(self) -> str:
        return "".join(self.rng.choice(CJK) for _ in range(self.rng.randint(1, 8)))

    def cjk(self, data: bytes) -> bytes:
        i = self._pos(data)
        blob = self._cjk_text().encode("utf-8")
        if self.rng.random() < 0.3 and data:  # replace instead of insert
            j = min(len(data), i + len(blob))
            return data[:i] + blob + data[j:]
        return data[:i] + blob + data[i:]

    def number(self, data: bytes) -> bytes:
        """Replace a run of digits with an edge-case number."""
        digits = [i for i, b in enumerate(data) if 0x30 <= b <= 0x39]
        if not digits:
            return self.insert_random(data)
        i = self.rng.choice(digits)
        j = i
        while j < len(data) and 0x30 <= data[j] <= 0x39:
            j += 1
        while i > 0 and 0x30 <= data[i - 1] <= 0x39:
            i -= 1
        return data[:i] + self.rng.choice(INTERESTING_NUMBERS) + data[j:]


# -- structure-aware mutation of JSON / TOML trees -----------------------------------


def odd_value(rng: random.Random) -> Any:
    """A value of a surprising type or size, for a field of a parsed document."""
    choices: list[Callable[[], Any]] = [
        lambda: None,
        lambda: True,
        lambda: 0,
        lambda: -1,
        lambda: 2**63,
        lambda: -(2**64),
        lambda: 10**400,
        lambda: 0.5,
        lambda: -0.0,
        lambda: 1e308,
        lambda: math.nan,
        lambda: math.inf,
        lambda: -math.inf,
        lambda: "",
        lambda: " ",
        lambda: "x" * rng.choice((65, 1000, 70000)),
        lambda: "".join(rng.choice(CJK) for _ in range(rng.randint(1, 12))),
        lambda: "\x00",
        lambda: "a\nb",
        lambda: "([*+?",
        lambda: "2024-13-45T25:61:00",
        lambda: "9999-12-31",
        lambda: "0000-00-00",
        lambda: "../../etc/passwd",
        lambda: "/",
        lambda: "$SYS/#",
        lambda: [],
        lambda: [1, "a", None],
        lambda: ["冀B12345"] * rng.randint(1, 3),
        lambda: {},
        lambda: {"x": 1},
        lambda: {"": {"": []}},
    ]
    return rng.choice(choices)()


def mutate_tree(rng: random.Random, doc: Any, depth: int = 0) -> Any:
    """Return a copy of a JSON-like tree with one node changed, dropped or added."""
    if isinstance(doc, dict) and doc and depth < 6 and rng.random() < 0.8:
        key = rng.choice(list(doc))
        out = dict(doc)
        action = rng.random()
        if action < 0.1:
            del out[key]
        elif action < 0.2:
            out[rng.choice(("unknown", "x", "车牌", "", key + "_"))] = odd_value(rng)
        else:
            out[key] = mutate_tree(rng, doc[key], depth + 1)
        return out
    if isinstance(doc, list) and doc and depth < 6 and rng.random() < 0.8:
        out_list = list(doc)
        i = rng.randrange(len(out_list))
        action = rng.random()
        if action < 0.15:
            del out_list[i]
        elif action < 0.3:
            out_list.append(out_list[i])
        else:
            out_list[i] = mutate_tree(rng, out_list[i], depth + 1)
        return out_list
    if isinstance(doc, str) and doc and rng.random() < 0.5:
        data = Mutator([doc.encode()]).mutate(rng, doc.encode())
        return data.decode("utf-8", errors="replace")
    return odd_value(rng)


def json_text(doc: Any) -> bytes:
    """JSON as a sender would write it (NaN/Infinity as Python's json writes them)."""
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", errors="surrogatepass")


def _toml_key(key: str) -> str:
    if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key):
        return key
    return json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if value is None:
        return '""'  # TOML has no null: an empty string is the nearest a person would write
    return json.dumps(str(value))  # dates and times from tomllib


def dump_toml(doc: dict[str, Any]) -> str:
    """TOML text for a tree: tables as ``[section]``, arrays of tables as ``[[name]]``."""
    lines: list[str] = []
    for key, value in doc.items():
        if not isinstance(value, dict | list):
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in doc.items():
        if isinstance(value, dict):
            lines.append(f"[{_toml_key(key)}]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                lines.append(f"[[{_toml_key(key)}]]")
                lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items()]
        elif isinstance(value, list):
            lines.insert(0, f"{_toml_key(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


# -- the run -------------------------------------------------------------------------


def _show(data: Any, limit: int = 3000) -> str:
    text = repr(data)
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]} ... ({len(text)} characters) ... {text[-limit // 2 :]}"


class _Watchdog:
    """SIGALRM on the main thread turns a parser that never returns into a report."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.armed = threading.current_thread() is threading.main_thread()
        self._old: Any = None

    def __enter__(self) -> _Watchdog:
        if self.armed:
            self._old = signal.signal(signal.SIGALRM, self._fire)
        return self

    def _fire(self, *_a: object) -> None:
        raise FuzzHang(f"no answer within {self.seconds} s")

    def arm(self) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def disarm(self) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def __exit__(self, *exc: object) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old)


def fuzz(
    name: str,
    target: Callable[[Any], Any],
    generate: Callable[[random.Random], Any],
    *,
    allowed: tuple[type[BaseException], ...] = (),
    seconds: float = SECONDS,
    max_iterations: int = MAX_ITERATIONS,
    seed: int = SEED,
) -> FuzzStats:
    """Feed ``target`` generated inputs until the time or iteration budget is spent.

    ``target`` returning is fine, raising one of ``allowed`` is a clean refusal;
    any other exception (the parser's own assertion included) or a hang fails
    the test with the seed, the iteration and the input.
    """
    rng = random.Random(f"{name}:{seed}")
    stats = FuzzStats(name, seed)
    t0 = time.monotonic()
    with _Watchdog(HANG_S) as dog:
        while stats.tried < max_iterations and time.monotonic() - t0 < seconds:
            data = generate(rng)
            stats.tried += 1
            try:
                dog.arm()
                try:
                    target(data)
                finally:
                    dog.disarm()
            except allowed as exc:
                stats.refused += 1
                if len(stats.reasons) < 1000:
                    stats.reasons.add(type(exc).__name__ + ": " + str(exc)[:60])
                continue
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                raise AssertionError(
                    f"{name}: {type(exc).__name__}: {exc}\n"
                    f"  expected a result or one of {[a.__name__ for a in allowed]}\n"
                    f"  reproduce: EDGED_FUZZ_SEED={seed} EDGED_FUZZ_ITERATIONS={stats.tried}"
                    f" EDGED_FUZZ_SECONDS=600 (input {stats.tried} of run {name!r})\n"
                    f"  input: {_show(data)}"
                ) from exc
            stats.accepted += 1
    stats.seconds = time.monotonic() - t0
    return stats


def chunks(rng: random.Random, data: bytes) -> list[bytes]:
    """``data`` cut into the odd-sized pieces a serial read or TCP recv returns."""
    out = []
    i = 0
    while i < len(data):
        n = rng.choice((1, 2, 3, 7, 12, 64, 255, 4096))
        out.append(data[i : i + n])
        i += n
    return out
