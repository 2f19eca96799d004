"""Config of the HJ 212 uplink: one ``[[hj212.platforms]]`` table per platform (一点多传).

Each platform speaks its own version of the standard: platforms move from
HJ 212-2017 to HJ 212-2025 at different times, so one logger talks 2017 to
one and 2025 (SM4, heartbeat, hardware identity) to another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from edged.config.schema import Invalid, doc

_CN_RE = re.compile(r"\d{4}")
_FACTOR_RE = re.compile(r"[A-Za-z0-9]{1,12}")
_MAC = r"[0-9A-Fa-f]{2}(?:[:-]?[0-9A-Fa-f]{2}){5}"


@dataclass(frozen=True)
class PlatformConfig:
    """One monitoring platform (监控平台) with its own connection, MN and password."""

    name: str = field(metadata=doc("Short name used in logs and the resend store, e.g. 'city'"))
    host: str = field(metadata=doc("Platform server host name or IP address"))
    port: int = field(metadata=doc("Platform server TCP port", min=1, max=65535))
    mn: str = field(
        metadata=doc(
            "Device id 设备唯一标识 (MN) this platform knows the logger by, up to 24 chars"
        )
    )
    pw: str = field(
        default="123456",
        metadata=doc("Access password 访问密码 (PW), up to 6 chars in HJ 212-2017"),
    )
    st: str = field(
        default="31",
        metadata=doc("System code 系统编码 (ST), e.g. 31 air pollution source, 32 water"),
    )
    enabled: bool = field(default=True, metadata=doc("Send to this platform at all"))
    reply_wanted: bool = field(
        default=True,
        metadata=doc("Ask for a 9014 data reply 数据应答 (Flag bit 0) and resend until it comes"),
    )
    timeout_s: float = field(
        default=10.0,
        metadata=doc(
            "Wait this long for a reply 超时时间 before a retry (a platform may change it, CN 1000)",
            above=0,
            was="timeout",
        ),
    )
    retries: int = field(
        default=3,
        metadata=doc(
            "Resends 重发次数 of one packet before the link counts as broken", min=0, max=20
        ),
    )
    connect_timeout_s: float = field(
        default=10.0,
        metadata=doc("Time allowed for a TCP connect", above=0, was="connect_timeout"),
    )
    backoff_min_s: float = field(
        default=1.0,
        metadata=doc("First wait before reconnecting", above=0, was="backoff_min"),
    )
    backoff_max_s: float = field(
        default=300.0,
        metadata=doc(
            "Longest wait between reconnect attempts (at least backoff_min_s)",
            above=0,
            was="backoff_max",
        ),
    )
    resend: bool = field(
        default=True,
        metadata=doc(
            "Resend data missed in an outage 断点续传 (补发); false: this platform gets only the"
            " data records queued while its link is up, the rest is dropped for it (alarms and"
            " the start-up notice still wait for it)"
        ),
    )
    realtime: bool = field(
        default=True,
        metadata=doc(
            "Send real-time data 实时数据 (CN 2011) to this platform every rtd_interval_s;"
            " the platform may stop and restart it (CN 2012/2011)"
        ),
    )
    version: Literal["2017", "2025"] = field(
        default="2017",
        metadata=doc(
            "Standard this platform speaks: 2017 (HJ 212-2017) or 2025 (HJ 212-2025: SM4,"
            " heartbeat 9015, hardware identity 1001, MN assignment 1002, RF=1 on backfill)"
        ),
    )
    sm4_key: str = field(
        default="",
        metadata=doc(
            "HJ 212-2025 SM4 key 密钥 as 32 hex digits, from the platform operator; empty ="
            " no encryption. A key the platform later sends (CN 1014) is kept in the store",
            secret=True,
        ),
    )
    heartbeat_s: float = field(
        default=60.0,
        metadata=doc(
            "HJ 212-2025 heartbeat 心跳 (CN 9015) after this many idle seconds (at least 1);"
            " 0 = off. Not sent to 2017 platforms (no such command there)",
            min=0,
            max=3600,
        ),
    )

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,32}", self.name):
            problems.append(
                ("name", f"expected 1-32 letters, digits, '_' or '-', found {self.name!r}")
            )
        if not self.host:
            problems.append(("host", "expected a host name or address, found an empty string"))
        if not re.fullmatch(r"[0-9A-Za-z_\-]{1,24}", self.mn):
            problems.append(("mn", f"expected 1-24 letters/digits, found {self.mn!r}"))
        if not re.fullmatch(r"[^;,=&\s]{1,32}", self.pw):
            problems.append(
                ("pw", f"expected 1-32 characters without ; , = & or spaces, found {self.pw!r}")
            )
        if not re.fullmatch(r"\d{2,5}", self.st):
            problems.append(
                ("st", f"expected a 2-digit system code such as '31', found {self.st!r}")
            )
        if self.backoff_min_s > 0 and self.backoff_max_s < self.backoff_min_s:
            problems.append(
                (
                    "backoff_max_s",
                    f"expected >= backoff_min_s {self.backoff_min_s}, found {self.backoff_max_s}",
                )
            )
        if self.sm4_key and not re.fullmatch(r"[0-9A-Fa-f]{32}", self.sm4_key):
            problems.append(
                (
                    "sm4_key",
                    "expected 32 hex digits (a 16-byte SM4 key),"
                    f" found {len(self.sm4_key)} characters",
                )
            )
        elif self.sm4_key and self.version != "2025":
            problems.append(
                (
                    "sm4_key",
                    'only HJ 212-2025 encrypts; set version = "2025" or remove the key'
                    f" (version is {self.version!r})",
                )
            )
        if 0 < self.heartbeat_s < 1:
            problems.append(
                ("heartbeat_s", f"expected 0 (off) or 1..3600, found {self.heartbeat_s}")
            )
        if problems:
            raise Invalid(problems)


@dataclass(frozen=True)
class Hj212Config:
    """HJ 212 uplink (2017 and 2025) to one or more platforms."""

    platforms: list[PlatformConfig] = field(
        default_factory=list,
        metadata=doc("Platforms to send to at once 一点多传; each its own connection"),
    )
    store: str = field(
        default="hj212-outbox.sqlite",
        metadata=doc(
            "SQLite file of what each platform acknowledged (断点续传), relative to data dir"
        ),
    )
    keep_days: int = field(
        default=30,
        metadata=doc("Days to keep sent/unsent records for resend and history", min=1, max=3650),
    )
    rtd_interval_s: int = field(
        default=30,
        metadata=doc(
            "Real-time data interval 实时数据间隔: each platform gets the latest values this"
            " often, on the site's clock; a platform may set its own (CN 1062), kept until"
            " this value changes",
            min=30,
            max=3600,
            was="rtd_interval",
        ),
    )
    min_interval_min: int = field(
        default=5,
        metadata=doc(
            "Minute data interval 分钟数据间隔: each platform gets one minute-data record"
            " (CN 2051) per this many minutes, aggregated from the 1-minute records; a"
            " platform may set its own (CN 1064), kept until this value changes",
            min=1,
            max=60,
            was="min_interval",
        ),
    )
    alarm_cn: str = field(
        default="2072", metadata=doc("CN used for over-limit/fault alarms 报警 sent at once")
    )
    accept_time_set: bool = field(
        default=True, metadata=doc("Let platforms set the clock 设置现场机时间 (CN 1012)")
    )
    time_set_max_h: float = field(
        default=24.0,
        metadata=doc(
            "Largest clock change a platform may make (CN 1012), from the board's system time;"
            " a larger one is refused. Both are audited",
            above=0,
            max=8760,
        ),
    )
    decimals: dict[str, int] = field(
        default_factory=dict,
        metadata=doc(
            "Decimal places per factor code, e.g. { a34013 = 2 }; a factor not listed gets"
            " them from its unit (mg/m3: 3, ℃: 1, A: 2, ...), else up to 6"
        ),
    )
    logger_id: str = field(
        default="",
        metadata=doc("Logger id 数采仪编号 (i23005-Info, CN 1001/1002); empty = the CPU id below"),
    )
    cpu_id: str = field(
        default="",
        metadata=doc(
            "CPU id (i23006-Info); empty = read from the board (/proc/cpuinfo Serial,"
            " else /etc/machine-id)"
        ),
    )
    macs: list[str] = field(
        default_factory=list,
        metadata=doc(
            "MAC addresses (i23007/i23008-Info); empty = the first two network"
            " interfaces of the board (/sys/class/net)"
        ),
    )
    split_max_groups: int = field(
        default=16,
        metadata=doc(
            "Split packets 拆分包 from a platform being reassembled at once, at most",
            min=1,
            max=1024,
        ),
    )
    split_max_bytes: int = field(
        default=262144,
        metadata=doc(
            "Bytes of split packets from one platform held for reassembly, at most",
            min=4096,
            max=64 << 20,
        ),
    )
    split_mode: Literal["split", "refuse"] = field(
        default="split",
        metadata=doc(
            "A packet whose data is over 1024 bytes (many factors): split into PNUM/PNO"
            " sub-packets 拆分包, or refuse it and log (for platforms that cannot reassemble)"
        ),
    )

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        names = [p.name for p in self.platforms]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(
                ("platforms", f"expected unique names, found {', '.join(dupes)} more than once")
            )
        if not _CN_RE.fullmatch(self.alarm_cn):
            problems.append(("alarm_cn", f"expected a 4-digit CN, found {self.alarm_cn!r}"))
        bad = {code: n for code, n in self.decimals.items() if not _FACTOR_RE.fullmatch(code)}
        bad |= {code: n for code, n in self.decimals.items() if not 0 <= n <= 12}
        if bad:
            found = ", ".join(f"{code} = {n}" for code, n in bad.items())
            problems.append(("decimals", f"expected factor code = 0..12 places, found {found}"))
        for name in ("logger_id", "cpu_id"):
            value = getattr(self, name)
            if value and not re.fullmatch(r"[0-9A-Za-z_\-:.]{1,64}", value):
                problems.append(
                    (
                        name,
                        f"expected up to 64 letters, digits, '_', '-', ':' or '.', found {value!r}",
                    )
                )
        wrong = [m for m in self.macs if not re.fullmatch(_MAC, m)]
        if wrong:
            problems.append(
                ("macs", f"expected addresses like 'b8:27:eb:12:34:56', found {wrong[0]!r}")
            )
        if len(self.macs) > 2:
            problems.append(
                ("macs", f"HJ 212-2025 carries two (i23007, i23008), found {len(self.macs)}")
            )
        if problems:
            raise Invalid(problems)
