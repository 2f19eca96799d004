"""HJ 212 packets: encode, decode, split and reassemble -- pure, no I/O.

A packet on the wire is ``##`` + 4-digit decimal length of the data segment
(UTF-8 bytes) + data segment + 4 hex digits CRC + ``\\r\\n``. The data segment
is ``QN=..;ST=..;CN=..;PW=..;MN=..;Flag=..;[PNUM=..;PNO=..;][RF=1;]CP=&&...&&``.

Three generations meet in the field and are all read: HJ/T 212-2005 (no QN,
no Flag, or Flag version bits 0), HJ 212-2017 (version bits 1, Flag 4/5) and
HJ 212-2025 (version bits 2, Flag 8/9, ``RF=1`` on backfilled data, SM4 on
the CP of data commands -- see :mod:`edged.hj212.sm4`). The decoder says
which one it saw (:attr:`Packet.standard`) and warns about version bits that
name none.

Values inside CP are kept as the exact text received (``2.69700`` stays
``2.69700``, ``BeginTime=..,EndTime=..`` stays comma-joined, ``//free text//``
stays one value) so a packet re-encodes byte for byte; :meth:`Cp.number`
gives floats where the caller wants them. Numbers we write ourselves are
fixed-point (:func:`format_number`): never ``1e-05``, never
``0.30000000000000004``.

Times: HJ 212 times are wall-clock times of the site's zone. Functions that
read or write them take a ``tz``; a naive datetime handed in means the
board's local time (what ``datetime.now()`` gives), an aware one is exact,
and both are written in ``tz``. Without ``tz`` the wall time is written as is.

Every refusal is an :class:`Hj212Error` that names the reason, the field and
the byte offset, plus the QnRtn code a logger answers a bad platform request
with, so the uplink can reply correctly without re-parsing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from edged.hj212 import sm4
from edged.hj212.crc import crc16_hex

MAX_DATA_LEN = 1024
"""Longest data segment the standard allows; longer content is split."""

# Flag bits (HJ 212-2017/2025 6.3.3): bit 0 = reply wanted, bit 1 = split
# packet carrying PNUM/PNO, bits 2..7 protocol version.
FLAG_REPLY = 0x01
FLAG_SPLIT = 0x02
FLAG_V2017 = 0x04
FLAG_V2025 = 0x08

VERSIONS: dict[str, int] = {"2005": 0x00, "2017": FLAG_V2017, "2025": FLAG_V2025}
"""Flag version bits of each standard (value of bits 2..7 shifted into place)."""

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

AUTO_DECIMALS = 6
"""Decimals a number is rounded to when its factor has no configured precision."""

_HEADER_KEYS = ("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO", "RF")
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
_CN_IN_DATA = re.compile(rb"(?:^|;)CN=(\d{1,7});")
_QN_IN_DATA = re.compile(rb"(?:^|;)QN=(\d{17});")


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


# --- versions -------------------------------------------------------------------


def version_flag(version: str) -> int:
    """Flag version bits of a standard: ``"2017"`` -> 4, ``"2025"`` -> 8."""
    try:
        return VERSIONS[version]
    except KeyError:
        raise Hj212Error(
            f"unknown HJ 212 version {version!r}; known: {', '.join(VERSIONS)}", "Flag"
        ) from None


def flag_standard(flag: int | None) -> str | None:
    """The standard a Flag names: no Flag is 2005 style; None for unknown version bits."""
    if flag is None:
        return "2005"
    bits = flag & ~(FLAG_REPLY | FLAG_SPLIT)
    for name, value in VERSIONS.items():
        if bits == value:
            return name
    return None


# --- times ----------------------------------------------------------------------


def to_site(dt: datetime, tz: tzinfo | None) -> datetime:
    """``dt`` as the site's wall-clock time; naive means the board's local time."""
    if tz is None:
        return dt
    return dt.astimezone(tz)


def parse_time(text: str, field_name: str = "DataTime", tz: tzinfo | None = None) -> datetime:
    """``yyyyMMddHHmmss`` (or 17 digits with milliseconds, kept) as a datetime.

    Naive (the site's wall-clock time) without ``tz``; in ``tz`` with it.
    """
    if len(text) not in (14, 17) or not text.isdigit():
        raise Hj212Error(
            f"expected yyyyMMddHHmmss (14 digits, or 17 with milliseconds), found {text!r}",
            field_name,
        )
    try:
        dt = datetime.strptime(text[:14], "%Y%m%d%H%M%S")
    except ValueError as exc:
        raise Hj212Error(f"not a valid date/time: {text!r}", field_name) from exc
    if len(text) == 17:
        dt = dt.replace(microsecond=int(text[14:]) * 1000)
    return dt if tz is None else dt.replace(tzinfo=tz)


def format_time(dt: datetime, tz: tzinfo | None = None) -> str:
    return to_site(dt, tz).strftime("%Y%m%d%H%M%S")


def make_qn(dt: datetime, tz: tzinfo | None = None) -> str:
    """QN is the request's millisecond timestamp, yyyyMMddHHmmssZZZ, in the site zone."""
    local = to_site(dt, tz)
    return local.strftime("%Y%m%d%H%M%S") + f"{local.microsecond // 1000:03d}"


def parse_qn(text: str) -> datetime:
    if not _HEADER_RE["QN"].fullmatch(text):
        raise Hj212Error(f"QN must be 17 digits yyyyMMddHHmmssZZZ, found {text!r}", "QN")
    try:
        base = datetime.strptime(text[:14], "%Y%m%d%H%M%S")
    except ValueError as exc:
        raise Hj212Error(f"QN is not a valid time: {text!r}", "QN", qn_rtn=QNRTN_QN) from exc
    return base.replace(microsecond=int(text[14:]) * 1000)


# --- numbers and text -----------------------------------------------------------


def format_number(value: float | int, decimals: int | None = None) -> str:
    """Fixed-point text of a number: no exponent, no binary noise.

    With ``decimals`` exactly that many places (rounded half to even, the
    GB/T 8170 rule environmental data is rounded with); without, rounded to
    :data:`AUTO_DECIMALS` places and trailing zeros dropped (one kept after
    the point for a float). The float's shortest decimal form is rounded, so
    ``2.675`` at 2 places is ``2.68`` as a person expects, not ``2.67``.
    """
    if isinstance(value, bool):
        raise Hj212Error(f"a boolean is not an HJ 212 number: {value!r}")
    if decimals is not None and not 0 <= decimals <= 12:
        raise Hj212Error(f"decimals must be 0..12, found {decimals}")
    if isinstance(value, int):
        exact = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise Hj212Error(f"not a finite number: {value!r}")
        exact = Decimal(repr(value))
    else:
        raise Hj212Error(f"not a number: {value!r}")
    places = AUTO_DECIMALS if decimals is None else decimals
    with localcontext() as ctx:
        ctx.prec = 420  # room for the largest float (309 digits) plus the decimals
        rounded = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    text = format(rounded, "f")
    if text.startswith("-") and not text.strip("-0."):
        text = text[1:]  # -0.00 is 0.00
    if decimals is None:
        if isinstance(value, int):
            text = text.split(".")[0]
        elif "." in text:
            text = text.rstrip("0")
            if text.endswith("."):
                text += "0"
    return text


def free_text(text: str) -> str:
    """A value that may hold ``; , =``: wrapped in ``//…//`` as the standard writes it."""
    if "//" in text or "&&" in text or "\r" in text or "\n" in text:
        raise Hj212Error(f"free text cannot hold '//', '&&' or line breaks: {text[:40]!r}")
    return f"//{text}//"


def _is_free_text(value: str) -> bool:
    return len(value) >= 4 and value.startswith("//") and value.endswith("//")


def _value_text(
    key: str, value: object, tz: tzinfo | None = None, decimals: int | None = None
) -> str:
    if isinstance(value, datetime):
        return format_time(value, tz)
    if isinstance(value, bool):
        raise Hj212Error(f"a boolean is not an HJ 212 value: {value!r}", key)
    if isinstance(value, float | int):
        try:
            return format_number(value, decimals)
        except Hj212Error as exc:
            raise Hj212Error(exc.reason, key) from None
    if isinstance(value, str):
        return value
    raise Hj212Error(f"cannot write {type(value).__name__} as an HJ 212 value", key)


def _check_cp_key(where: str, key: str) -> None:
    if not _KEY_RE.fullmatch(key):
        raise Hj212Error(f"bad key {key!r} in CP", where)


def _check_cp_value(where: str, value: str) -> None:
    if _is_free_text(value):
        inner = value[2:-2]
        if "//" in inner or "&&" in inner or "\r" in inner or "\n" in inner:
            raise Hj212Error("free text holds '//', '&&' or a line break", where)
        return
    if _VALUE_FORBIDDEN.search(value) or not value.isprintable():
        raise Hj212Error(f"value {value!r} holds a separator or control character", where)


# --- CP -------------------------------------------------------------------------


@dataclass(frozen=True)
class Cp:
    """The command parameters: top-level params and per-factor fields.

    ``params`` holds keys without a dash (DataTime, QnRtn, SystemTime,
    BeginTime, RtdInterval, ...); ``factors`` maps a factor code (``a34006``,
    ``w01018``) to its fields (``Rtd``, ``Avg``, ``Flag``, ...). Values are the
    exact text so a decode/encode round trip is lossless. ``layout`` remembers
    how a decoded CP grouped its pairs (``;`` between groups, ``,`` within),
    so ``BeginTime=..,EndTime=..`` goes back out comma-joined, as peers that
    match it with a pattern expect; a CP built here has none and is written
    canonically (params, then one group per factor).
    """

    params: Mapping[str, str] = field(default_factory=dict)
    factors: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    layout: tuple[tuple[str, ...], ...] | None = field(default=None, compare=False, repr=False)

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

    def _get(self, key: str) -> str | None:
        if key in self.params:
            return self.params[key]
        code, dash, name = key.rpartition("-")
        if dash:
            return self.factors.get(code, {}).get(name)
        return None

    def _layout_fits(self) -> bool:
        if self.layout is None:
            return False
        keys = [k for group in self.layout for k in group]
        total = len(self.params) + sum(len(f) for f in self.factors.values())
        return (
            len(keys) == total
            and len(set(keys)) == total
            and all(self._get(k) is not None for k in keys)
        )

    def items(self) -> list[str]:
        """``;``-separated items: as they came when decoded, else params then factors."""
        if self._layout_fits():
            assert self.layout is not None
            return [",".join(f"{k}={self._get(k)}" for k in group) for group in self.layout]
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
        *,
        tz: tzinfo | None = None,
        decimals: Mapping[str, int] | None = None,
    ) -> Cp:
        """Build from Python values: datetimes (in ``tz``) and numbers become HJ 212 text.

        ``decimals`` maps a factor code to the places its numbers are written
        with; a factor not in it gets :func:`format_number`'s automatic form.
        """
        places = decimals or {}
        p = {k: _value_text(k, v, tz) for k, v in (params or {}).items()}
        f = {
            code: {
                name: _value_text(f"{code}-{name}", v, tz, places.get(code))
                for name, v in fields.items()
            }
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
            if key == "DataTime" and value:
                parse_time(value, key)
        for code, fields in self.factors.items():
            _check_cp_key(code, code)
            for name, value in fields.items():
                _check_cp_key(f"{code}-{name}", name)
                _check_cp_value(f"{code}-{name}", value)


# --- packet ---------------------------------------------------------------------


@dataclass(frozen=True)
class Packet:
    """One HJ 212 packet. ``qn``/``flag`` None means a 2005-style packet.

    ``rf`` is HJ 212-2025's ``RF=1``: the packet carries backfilled data
    (补传). ``encrypted`` says the CP arrived SM4-encrypted (decrypted here)
    and ``key_index`` which of the keys tried opened it; neither takes part in
    equality, as they describe the transport, not the content.
    """

    cn: str
    mn: str
    pw: str = "123456"
    st: str = "22"
    qn: str | None = None
    flag: int | None = None
    pnum: int | None = None
    pno: int | None = None
    cp: Cp = field(default_factory=Cp)
    rf: bool = False
    warnings: tuple[str, ...] = field(default=(), compare=False)
    encrypted: bool = field(default=False, compare=False)
    key_index: int | None = field(default=None, compare=False)

    @property
    def reply_wanted(self) -> bool:
        return bool((self.flag or 0) & FLAG_REPLY)

    @property
    def is_split(self) -> bool:
        return self.pnum is not None

    @property
    def version(self) -> int | None:
        """Raw version bits (Flag >> 2): 0 = 2005, 1 = 2017, 2 = 2025."""
        return None if self.flag is None else self.flag >> 2

    @property
    def standard(self) -> str | None:
        """``"2005"``, ``"2017"``, ``"2025"``, or None for version bits of no known one."""
        return flag_standard(self.flag)

    def header(self) -> str:
        parts = []
        if self.qn is not None:
            parts.append(f"QN={self.qn}")
        parts += [f"ST={self.st}", f"CN={self.cn}", f"PW={self.pw}", f"MN={self.mn}"]
        if self.flag is not None:
            parts.append(f"Flag={self.flag}")
        if self.pnum is not None:
            parts += [f"PNUM={self.pnum}", f"PNO={self.pno}"]
        if self.rf:
            parts.append("RF=1")
        return ";".join(parts) + ";"

    def data_segment(self) -> str:
        return f"{self.header()}CP=&&{self.cp.text()}&&"

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
        if self.rf:
            out["RF"] = 1
        out["version"] = self.standard or f"unknown (version bits {self.version})"
        if self.encrypted:
            out["encrypted"] = True
        factors: dict[str, dict[str, object]] = {}
        for code, fields in self.cp.factors.items():
            factors[code] = {name: _json_value(name, v) for name, v in fields.items()}
        out["CP"] = {"params": dict(self.cp.params), "factors": factors}
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out

    @classmethod
    def from_json(
        cls, data: Mapping[str, object], now: datetime | None = None, tz: tzinfo | None = None
    ) -> Packet:
        """Inverse of :meth:`to_json`; ``"now"`` for QN or DataTime takes ``now`` (in ``tz``)."""
        if not isinstance(data, Mapping):
            raise Hj212Error("expected a JSON object")
        known = {"QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO", "RF", "CP"}
        known |= {"warnings", "version", "encrypted"}  # what to_json adds: informational
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
            qn = make_qn(stamp, tz)

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
        rf = data.get("RF")
        if rf not in (None, 1, "1", True):
            raise Hj212Error("RF is 1 (backfilled data) or absent", "RF")
        packet = cls(
            cn=str(data["CN"]),
            mn=str(data["MN"]),
            pw=str(data.get("PW", "123456")),
            st=str(data.get("ST", "22")),
            qn=None if qn is None else str(qn),
            flag=opt_int("Flag"),
            pnum=opt_int("PNUM"),
            pno=opt_int("PNO"),
            cp=Cp.build(params, factors, tz=tz),  # type: ignore[arg-type]
            rf=rf is not None,
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


def _validate_header(p: Packet, strict: bool = True, warnings: list[str] | None = None) -> None:
    values = {"QN": p.qn, "ST": p.st, "CN": p.cn, "PW": p.pw, "MN": p.mn}
    for key, value in values.items():
        if value is None:
            continue
        if value == "" and key in ("PW", "MN") and not strict:
            if warnings is not None:
                warnings.append(f"{key} is empty (taken in lenient mode)")
            continue
        if not _HEADER_RE[key].fullmatch(value):
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
        # HJ/T 212-2005 platforms send Flag=3 on requests without PNUM/PNO:
        # in 2005 bit 1 did not yet promise the packet numbers, so a 2005
        # packet is taken whole. From 2017 on the bit means "split".
        if flag_standard(p.flag) != "2005":
            raise Hj212Error(
                "Flag bit 1 (split) set but PNUM/PNO missing", "Flag", qn_rtn=QNRTN_FLAG
            )
        if warnings is not None:
            warnings.append(
                f"Flag={p.flag} has bit 1 set without PNUM/PNO: a 2005-style request,"
                " taken as one whole packet"
            )


def _header_rtn(key: str) -> int:
    return {"QN": QNRTN_QN, "ST": QNRTN_ST, "CN": QNRTN_CN, "PW": QNRTN_PW, "MN": QNRTN_MN}.get(
        key, QNRTN_UNKNOWN
    )


# --- encoding -------------------------------------------------------------------


def wire_length(packet: Packet, sm4_key: bytes | None = None) -> int:
    """Bytes of the data segment on the wire (with the CP encrypted when it will be)."""
    if sm4_key is None or not sm4.applies(packet.cn):
        return len(packet.data_segment().encode("utf-8"))
    cp_len = len(packet.cp.text().encode("utf-8"))
    return len(packet.header().encode("utf-8")) + 7 + sm4.wire_length(cp_len)


def encode(packet: Packet, sm4_key: bytes | None = None) -> bytes:
    """Wire bytes of one packet; refuses a data segment over 1024 bytes (use :func:`split`).

    With ``sm4_key`` the CP of the commands HJ 212-2025 names is encrypted
    after the CRC is computed over the plain data segment (Appendix A.2).
    """
    _validate_header(packet)
    packet.cp.validate()
    data = packet.data_segment().encode("utf-8")
    crc = crc16_hex(data).encode("ascii")
    if sm4_key is not None and sm4.applies(packet.cn):
        head = packet.header().encode("utf-8")
        region = packet.cp.text().encode("utf-8")
        try:
            data = head + b"CP=&&" + sm4.encrypt_region(region, sm4_key) + b"&&"
        except sm4.Sm4Error as exc:
            raise Hj212Error(str(exc), "CP") from None
    if len(data) > MAX_DATA_LEN:
        raise Hj212Error(
            f"data segment is {len(data)} bytes, the standard allows {MAX_DATA_LEN}; use split()",
            "CP",
        )
    return b"##%04d%s%s\r\n" % (len(data), data, crc)


def encode_all(
    packet: Packet, max_len: int = MAX_DATA_LEN, sm4_key: bytes | None = None
) -> list[bytes]:
    """Wire bytes, split into numbered sub-packets when the data is too long."""
    return [encode(p, sm4_key) for p in split(packet, max_len, sm4_key)]


# --- decoding -------------------------------------------------------------------


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return data.decode("gbk")  # Chinese text from older loggers
        except UnicodeDecodeError:
            return data.decode("latin-1")


def _cp_bounds(data: bytes) -> tuple[int, int] | None:
    """(start, end) of the CP area between ``CP=&&`` and the last ``&&``, if any."""
    at = data.find(b"CP=&&")
    end = data.rfind(b"&&")
    if at < 0 or end < at + 5:
        return None
    return at + 5, end


def decode(
    raw: bytes | str,
    strict: bool = True,
    *,
    sm4_keys: Sequence[bytes] = (),
    encrypted: bool | None = None,
) -> Packet:
    """Parse one packet; raise :class:`Hj212Error` saying why it is refused.

    Lenient mode takes a wrong CRC, an over-long segment, a length field that
    counts characters instead of UTF-8 bytes, unknown or mis-spelt header
    keys, empty PW/MN/DataTime and unknown data flags, listing each in
    ``Packet.warnings``: for reading logs of loggers known to bend the rules.

    An SM4-encrypted CP (``{0x..}``) is opened with the first of ``sm4_keys``
    whose plain text matches the CRC. ``encrypted=True`` refuses a command
    that HJ 212-2025 encrypts arriving in plain text, ``encrypted=False``
    refuses any encrypted CP; None takes either.
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
    data, crc_text = body[:-4], body[-4:]
    if len(body) != length + 4:
        held = max(len(body) - 4, 0)
        chars = None
        if len(body) >= 4:
            with contextlib.suppress(UnicodeDecodeError):
                chars = len(data.decode("utf-8"))
        if chars == length and not strict:
            warnings.append(
                f"length field {length} counts characters; the data holds {held} UTF-8 bytes"
            )
        else:
            hint = ""
            if chars == length:
                hint = " (it counts characters; HJ 212 counts UTF-8 bytes)"
            raise Hj212Error(
                f"length field says {length} bytes of data, packet holds {held}{hint}",
                "length",
                2,
            )
    if not _HEX4.fullmatch(crc_text):
        raise Hj212Error(f"CRC must be 4 hex digits, found {crc_text!r}", "CRC", 6 + len(data))
    qn_match = _QN_IN_DATA.search(data)
    qn = qn_match.group(1).decode() if qn_match else None
    plain, was_encrypted, key_index = _open_cp(
        data, crc_text, strict, warnings, sm4_keys, encrypted, qn
    )
    expected = crc16_hex(plain)
    if crc_text.upper().decode() != expected:
        msg = f"CRC {crc_text.decode()} does not match data (computed {expected})"
        if was_encrypted and crc_text.upper().decode() == crc16_hex(data):
            warnings.append("CRC covers the encrypted data segment; HJ 212-2025 puts it over")
        elif strict:
            raise Hj212Error(msg, "CRC", 6 + len(data), qn_rtn=QNRTN_CRC, qn=qn)
        else:
            warnings.append(msg)
    if len(data) > MAX_DATA_LEN:
        msg = f"data segment is {len(data)} bytes, over the standard's {MAX_DATA_LEN}"
        if strict:
            raise Hj212Error(msg, "length", 2)
        warnings.append(msg)
    packet = _parse_data(_text(plain), strict, warnings, base=6)
    if packet.flag is not None and packet.standard is None:
        packet = dataclasses.replace(
            packet,
            warnings=(
                *packet.warnings,
                f"Flag={packet.flag}: version bits {packet.version} name no known HJ 212"
                " version (0 = 2005, 1 = 2017, 2 = 2025)",
            ),
        )
    if was_encrypted:
        packet = dataclasses.replace(packet, encrypted=True, key_index=key_index)
    return packet


def _open_cp(
    data: bytes,
    crc_text: bytes,
    strict: bool,
    warnings: list[str],
    keys: Sequence[bytes],
    encrypted: bool | None,
    qn: str | None,
) -> tuple[bytes, bool, int | None]:
    """(plain data segment, whether the CP was encrypted, index of the key that opened it)."""
    bounds = _cp_bounds(data)
    if bounds is None:
        return data, False, None
    start, end = bounds
    region = data[start:end]
    cn_match = _CN_IN_DATA.search(data[:start])
    cn = cn_match.group(1).decode() if cn_match else ""
    if not sm4.looks_encrypted(region):
        if encrypted and sm4.applies(cn) and len(region) >= sm4.BLOCK:
            raise Hj212Error(
                f"CP of CN {cn} arrived in plain text; HJ 212-2025 encrypts it with SM4"
                " and this platform has an sm4_key",
                "CP",
                6 + start,
                qn_rtn=QNRTN_REFUSED,
                qn=qn,
            )
        return data, False, None
    if encrypted is False:
        raise Hj212Error(
            "CP arrived SM4-encrypted but this platform is set up without encryption"
            ' (set version = "2025" and sm4_key for it)',
            "CP",
            6 + start,
            qn_rtn=QNRTN_REFUSED,
            qn=qn,
        )
    if not keys:
        raise Hj212Error(
            "CP is SM4-encrypted and no key was given (sm4_key / --sm4-key)",
            "CP",
            6 + start,
            qn_rtn=QNRTN_REFUSED,
            qn=qn,
        )
    first: bytes | None = None
    for index, key in enumerate(keys):
        try:
            opened = data[:start] + sm4.decrypt_region(region, key) + data[end:]
        except sm4.Sm4Error as exc:
            raise Hj212Error(str(exc), "CP", 6 + start, qn_rtn=QNRTN_REFUSED, qn=qn) from None
        if crc16_hex(opened) == crc_text.upper().decode():
            return opened, True, index
        first = opened if first is None else first
    if crc16_hex(data) == crc_text.upper().decode():
        # CRC over the cipher text: not the standard's order, but unambiguous.
        assert first is not None
        return first, True, 0
    msg = (
        f"no SM4 key ({len(keys)} tried) decrypts the CP to data that matches the CRC:"
        " wrong key, or the platform changed keys"
    )
    if strict:
        raise Hj212Error(msg, "CP", 6 + start, qn_rtn=QNRTN_CRC, qn=qn)
    warnings.append(msg)
    assert first is not None
    return first, True, 0


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
    canonical = {k.lower(): k for k in _HEADER_KEYS}
    for item in text[: max(cp_at - 1, 0)].split(";") if cp_at else []:
        key, eq, value = item.partition("=")
        if not eq:
            raise Hj212Error(
                f"expected KEY=VALUE, found {item!r}", item[:8] or "header", base + pos
            )
        if key not in _HEADER_KEYS and not strict:
            fixed = canonical.get(key.strip(" ,").lower())
            if fixed is not None:
                warnings.append(f"header key {key!r} read as {fixed!r}")
                key = fixed
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
        rf = header.get("RF")
        if rf is not None and rf != "1":
            raise Hj212Error(
                f"RF is 1 on backfilled data and absent otherwise, found {rf!r}", "RF", base
            )
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
            rf=rf is not None,
            warnings=tuple(warnings),
        )
        before = len(warnings)
        _validate_header(packet, strict, warnings)
    except Hj212Error as exc:
        if exc.qn is None and qn is not None:
            exc.qn = qn
        raise
    if len(warnings) != before:
        packet = dataclasses.replace(packet, warnings=tuple(warnings))
    return packet


def _cp_pairs(text: str, base: int) -> list[list[tuple[str, int]]]:
    """Groups (``;``) of pairs (``,``) with their offsets; ``//…//`` values kept whole."""
    if "=//" not in text:  # no free text: plain splitting, the common and fast case
        out: list[list[tuple[str, int]]] = []
        at = base
        for item in text.split(";"):
            pairs = []
            for part in item.split(","):
                pairs.append((part, at))
                at += len(part) + 1
            out.append(pairs)
        return out
    groups: list[list[tuple[str, int]]] = [[]]
    pos = 0
    start = 0
    n = len(text)
    while pos <= n:
        if pos == n or text[pos] in ";,":
            groups[-1].append((text[start:pos], base + start))
            if pos < n and text[pos] == ";":
                groups.append([])
            pos += 1
            start = pos
            continue
        if text.startswith("=//", pos):
            # free text: up to the next '//' that ends the value
            probe = pos + 3
            while True:
                close = text.find("//", probe)
                if close < 0:
                    raise Hj212Error(
                        "free text opened with '//' is not closed with '//'", "CP", base + pos
                    )
                after = close + 2
                if after == n or text[after] in ";,":
                    pos = after
                    break
                probe = close + 1
            continue
        pos += 1
    return groups


def _parse_cp(text: str, strict: bool, warnings: list[str], base: int) -> Cp:
    params: dict[str, str] = {}
    factors: dict[str, dict[str, str]] = {}
    if not text:
        return Cp(params, factors)
    layout: list[tuple[str, ...]] = []
    for group in _cp_pairs(text, base):
        keys: list[str] = []
        for part, at in group:
            if part == "" and len(group) == 1 and not strict:
                continue
            key, eq, value = part.partition("=")
            if not eq:
                raise Hj212Error(f"expected KEY=VALUE in CP, found {part[:30]!r}", "CP", at)
            if not _KEY_RE.fullmatch(key):
                raise Hj212Error(f"bad key {key[:30]!r} in CP", "CP", at)
            if not _is_free_text(value) and ("=" in value or "&" in value):
                raise Hj212Error(f"value of {key} holds '=' or '&'", key, at)
            code, dash, name = key.rpartition("-")
            keys.append(key)
            if not dash:
                if key in params:
                    raise Hj212Error("key appears twice in CP", key, at)
                if key == "DataTime":  # other times are checked by whoever uses them
                    if value or strict:
                        _check_time_value(key, value, at)
                    else:
                        warnings.append("DataTime is empty (taken in lenient mode)")
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
        if keys:
            layout.append(tuple(keys))
    return Cp(params, factors, tuple(layout))


def _check_time_value(key: str, value: str, at: int) -> None:
    try:
        parse_time(value, key)
    except Hj212Error as exc:
        raise Hj212Error(exc.reason, key, at) from None


# --- splitting and reassembly ------------------------------------------------


def split(
    packet: Packet, max_len: int = MAX_DATA_LEN, sm4_key: bytes | None = None
) -> list[Packet]:
    """Numbered sub-packets (PNUM/PNO, Flag bit 1) each within ``max_len`` on the wire.

    Every sub-packet repeats the top-level params (DataTime, ...) so each one
    is meaningful alone; factors are spread over them whole where they fit
    and field by field where one factor alone is too long. Reassembly merges
    the factors back by code. With ``sm4_key`` the budget allows for the CP
    growing about five-fold once encrypted.
    """
    if wire_length(packet, sm4_key) <= max_len:
        return [packet]
    flag = (packet.flag if packet.flag is not None else FLAG_V2017) | FLAG_SPLIT
    probe = dataclasses.replace(packet, flag=flag, pnum=9999, pno=9999, cp=Cp(packet.cp.params, {}))
    if sm4_key is not None and sm4.applies(packet.cn):
        fixed = len(probe.header().encode("utf-8")) + 7
        params = len(probe.cp.text().encode("utf-8"))
        budget = (max_len - fixed - 1) // 5 - params
    else:
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
    size: int = 0


class Reassembler:
    """Collects sub-packets by (MN, QN, CN) until all PNO are in.

    Pure: the caller passes the time (monotonic seconds) in, so tests need no
    sleeping. Incomplete groups older than ``timeout_s`` are dropped by
    :meth:`expire` -- the sender resends the whole packet when it got no
    reply, so waiting longer only holds memory. At most ``max_groups`` groups
    and ``max_bytes`` of CP text are held: past either the oldest groups go,
    so a peer sending endless first halves costs bounded memory. Feed it only
    packets whose MN and PW were checked.
    """

    def __init__(
        self, timeout_s: float = 30.0, max_groups: int = 64, max_bytes: int = 1 << 20
    ) -> None:
        self.timeout_s = timeout_s
        self.max_groups = max_groups
        self.max_bytes = max_bytes
        self.dropped = 0
        self._groups: dict[tuple[str, str | None, str], _Group] = {}
        self._bytes = 0

    def feed(self, packet: Packet, now: float) -> Packet | None:
        """The whole packet once complete; None while parts are missing."""
        if not packet.is_split:
            return packet
        key = (packet.mn, packet.qn, packet.cn)
        size = len(packet.cp.text()) + 64
        if size > self.max_bytes:
            raise Hj212Error(
                f"sub-packet of {size} bytes exceeds the reassembly cap of {self.max_bytes}",
                "PNO",
            )
        group = self._groups.get(key)
        if group is None:
            while self._groups and len(self._groups) >= self.max_groups:
                self._drop_oldest()
            group = self._groups[key] = _Group(now, {})
        elif next(iter(group.parts.values())).pnum != packet.pnum:
            self._forget(key)
            raise Hj212Error("PNUM changed within one split packet; group dropped", "PNUM")
        old = group.parts.get(packet.pno or 0)
        if old is not None:
            group.size -= len(old.cp.text()) + 64
            self._bytes -= len(old.cp.text()) + 64
        group.parts[packet.pno or 0] = packet
        group.size += size
        self._bytes += size
        while self._bytes > self.max_bytes:
            oldest = min(self._groups, key=lambda k: self._groups[k].started)
            if oldest == key and len(self._groups) == 1:
                self._forget(key)
                raise Hj212Error(
                    f"split packet grew past the reassembly cap of {self.max_bytes} bytes;"
                    " group dropped",
                    "PNO",
                )
            self._drop_oldest(keep=key)
        if len(group.parts) == packet.pnum:
            self._forget(key)
            return merge(list(group.parts.values()))
        return None

    def _forget(self, key: tuple[str, str | None, str]) -> None:
        group = self._groups.pop(key)
        self._bytes -= group.size

    def _drop_oldest(self, keep: tuple[str, str | None, str] | None = None) -> None:
        candidates = [k for k in self._groups if k != keep] or list(self._groups)
        oldest = min(candidates, key=lambda k: self._groups[k].started)
        self._forget(oldest)
        self.dropped += 1

    def expire(self, now: float) -> list[tuple[str, str | None, str, list[int]]]:
        """Drop stale groups; returns (MN, QN, CN, PNOs received) of each."""
        dropped = []
        for key, group in list(self._groups.items()):
            if now - group.started > self.timeout_s:
                dropped.append((*key, sorted(group.parts)))
                self._forget(key)
        return dropped

    @property
    def held_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._groups)
