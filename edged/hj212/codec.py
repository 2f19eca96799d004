"""HJ 212 packets: encode, decode, split and reassemble -- pure, no I/O.

A packet on the wire is ``##`` + 4-digit decimal length of the data segment +
data segment + 4 hex digits CRC + ``\\r\\n``. The data segment is
``QN=..;ST=..;CN=..;PW=..;MN=..;Flag=..;[PNUM=..;PNO=..;]CP=&&...&&``.

Both styles found in the field are accepted: 2005-style (no QN, no Flag) and
2017-style. Values inside CP are kept as the exact text received (``2.69700``
stays ``2.69700``) so a packet re-encodes byte for byte; :meth:`Cp.number`
gives floats where the caller wants them.

Every refusal is an :class:`Hj212Error` that names the reason, the field and
the byte offset, plus the QnRtn code a logger answers a bad platform request
with, so the uplink can reply correctly without re-parsing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from edged.hj212.crc import crc16_hex

MAX_DATA_LEN = 1024
"""Longest data segment the standard allows; longer content is split."""

# Flag bits (HJ 212-2017 6.3.2): bit 0 A = reply wanted, bit 1 D = split
# packet carrying PNUM/PNO, bits 2..7 protocol version (000001 = 2017).
FLAG_REPLY = 0x01
FLAG_SPLIT = 0x02
FLAG_V2017 = 0x04

DATA_FLAGS: dict[str, str] = {
    "N": "normal (在线监控)",
    "F": "stopped (停运)",
    "M": "maintenance (维护)",
    "S": "manual input (手工输入)",
    "D": "fault (故障)",
    "C": "calibration (校准)",
    "T": "over limit (超限)",
    "B": "communication error (通讯异常)",
}

# QnRtn codes (request answer, CN 9011).
QNRTN_READY = 1
QNRTN_REFUSED = 2
QNRTN_PW = 3
QNRTN_MN = 4
QNRTN_ST = 5
QNRTN_FLAG = 6
QNRTN_QN = 7
QNRTN_CN = 8
QNRTN_CRC = 9
QNRTN_UNKNOWN = 100

# ExeRtn codes (execution result, CN 9012).
EXERTN_OK = 1
EXERTN_FAILED = 2
EXERTN_BAD_REQUEST = 3
EXERTN_TIMEOUT = 4
EXERTN_BUSY = 5
EXERTN_FAULT = 6
EXERTN_NO_DATA = 100

NUMERIC_FIELDS = frozenset({"Rtd", "Avg", "Min", "Max", "Cou", "ZsRtd", "ZsAvg", "ZsMin", "ZsMax"})

_HEADER_KEYS = ("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO")
_HEADER_RE = {
    "QN": re.compile(r"\d{17}"),
    "ST": re.compile(r"\d{2,5}"),
    "CN": re.compile(r"\d{1,7}"),
    "PW": re.compile(r"[^;,=&\s\ud800-\udfff]{1,32}"),  # no lone surrogates: not encodable
    "MN": re.compile(r"[0-9A-Za-z_\-]{1,24}"),
    "Flag": re.compile(r"\d{1,3}"),
    "PNUM": re.compile(r"\d{1,4}"),
    "PNO": re.compile(r"\d{1,4}"),
}
_REQUIRED = ("ST", "CN", "PW", "MN")
_EXPECT = {
    "QN": "QN must be 17 digits yyyyMMddHHmmssZZZ",
    "ST": "ST must be a 2-5 digit system code",
    "CN": "CN must be a command code of up to 7 digits",
    "PW": "PW must be 1-32 characters without ; , = & or spaces",
    "MN": "MN must be 1-24 letters, digits, '_' or '-'",
}
_KEY_RE = re.compile(r"[A-Za-z0-9_\-]{1,40}")
_VALUE_FORBIDDEN = re.compile(r"[;,=&\r\n]")
_HEX4 = re.compile(rb"[0-9A-Fa-f]{4}")


class Hj212Error(ValueError):
    """A packet that cannot be taken, with why, where, and the answer code."""

    def __init__(
        self,
        reason: str,
        field: str | None = None,
        offset: int | None = None,
        qn_rtn: int = QNRTN_UNKNOWN,
        qn: str | None = None,
    ) -> None:
        where = []
        if field:
            where.append(f"field {field}")
        if offset is not None:
            where.append(f"offset {offset}")
        super().__init__(f"{reason} ({', '.join(where)})" if where else reason)
        self.reason = reason
        self.field = field
        self.offset = offset
        self.qn_rtn = qn_rtn
        self.qn = qn


def parse_time(text: str, field_name: str = "DataTime") -> datetime:
    """``yyyyMMddHHmmss`` (14 digits) as a naive local datetime."""
    if len(text) != 14 or not text.isdigit():
        raise Hj212Error(f"expected yyyyMMddHHmmss, found {text!r}", field_name)
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S")
    except ValueError as exc:
        raise Hj212Error(f"not a valid date/time: {text!r}", field_name) from exc


def format_time(dt: datetime) -> str:
    return dt.strftime("%Y%m%d%H%M%S")


def make_qn(dt: datetime) -> str:
    """QN is the request's millisecond timestamp, yyyyMMddHHmmssZZZ."""
    return dt.strftime("%Y%m%d%H%M%S") + f"{dt.microsecond // 1000:03d}"


