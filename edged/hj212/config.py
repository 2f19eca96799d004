"""Config of the HJ 212 uplink: one ``[[hj212.platforms]]`` table per platform (一点多传).

Each platform speaks its own version of the standard: platforms move from
HJ 212-2017 to HJ 212-2025 at different times, so one logger talks 2017 to
one and 2025 (SM4, heartbeat, hardware identity) to another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

_CN_RE = re.compile(r"\d{4}")
_FACTOR_RE = re.compile(r"[A-Za-z0-9]{1,12}")


@dataclass(frozen=True)
class PlatformConfig:
    """One monitoring platform (监控平台) with its own connection, MN and password."""

    name: str = field(metadata={"doc": "Short name used in logs and the resend store, e.g. 'city'"})
    host: str = field(metadata={"doc": "Platform server host name or IP address"})
    port: int = field(metadata={"doc": "Platform server TCP port"})
    mn: str = field(
        metadata={
            "doc": "Device id 设备唯一标识 (MN) this platform knows the logger by, up to 24 chars"
        }
    )
    pw: str = field(
        default="123456",
        metadata={"doc": "Access password 访问密码 (PW), up to 6 chars in HJ 212-2017"},
    )
    st: str = field(
        default="31",
        metadata={"doc": "System code 系统编码 (ST), e.g. 31 air pollution source, 32 water"},
    )
    enabled: bool = field(default=True, metadata={"doc": "Send to this platform at all"})
    reply_wanted: bool = field(
        default=True,
        metadata={
            "doc": "Ask for a 9014 data reply 数据应答 (Flag bit 0) and resend until it comes"
        },
    )
    timeout: float = field(
        default=10.0, metadata={"doc": "Seconds to wait for a reply 超时时间 before a retry"}
    )
    retries: int = field(
        default=3,
        metadata={"doc": "Resends 重发次数 of one packet before the link counts as broken"},
    )
    connect_timeout: float = field(
        default=10.0, metadata={"doc": "Seconds allowed for a TCP connect"}
    )
    backoff_min: float = field(
        default=1.0, metadata={"doc": "First wait in seconds before reconnecting"}
    )
    backoff_max: float = field(
        default=300.0, metadata={"doc": "Longest wait in seconds between reconnect attempts"}
    )
    resend: bool = field(
        default=True, metadata={"doc": "Resend unacknowledged data after an outage 断点续传"}
    )
    realtime: bool = field(
        default=True,
        metadata={
            "doc": "Send real-time data 实时数据 (CN 2011) to this platform until it sends CN 2012"
        },
    )
    version: Literal["2017", "2025"] = field(
        default="2017",
        metadata={
            "doc": "Standard this platform speaks: 2017 (HJ 212-2017) or 2025 (HJ 212-2025: SM4,"
            " heartbeat 9015, hardware identity 1001, MN assignment 1002, RF=1 on backfill)"
        },
    )
    sm4_key: str = field(
        default="",
        metadata={
            "doc": "HJ 212-2025 SM4 key 密钥 as 32 hex digits, from the platform operator; empty ="
            " no encryption. A key the platform later sends (CN 1014) is kept in the store",
            "secret": True,
        },
    )
    heartbeat_s: float = field(
        default=60.0,
        metadata={
            "doc": "HJ 212-2025 heartbeat 心跳 (CN 9015) after this many idle seconds; 0 = off."
            " Not sent to 2017 platforms (no such command there)"
        },
    )

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,32}", self.name):
            raise ValueError(
                f"name: expected 1-32 letters, digits, '_' or '-', found {self.name!r}"
            )
        if not self.host:
            raise ValueError("host: expected a host name or address, found an empty string")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port: expected 1..65535, found {self.port}")
        if not re.fullmatch(r"[0-9A-Za-z_\-]{1,24}", self.mn):
            raise ValueError(f"mn: expected 1-24 letters/digits, found {self.mn!r}")
        if not re.fullmatch(r"[^;,=&\s]{1,32}", self.pw):
            raise ValueError(
                f"pw: expected 1-32 characters without ; , = & or spaces, found {self.pw!r}"
            )
        if not re.fullmatch(r"\d{2,5}", self.st):
            raise ValueError(f"st: expected a 2-digit system code such as '31', found {self.st!r}")
        for name in ("timeout", "connect_timeout", "backoff_min", "backoff_max"):
            if getattr(self, name) <= 0:
                raise ValueError(
                    f"{name}: expected a positive number of seconds, found {getattr(self, name)}"
                )
        if self.backoff_max < self.backoff_min:
            raise ValueError(
                f"backoff_max: expected >= backoff_min {self.backoff_min}, got {self.backoff_max}"
            )
        if not 0 <= self.retries <= 20:
            raise ValueError(f"retries: expected 0..20, found {self.retries}")
        if self.sm4_key and not re.fullmatch(r"[0-9A-Fa-f]{32}", self.sm4_key):
            raise ValueError(
                "sm4_key: expected 32 hex digits (a 16-byte SM4 key),"
                f" found {len(self.sm4_key)} characters"
            )
        if self.sm4_key and self.version != "2025":
            raise ValueError(
                f'sm4_key: only HJ 212-2025 encrypts; set version = "2025" or remove the key'
                f" (version is {self.version!r})"
            )
        if self.heartbeat_s != 0 and not 1 <= self.heartbeat_s <= 3600:
            raise ValueError(f"heartbeat_s: expected 0 (off) or 1..3600, found {self.heartbeat_s}")


@dataclass(frozen=True)
class Hj212Config:
    """HJ 212 uplink (2017 and 2025) to one or more platforms."""

    platforms: list[PlatformConfig] = field(
        default_factory=list,
        metadata={"doc": "Platforms to send to at once 一点多传; each its own connection"},
    )
    store: str = field(
        default="hj212-outbox.sqlite",
        metadata={
            "doc": "SQLite file of what each platform acknowledged (断点续传), relative to data dir"
        },
    )
    keep_days: int = field(
        default=30, metadata={"doc": "Days to keep sent/unsent records for resend and history"}
    )
    rtd_interval: int = field(
        default=30,
        metadata={"doc": "Real-time data interval 实时数据间隔 in seconds (CN 1061/1062)"},
    )
    min_interval: int = field(
        default=5, metadata={"doc": "Minute data interval 分钟数据间隔 in minutes (CN 1063/1064)"}
    )
    alarm_cn: str = field(
        default="2072", metadata={"doc": "CN used for over-limit/fault alarms 报警 sent at once"}
    )
    accept_time_set: bool = field(
        default=True, metadata={"doc": "Let platforms set the clock 设置现场机时间 (CN 1012)"}
    )
    time_set_max_h: float = field(
        default=24.0,
        metadata={
            "doc": "Largest clock change a platform may make (CN 1012), in hours from the board's"
            " system time; a larger one is refused. Both are audited"
        },
    )
    decimals: dict[str, int] = field(
        default_factory=dict,
        metadata={
            "doc": "Decimal places per factor code, e.g. { a34013 = 2 }; a factor not listed gets"
            " them from its unit (mg/m3: 3, ℃: 1, A: 2, ...), else up to 6"
        },
    )
    logger_id: str = field(
        default="",
        metadata={
            "doc": "Logger id 数采仪编号 (i23005-Info, CN 1001/1002); empty = the CPU id below"
        },
    )
    cpu_id: str = field(
        default="",
        metadata={
            "doc": "CPU id (i23006-Info); empty = read from the board (/proc/cpuinfo Serial,"
            " else /etc/machine-id)"
        },
    )
    macs: list[str] = field(
        default_factory=list,
        metadata={
            "doc": "MAC addresses (i23007/i23008-Info); empty = the first two network"
            " interfaces of the board (/sys/class/net)"
        },
    )
    split_max_groups: int = field(
        default=16,
        metadata={"doc": "Split packets 拆分包 from a platform being reassembled at once, at most"},
    )
    split_max_bytes: int = field(
        default=262144,
        metadata={"doc": "Bytes of split packets from one platform held for reassembly, at most"},
    )
    split_mode: Literal["split", "refuse"] = field(
        default="split",
        metadata={"doc": "Over-long CP: split into PNUM/PNO sub-packets 拆分包, or refuse and log"},
    )

    def __post_init__(self) -> None:
        names = [p.name for p in self.platforms]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(
                f"platforms: expected unique names, found {', '.join(dupes)} more than once"
            )
        if not 1 <= self.keep_days <= 3650:
            raise ValueError(f"keep_days: expected 1..3650, found {self.keep_days}")
        if not 30 <= self.rtd_interval <= 3600:
            raise ValueError(
                f"rtd_interval: expected 30..3600 seconds (HJ 212-2017), found {self.rtd_interval}"
            )
        if not 1 <= self.min_interval <= 60:
            raise ValueError(f"min_interval: expected 1..60 minutes, found {self.min_interval}")
        if not _CN_RE.fullmatch(self.alarm_cn):
            raise ValueError(f"alarm_cn: expected a 4-digit CN, found {self.alarm_cn!r}")
        if not 0 < self.time_set_max_h <= 8760:
            raise ValueError(
                f"time_set_max_h: expected more than 0 and at most 8760 hours,"
                f" found {self.time_set_max_h}"
            )
        for code, places in self.decimals.items():
            if not _FACTOR_RE.fullmatch(code) or not 0 <= places <= 12:
                raise ValueError(
                    f"decimals: expected factor code = 0..12 places, found {code} = {places}"
                )
        for name in ("logger_id", "cpu_id"):
            value = getattr(self, name)
            if value and not re.fullmatch(r"[0-9A-Za-z_\-:.]{1,64}", value):
                raise ValueError(
                    f"{name}: expected up to 64 letters, digits, '_', '-', ':' or '.',"
                    f" found {value!r}"
                )
        for mac in self.macs:
            if not re.fullmatch(r"[0-9A-Fa-f]{2}(?:[:-]?[0-9A-Fa-f]{2}){5}", mac):
                raise ValueError(
                    f"macs: expected addresses like 'b8:27:eb:12:34:56', found {mac!r}"
                )
        if len(self.macs) > 2:
            raise ValueError(
                f"macs: HJ 212-2025 carries two (i23007, i23008), found {len(self.macs)}"
            )
        if not 1 <= self.split_max_groups <= 1024:
            raise ValueError(f"split_max_groups: expected 1..1024, found {self.split_max_groups}")
        if not 4096 <= self.split_max_bytes <= 64 << 20:
            raise ValueError(
                f"split_max_bytes: expected 4096..67108864, found {self.split_max_bytes}"
            )
