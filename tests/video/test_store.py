"""The clip folder's budget (pure): what goes first, and how many days the disk holds."""

from __future__ import annotations

from edged.video.config import ClipsConfig
from edged.video.store import MB, ClipFile, days_held, plan

DAY = 86400.0
NOW = 1_800_000_000.0


def _clips(days: int, per_day: int, size_mb: float) -> list[ClipFile]:
    return [
        ClipFile(f"d{d}/c{i}.mp4", NOW - d * DAY - i, int(size_mb * MB))
        for d in range(days)
        for i in range(per_day)
    ]


def test_oldest_go_first_past_their_age_then_over_budget_then_under_the_floor() -> None:
    cfg = ClipsConfig(retention_days=90, budget_mb=1000, min_free_mb=500)
    files = _clips(100, 1, 5.0)  # 500 MB over 100 days, the oldest 9 past 90 days
    gone = plan(files, NOW, free_mb=10_000, cfg=cfg)
    assert {w for _, w in gone} == {"age"} and len(gone) == 9
    assert all(f.mtime < NOW - 90 * DAY for f, _ in gone)
    tight = plan(files, NOW, free_mb=10_000, cfg=ClipsConfig(retention_days=365, budget_mb=400))
    assert [w for _, w in tight] == ["budget"] * 20 and tight[0][0].path == "d99/c0.mp4"
    low = plan(files, NOW, 480, ClipsConfig(retention_days=365, budget_mb=1000, min_free_mb=500))
    assert [w for _, w in low] == ["disk_low"] * 4  # 20 MB short of the floor: four 5 MB clips


def test_days_held_at_the_rate_of_the_last_week() -> None:
    cfg = ClipsConfig(retention_days=183, budget_mb=10_000, min_free_mb=1024)
    files = _clips(30, 100, 2.0)  # 200 MB a day
    held = days_held(files, NOW, free_mb=100_000, cfg=cfg)
    assert held is not None and abs(held - 50.0) < 1  # the budget: 10,000 MB / 200 MB a day
    held = days_held(files, NOW, free_mb=3024, cfg=cfg)
    assert held is not None and abs(held - 40.0) < 1  # 6,000 MB used + 2,000 MB free
    assert days_held([], NOW, free_mb=3024, cfg=cfg) is None