def parse_qn(text: str) -> datetime:
    if not _HEADER_RE["QN"].fullmatch(text):
        raise Hj212Error(f"QN must be 17 digits yyyyMMddHHmmssZZZ, found {text!r}", "QN")
    try:
        base = datetime.strptime(text[:14], "%Y%m%d%H%M%S")
    except ValueError as exc:
        raise Hj212Error(f"QN is not a valid time: {text!r}", "QN", qn_rtn=QNRTN_QN) from exc
    return base.replace(microsecond=int(text[14:]) * 1000)


@dataclass(frozen=True)
class Cp:
    """The command parameters: top-level params and per-factor fields.

    ``params`` holds keys without a dash (DataTime, QnRtn, SystemTime,
    BeginTime, RtdInterval, ...); ``factors`` maps a factor code (``a34006``,
    ``w01018``) to its fields (``Rtd``, ``Avg``, ``Flag``, ...). Values are the
    exact text so a decode/encode round trip is lossless.
    """

    params: Mapping[str, str] = field(default_factory=dict)
    factors: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def data_time(self) -> datetime | None:
        text = self.params.get("DataTime")
        return parse_time(text) if text else None

    def number(self, code: str, name: str) -> float | None:
        """A factor field as float, or None when absent or not numeric."""
        text = self.factors.get(code, {}).get(name)
        if text is None:
            return None
        try:
            return float(text)
        except ValueError:
            return None

    def items(self) -> list[str]:
        """``;``-separated items in canonical order: params, then factors."""
        out = [f"{k}={v}" for k, v in self.params.items()]
        for code, fields in self.factors.items():
            out.append(",".join(f"{code}-{name}={value}" for name, value in fields.items()))
        return out

    def text(self) -> str:
        return ";".join(self.items())

    @classmethod
    def build(
        cls,
        params: Mapping[str, object] | None = None,
        factors: Mapping[str, Mapping[str, object]] | None = None,
    ) -> Cp:
        """Build from Python values: datetimes and numbers become HJ 212 text."""
        p = {k: _value_text(k, v) for k, v in (params or {}).items()}
        f = {
            code: {name: _value_text(f"{code}-{name}", v) for name, v in fields.items()}
            for code, fields in (factors or {}).items()
        }
        cp = cls(p, f)
        cp.validate()
        return cp

    def validate(self) -> None:
        for key, value in self.params.items():
            _check_cp_key(key, key)
            if "-" in key:
                raise Hj212Error("a param key has no '-' (that marks a factor field)", key)
            _check_cp_value(key, value)
            if key == "DataTime":
                parse_time(value, key)
        for code, fields in self.factors.items():
            _check_cp_key(code, code)
            for name, value in fields.items():
                _check_cp_key(f"{code}-{name}", name)
                _check_cp_value(f"{code}-{name}", value)


