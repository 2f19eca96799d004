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
                    "timeout_s": 5,
                },
            ],
            "min_interval_min": 5,
        },
    )
    assert [p.name for p in cfg.platforms] == ["city", "county"]
    assert cfg.platforms[1].timeout_s == 5.0 and cfg.platforms[0].reply_wanted


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
        ({"rtd_interval_s": 10}, "rtd_interval_s", "30..3600"),
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
        ({"time_set_max_h": 0}, "time_set_max_h", "expected > 0"),
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


@pytest.mark.parametrize(
    ("data", "path", "new"),
    [
        ({"rtd_interval": 30}, "rtd_interval", "rtd_interval_s"),
        ({"min_interval": 5}, "min_interval", "min_interval_min"),
        *(
            (
                {"platforms": [{"name": "a", "host": "h", "port": 1, "mn": "M", old: 1.0}]},
                f"platforms[0].{old}",
                f"{old}_s",
            )
            for old in ("timeout", "connect_timeout", "backoff_min", "backoff_max")
        ),
    ],
)
def test_durations_were_renamed_with_a_clear_error(data: dict, path: str, new: str) -> None:
    with pytest.raises(SchemaError) as info:
        build(Hj212Config, data)
    (problem,) = info.value.problems
    assert problem.path == path and f"renamed: write {new!r} instead" in problem.message


def test_every_problem_of_the_section_is_reported_at_once() -> None:
    bad_platform = {
        "name": "a b",
        "host": "",
        "port": 70000,
        "mn": "M",
        "timeout_s": 0,
        "backoff_min_s": 10,
        "backoff_max_s": 5,
        "heartbeat_s": 0.5,
    }
    data = {
        "platforms": [bad_platform],
        "keep_days": 0,
        "min_interval_min": 61,
        "split_max_groups": 0,
    }
    with pytest.raises(SchemaError) as info:
        build(Hj212Config, data)
    assert sorted(p.path for p in info.value.problems) == [
        "keep_days",
        "min_interval_min",
        "platforms[0].backoff_max_s",
        "platforms[0].heartbeat_s",
        "platforms[0].host",
        "platforms[0].name",
        "platforms[0].port",
        "platforms[0].timeout_s",
        "split_max_groups",
    ]
    # the section's own checks, with its bounds, once its platforms are sound
    data = {"keep_days": 0, "alarm_cn": "x", "decimals": {"a34013": 20}, "macs": ["nope"]}
    with pytest.raises(SchemaError) as info:
        build(Hj212Config, data)
    assert sorted(p.path for p in info.value.problems) == [
        "alarm_cn",
        "decimals",
        "keep_days",
        "macs",
    ]
