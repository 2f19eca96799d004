"""The [hj212] config section through the lead's schema builder."""

from __future__ import annotations

import pytest

from edged.config.schema import SchemaError, build
from edged.hj212.config import Hj212Config, PlatformConfig


def test_builds_from_toml_shaped_data() -> None:
    cfg = build(
        Hj212Config,
        {
            "platforms": [
                {"name": "city", "host": "10.0.0.1", "port": 9000, "mn": "66330300010100001001"},
                {
                    "name": "county",
                    "host": "h",
                    "port": 9001,
                    "mn": "M2",
                    "pw": "abc",
                    "timeout": 5,
                },
            ],
            "min_interval": 5,
        },
    )
    assert [p.name for p in cfg.platforms] == ["city", "county"]
    assert cfg.platforms[1].timeout == 5.0 and cfg.platforms[0].reply_wanted


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        (
            {"platforms": [{"name": "a", "host": "h", "port": 0, "mn": "M"}]},
            "platforms[0].port",
            "1..65535",
        ),
        (
            {"platforms": [{"name": "a", "host": "h", "port": 1, "mn": "M;"}]},
            "platforms[0].mn",
            "letters/digits",
        ),
        ({"rtd_interval": 10}, "rtd_interval", "30..3600"),
        (
            {"platforms": [{"name": "a", "host": "h", "port": 1, "mn": "M", "version": "2019"}]},
            "platforms[0].version",
            "'2017', '2025'",
        ),
        (
            {"platforms": [{"name": "a", "host": "h", "port": 1, "mn": "M", "sm4_key": "12"}]},
            "platforms[0].sm4_key",
            "32 hex digits",
        ),
        (
            {"platforms": [{"name": "a", "host": "h", "port": 1, "mn": "M", "sm4_key": "0" * 32}]},
            "platforms[0].sm4_key",
            'version = "2025"',
        ),
        ({"time_set_max_h": 0}, "time_set_max_h", "more than 0"),
        ({"decimals": {"a34013": 20}}, "decimals", "0..12 places"),
        ({"macs": ["nope"]}, "macs", "b8:27:eb"),
        ({"alarm_cn": "20"}, "alarm_cn", "4-digit"),
    ],
)
def test_bad_values_name_the_key(data: dict, path: str, words: str) -> None:
    with pytest.raises(SchemaError) as info:
        build(Hj212Config, data)
    (problem,) = info.value.problems
    assert problem.path == path and words in problem.message


def test_duplicate_platform_names_refused() -> None:
    p = PlatformConfig(name="a", host="h", port=1, mn="M")
    with pytest.raises(ValueError, match=r"^platforms: "):
        Hj212Config(platforms=[p, p])


def test_a_2025_platform_with_key_and_heartbeat() -> None:
    cfg = build(
        Hj212Config,
        {
            "platforms": [
                {
                    "name": "province",
                    "host": "h",
                    "port": 1,
                    "mn": "010000A8900016F000169DC0",
                    "version": "2025",
                    "sm4_key": "0123456789ABCDEF0123456789abcdef",
                    "heartbeat_s": 30,
                }
            ],
            "decimals": {"a34013": 2},
        },
    )
    (p,) = cfg.platforms
    assert p.version == "2025" and p.heartbeat_s == 30.0 and cfg.decimals == {"a34013": 2}
    assert cfg.time_set_max_h == 24.0