def _value_text(key: str, value: object) -> str:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, bool):
        raise Hj212Error(f"a boolean is not an HJ 212 value: {value!r}", key)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise Hj212Error(f"not a finite number: {value!r}", key)
        return repr(value)
    if isinstance(value, int | str):
        return str(value)
    raise Hj212Error(f"cannot write {type(value).__name__} as an HJ 212 value", key)


def _check_cp_key(where: str, key: str) -> None:
    if not _KEY_RE.fullmatch(key):
        raise Hj212Error(f"bad key {key!r} in CP", where)


def _check_cp_value(where: str, value: str) -> None:
    if _VALUE_FORBIDDEN.search(value) or not value.isprintable():
        raise Hj212Error(f"value {value!r} holds a separator or control character", where)


@dataclass(frozen=True)
class Packet:
    """One HJ 212 packet. ``qn``/``flag`` None means a 2005-style packet."""

    cn: str
    mn: str
    pw: str = "123456"
    st: str = "22"
    qn: str | None = None
    flag: int | None = None
    pnum: int | None = None
    pno: int | None = None
    cp: Cp = field(default_factory=Cp)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def reply_wanted(self) -> bool:
        return bool((self.flag or 0) & FLAG_REPLY)

    @property
    def is_split(self) -> bool:
        return self.pnum is not None

    @property
    def version(self) -> int | None:
        return None if self.flag is None else self.flag >> 2

    def data_segment(self) -> str:
        parts = []
        if self.qn is not None:
            parts.append(f"QN={self.qn}")
        parts += [f"ST={self.st}", f"CN={self.cn}", f"PW={self.pw}", f"MN={self.mn}"]
        if self.flag is not None:
            parts.append(f"Flag={self.flag}")
        if self.pnum is not None:
            parts += [f"PNUM={self.pnum}", f"PNO={self.pno}"]
        parts.append(f"CP=&&{self.cp.text()}&&")
        return ";".join(parts)

    def to_json(self) -> dict[str, object]:
        """JSON-ready form: numeric factor fields as numbers, rest as text."""
        out: dict[str, object] = {}
        for key, attr in (("QN", "qn"), ("ST", "st"), ("CN", "cn"), ("PW", "pw"), ("MN", "mn")):
            value = getattr(self, attr)
            if value is not None:
                out[key] = value
        for key, attr in (("Flag", "flag"), ("PNUM", "pnum"), ("PNO", "pno")):
            value = getattr(self, attr)
            if value is not None:
                out[key] = value
        factors: dict[str, dict[str, object]] = {}
        for code, fields in self.cp.factors.items():
            factors[code] = {name: _json_value(name, v) for name, v in fields.items()}
        out["CP"] = {"params": dict(self.cp.params), "factors": factors}
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, object], now: datetime | None = None) -> Packet:
        """Inverse of :meth:`to_json`; ``"now"`` for QN or DataTime takes ``now``."""
        if not isinstance(data, Mapping):
            raise Hj212Error("expected a JSON object")
        known = {"QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO", "CP", "warnings"}
        for key in data:
            if key not in known:
                raise Hj212Error(f"unknown key {key!r}; allowed: {', '.join(sorted(known))}", key)
        cp_data = data.get("CP", {})
        if not isinstance(cp_data, Mapping):
            raise Hj212Error("CP must be an object with 'params' and 'factors'", "CP")
        params_data = cp_data.get("params", {}) or {}
        if not isinstance(params_data, Mapping):
            raise Hj212Error("CP.params must be an object of KEY: value", "CP")
        params = dict(params_data)
        factors = cp_data.get("factors", {}) or {}
        if not isinstance(factors, Mapping) or not all(
            isinstance(v, Mapping) for v in factors.values()
        ):
            raise Hj212Error("CP.factors must map factor code to an object of fields", "CP")
        stamp = now or datetime.now()
        for key, value in list(params.items()):
            if value == "now":
                params[key] = stamp
        qn = data.get("QN")
        if qn == "now":
            qn = make_qn(stamp)

        def opt_int(key: str) -> int | None:
            value = data.get(key)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise Hj212Error(f"expected an integer, found {value!r}", key)
            try:
                return int(value)
            except ValueError as exc:
                raise Hj212Error(f"expected an integer, found {value!r}", key) from exc

        for key in ("CN", "MN"):
            if key not in data:
                raise Hj212Error("required key missing", key)
        packet = cls(
            cn=str(data["CN"]),
            mn=str(data["MN"]),
            pw=str(data.get("PW", "123456")),
            st=str(data.get("ST", "22")),
            qn=None if qn is None else str(qn),
            flag=opt_int("Flag"),
            pnum=opt_int("PNUM"),
            pno=opt_int("PNO"),
            cp=Cp.build(params, factors),  # type: ignore[arg-type]
        )
        _validate_header(packet)
        return packet


def _json_value(name: str, value: str) -> object:
    if name in NUMERIC_FIELDS:
        try:
            number = float(value)
        except ValueError:
            return value
        if number == number and abs(number) != float("inf"):
            return number
    return value


def _validate_header(p: Packet) -> None:
    values = {"QN": p.qn, "ST": p.st, "CN": p.cn, "PW": p.pw, "MN": p.mn}
    for key, value in values.items():
        if value is not None and not _HEADER_RE[key].fullmatch(value):
            raise Hj212Error(f"{_EXPECT[key]}, found {value!r}", key, qn_rtn=_header_rtn(key))
    if p.qn is not None:
        parse_qn(p.qn)
    if p.flag is not None and not 0 <= p.flag <= 255:
        raise Hj212Error(f"Flag must be 0..255, found {p.flag}", "Flag", qn_rtn=QNRTN_FLAG)
    if (p.pnum is None) != (p.pno is None):
        raise Hj212Error("PNUM and PNO come together", "PNUM" if p.pnum is None else "PNO")
    if p.pnum is not None and p.pno is not None:
        if not 1 <= p.pno <= p.pnum <= 9999:
            raise Hj212Error(
                f"need 1 <= PNO <= PNUM <= 9999, found PNO={p.pno} PNUM={p.pnum}", "PNO"
            )
        if p.flag is not None and not p.flag & FLAG_SPLIT:
            raise Hj212Error(
                "PNUM/PNO present but Flag bit 1 (split) not set", "Flag", qn_rtn=QNRTN_FLAG
            )
    elif p.flag is not None and p.flag & FLAG_SPLIT:
        raise Hj212Error("Flag bit 1 (split) set but PNUM/PNO missing", "Flag", qn_rtn=QNRTN_FLAG)


def _header_rtn(key: str) -> int:
    return {"QN": QNRTN_QN, "ST": QNRTN_ST, "CN": QNRTN_CN, "PW": QNRTN_PW, "MN": QNRTN_MN}.get(
        key, QNRTN_UNKNOWN
    )


def encode(packet: Packet) -> bytes:
    """Wire bytes of one packet; refuses a data segment over 1024 bytes (use :func:`split`)."""
    _validate_header(packet)
    packet.cp.validate()
    data = packet.data_segment().encode("utf-8")
    if len(data) > MAX_DATA_LEN:
        raise Hj212Error(
            f"data segment is {len(data)} bytes, the standard allows {MAX_DATA_LEN}; use split()",
            "CP",
        )
    return b"##%04d%s%s\r\n" % (len(data), data, crc16_hex(data).encode("ascii"))


def encode_all(packet: Packet, max_len: int = MAX_DATA_LEN) -> list[bytes]:
    """Wire bytes, split into numbered sub-packets when the data is too long."""
    return [encode(p) for p in split(packet, max_len)]


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return data.decode("gbk")  # Chinese text from older loggers
        except UnicodeDecodeError:
            return data.decode("latin-1")


def decode(raw: bytes | str, strict: bool = True) -> Packet:
    """Parse one packet; raise :class:`Hj212Error` saying why it is refused.

    Lenient mode takes a wrong CRC, an over-long segment, unknown header
    keys and unknown data flags, listing each in ``Packet.warnings``: for
    reading logs of loggers known to write placeholder CRCs.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if not isinstance(raw, bytes | bytearray):
        raise Hj212Error(f"expected bytes or str, found {type(raw).__name__}")
    raw = bytes(raw)
    warnings: list[str] = []
    if raw.endswith(b"\r\n"):
        raw = raw[:-2]
    elif raw.endswith(b"\n"):
        raw = raw[:-1]
    if not raw.startswith(b"##"):
        raise Hj212Error("packet does not start with '##'", "header", 0)
    head = raw[2:6]
    if len(head) < 4 or not head.isdigit():
        raise Hj212Error(f"length field must be 4 digits, found {head!r}", "length", 2)
    length = int(head)
    body = raw[6:]
    if len(body) != length + 4:
        raise Hj212Error(
            f"length field says {length} bytes of data, packet holds {max(len(body) - 4, 0)}",
            "length",
            2,
        )
    data, crc_text = body[:length], body[length:]
    if not _HEX4.fullmatch(crc_text):
        raise Hj212Error(f"CRC must be 4 hex digits, found {crc_text!r}", "CRC", 6 + length)
    expected = crc16_hex(data)
    if crc_text.upper().decode() != expected:
        msg = f"CRC {crc_text.decode()} does not match data (computed {expected})"
        if strict:
            qn = re.search(rb"QN=(\d{17});", data)
            raise Hj212Error(
                msg, "CRC", 6 + length, qn_rtn=QNRTN_CRC, qn=qn.group(1).decode() if qn else None
            )
        warnings.append(msg)
    if length > MAX_DATA_LEN:
        msg = f"data segment is {length} bytes, over the standard's {MAX_DATA_LEN}"
        if strict:
            raise Hj212Error(msg, "length", 2)
        warnings.append(msg)
    return _parse_data(_text(data), strict, warnings, base=6)


def _parse_data(text: str, strict: bool, warnings: list[str], base: int) -> Packet:
    cp_at = text.find("CP=&&")
    if cp_at < 0:
        raise Hj212Error("no 'CP=&&' in data segment", "CP", base)
    if cp_at and text[cp_at - 1] != ";":
        raise Hj212Error("'CP=' must follow ';'", "CP", base + cp_at)
    cp_end = text.rfind("&&")
    if cp_end < cp_at + 5:
        raise Hj212Error("CP is not closed with '&&'", "CP", base + cp_at)
    if text[cp_end + 2 :]:
        raise Hj212Error("text after the closing '&&' of CP", "CP", base + cp_end + 2)
    header: dict[str, str] = {}
    pos = 0
    for item in text[: max(cp_at - 1, 0)].split(";") if cp_at else []:
        key, eq, value = item.partition("=")
        if not eq:
            raise Hj212Error(
                f"expected KEY=VALUE, found {item!r}", item[:8] or "header", base + pos
            )
        if key in header:
            raise Hj212Error("field appears twice", key, base + pos)
        if key not in _HEADER_KEYS:
            if strict:
                raise Hj212Error("unknown header field", key, base + pos)
            warnings.append(f"unknown header field {key!r} ignored")
        else:
            header[key] = value
        pos += len(item) + 1
    for key in _REQUIRED:
        if key not in header:
            raise Hj212Error(
                "required field missing", key, base, qn_rtn=_header_rtn(key), qn=header.get("QN")
            )

    def as_int(key: str) -> int | None:
        value = header.get(key)
        if value is None:
            return None
        if not _HEADER_RE[key].fullmatch(value):
            raise Hj212Error(
                f"expected digits, found {value!r}", key, base, qn_rtn=_header_rtn(key)
            )
        return int(value)

    qn = header.get("QN")
    try:
        flag = as_int("Flag")
        pnum, pno = as_int("PNUM"), as_int("PNO")
        cp = _parse_cp(text[cp_at + 5 : cp_end], strict, warnings, base + cp_at + 5)
        packet = Packet(
            cn=header["CN"],
            mn=header["MN"],
            pw=header["PW"],
            st=header["ST"],
            qn=qn,
            flag=flag,
            pnum=pnum,
            pno=pno,
            cp=cp,
            warnings=tuple(warnings),
        )
        _validate_header(packet)
    except Hj212Error as exc:
        if exc.qn is None and qn is not None:
            exc.qn = qn
        raise
    return packet


def _parse_cp(text: str, strict: bool, warnings: list[str], base: int) -> Cp:
    params: dict[str, str] = {}
    factors: dict[str, dict[str, str]] = {}
    pos = 0
    if not text:
        return Cp(params, factors)
    for item in text.split(";"):
        for part in item.split(","):
            at = base + pos
            pos += len(part) + 1
            if part == "" and item == "" and strict is False:
                continue
            key, eq, value = part.partition("=")
            if not eq:
                raise Hj212Error(f"expected KEY=VALUE in CP, found {part[:30]!r}", "CP", at)
            if not _KEY_RE.fullmatch(key):
                raise Hj212Error(f"bad key {key[:30]!r} in CP", "CP", at)
            if "=" in value or "&" in value:
                raise Hj212Error(f"value of {key} holds '=' or '&'", key, at)
            code, dash, name = key.rpartition("-")
            if not dash:
                if key in params:
                    raise Hj212Error("key appears twice in CP", key, at)
                if key == "DataTime":  # other times are checked by whoever uses them
                    _check_time_value(key, value, at)
                params[key] = value
                continue
            if not code or not name:
                raise Hj212Error(f"bad factor key {key!r}", key, at)
            fields = factors.setdefault(code, {})
            if name in fields:
                raise Hj212Error("factor field appears twice in CP", key, at)
            if name == "Flag" and value not in DATA_FLAGS:
                msg = f"data flag {value!r} is not one of {''.join(DATA_FLAGS)}"
                if strict:
                    raise Hj212Error(msg, key, at)
                warnings.append(f"{key}: {msg}")
            fields[name] = value
    return Cp(params, factors)


def _check_time_value(key: str, value: str, at: int) -> None:
    try:
        parse_time(value, key)
    except Hj212Error as exc:
        raise Hj212Error(exc.reason, key, at) from None


# --- splitting and reassembly ------------------------------------------------


def split(packet: Packet, max_len: int = MAX_DATA_LEN) -> list[Packet]:
    """Numbered sub-packets (PNUM/PNO, Flag bit 1) each within ``max_len``.

    Every sub-packet repeats the top-level params (DataTime, ...) so each one
    is meaningful alone; factors are spread over them whole where they fit
    and field by field where one factor alone is too long. Reassembly merges
    the factors back by code.
    """
    if len(packet.data_segment().encode("utf-8")) <= max_len:
        return [packet]
    flag = (packet.flag if packet.flag is not None else FLAG_V2017) | FLAG_SPLIT
    probe = dataclasses.replace(packet, flag=flag, pnum=9999, pno=9999, cp=Cp(packet.cp.params, {}))
    budget = max_len - len(probe.data_segment().encode("utf-8"))
    chunks: list[list[tuple[str, dict[str, str]]]] = [[]]
    used = 0

    def cost(code: str, fields: Mapping[str, str]) -> int:
        text = ",".join(f"{code}-{n}={v}" for n, v in fields.items())
        return len(text.encode("utf-8")) + 1  # the ';' before it

    def place(code: str, fields: dict[str, str]) -> None:
        nonlocal used
        size = cost(code, fields)
        if size > budget:
            raise Hj212Error(f"factor field {code} cannot fit in a {max_len}-byte sub-packet", code)
        if used + size > budget and chunks[-1]:
            chunks.append([])
            used = 0
        chunks[-1].append((code, fields))
        used += size

    for code, fields in packet.cp.factors.items():
        if cost(code, fields) <= budget:
            place(code, dict(fields))
        else:
            for name, value in fields.items():
                place(code, {name: value})
    total = len(chunks)
    if total > 9999:
        raise Hj212Error(f"would need {total} sub-packets, more than 9999", "PNUM")
    out = []
    for number, chunk in enumerate(chunks, 1):
        factors: dict[str, dict[str, str]] = {}
        for code, fields in chunk:
            factors.setdefault(code, {}).update(fields)
        out.append(
            dataclasses.replace(
                packet, flag=flag, pnum=total, pno=number, cp=Cp(dict(packet.cp.params), factors)
            )
        )
    return out


def merge(parts: list[Packet]) -> Packet:
    """One packet from all sub-packets of a split packet (any order)."""
    if not parts:
        raise Hj212Error("nothing to merge")
    ordered = sorted(parts, key=lambda p: p.pno or 0)
    total = ordered[0].pnum
    if [p.pno for p in ordered] != list(range(1, (total or 0) + 1)):
        raise Hj212Error(f"sub-packets {[p.pno for p in ordered]} do not make 1..{total}", "PNO")
    params: dict[str, str] = {}
    factors: dict[str, dict[str, str]] = {}
    for p in ordered:
        if p.pnum != total:
            raise Hj212Error(f"PNUM {p.pnum} differs from {total} in the same group", "PNUM")
        for key, value in p.cp.params.items():
            params.setdefault(key, value)
        for code, fields in p.cp.factors.items():
            factors.setdefault(code, {}).update(fields)
    first = ordered[0]
    flag = None if first.flag is None else first.flag & ~FLAG_SPLIT
    return dataclasses.replace(first, flag=flag, pnum=None, pno=None, cp=Cp(params, factors))


@dataclass
class _Group:
    started: float
    parts: dict[int, Packet]


class Reassembler:
    """Collects sub-packets by (MN, QN, CN) until all PNO are in.

    Pure: the caller passes the time (monotonic seconds) in, so tests need no
    sleeping. Incomplete groups older than ``timeout_s`` are dropped by
    :meth:`expire` -- the sender resends the whole packet when it got no
    reply, so waiting longer only holds memory.
    """

    def __init__(self, timeout_s: float = 30.0, max_groups: int = 64) -> None:
        self.timeout_s = timeout_s
        self.max_groups = max_groups
        self._groups: dict[tuple[str, str | None, str], _Group] = {}

    def feed(self, packet: Packet, now: float) -> Packet | None:
        """The whole packet once complete; None while parts are missing."""
        if not packet.is_split:
            return packet
        key = (packet.mn, packet.qn, packet.cn)
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= self.max_groups:
                oldest = min(self._groups, key=lambda k: self._groups[k].started)
                del self._groups[oldest]
            group = self._groups[key] = _Group(now, {})
        elif next(iter(group.parts.values())).pnum != packet.pnum:
            del self._groups[key]
            raise Hj212Error("PNUM changed within one split packet; group dropped", "PNUM")
        group.parts[packet.pno or 0] = packet
        if len(group.parts) == packet.pnum:
            del self._groups[key]
            return merge(list(group.parts.values()))
        return None

    def expire(self, now: float) -> list[tuple[str, str | None, str, list[int]]]:
        """Drop stale groups; returns (MN, QN, CN, PNOs received) of each."""
        dropped = []
        for key, group in list(self._groups.items()):
            if now - group.started > self.timeout_s:
                dropped.append((*key, sorted(group.parts)))
                del self._groups[key]
        return dropped

    def __len__(self) -> int:
        return len(self._groups)
