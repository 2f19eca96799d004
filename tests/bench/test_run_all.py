"""bench/run_all.py turns FIGURE lines into one table (canned output; nothing is timed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from bench import run_all
from bench.report import figure, meets, parse_line

CANNED = textwrap.dedent(
    """\
    registry: 5000 vehicles, 500 blacklist entries
    FIGURE {"name": "decision p99 (5000 vehicles)", "value": 312.46, "unit": "us", "target": "<= 1000", "ok": true}
    FIGURE {"name": "decision p50", "value": 41.2, "unit": "us", "target": null, "ok": null}
    FIGURE not json at all
    FIGURE {"value": 3}
    FIGURES {"name": "almost", "value": 1, "unit": "x"}
    FIGURE {"name": "trigger-to-relay p99", "value": 171.0, "unit": "ms", "target": "<= 150", "ok": false}
    PASS
    """
)


def test_collect_keeps_only_wellformed_figure_lines_in_order() -> None:
    figs = run_all.collect(CANNED)
    assert [f["name"] for f in figs] == [
        "decision p99 (5000 vehicles)",
        "decision p50",
        "trigger-to-relay p99",
    ]
    assert figs[0] == {
        "name": "decision p99 (5000 vehicles)",
        "value": 312.46,
        "unit": "us",
        "target": "<= 1000",
        "ok": True,
    }
    assert figs[1]["target"] is None and figs[1]["ok"] is None


def test_table_has_one_row_per_figure_and_rows_for_broken_benches() -> None:
    runs = [
        run_all.BenchRun("gate_bench", run_all.collect(CANNED), returncode=0),
        run_all.BenchRun("mqtt_bench", [], returncode=1),
        run_all.BenchRun("ledger_bench", [], returncode=-9, timed_out=True, seconds=600.2),
        run_all.BenchRun("hj212_bench", [], returncode=0),
    ]
    lines = run_all.table(runs).splitlines()
    assert lines[0].split() == ["bench", "figure", "value", "unit", "target", "met"]
    assert set(lines[1]) <= {"-", " "}
    body = lines[2:]
    assert len(body) == 6
    assert "312" in body[0] and "<= 1000" in body[0] and body[0].endswith("yes")
    assert "41.2" in body[1] and body[1].endswith("—")
    assert "171" in body[2] and body[2].endswith("no")
    assert "FAILED (exit 1)" in body[3] and body[3].endswith("no")
    assert "TIMED OUT after 600 s" in body[4]
    assert "no figures reported" in body[5]
    # The value column is right-aligned: every number ends in the same column.
    ends = {
        line.index(v) + len(v) for line, v in zip(body[:3], ("312", "41.2", "171"), strict=True)
    }
    assert len(ends) == 1


def test_quick_runs_bracket_their_verdicts() -> None:
    runs = [run_all.BenchRun("gate_bench", run_all.collect(CANNED), returncode=0)]
    body = run_all.table(runs, quick=True).splitlines()[2:]
    assert body[0].endswith("(yes)") and body[1].endswith("—") and body[2].endswith("(no)")


def test_targets_decide_met_unless_the_bench_says() -> None:
    assert meets(9.9, "<= 10") is True and meets(10.1, "<= 10") is False
    assert meets(2500, ">= 2,000") is True and meets(1999, ">= 2000") is False
    assert meets(5, "about 5") is None
    assert meets(float("nan"), "<= 10") is False
    assert figure("a", 12, "ms", "<= 10")["ok"] is False
    assert figure("a", 12, "ms", "<= 10", ok=True)["ok"] is True
    assert figure("a", 12, "ms")["ok"] is None
    assert parse_line('FIGURE {"name": "x", "value": "fast", "unit": "s"}') is None


def test_every_bench_is_discovered_and_reports_figures() -> None:
    names = [p.stem for p in run_all.discover()]
    assert "gate_bench" in names and "ledger_bench" in names
    for path in run_all.discover():
        assert "emit(" in path.read_text(), f"{path.name} reports no FIGURE lines for run_all"


def test_run_bench_collects_figures_and_survives_a_crash(tmp_path: Path) -> None:
    ok = tmp_path / "ok_bench.py"
    ok.write_text(
        "import sys\n"
        "from bench.report import emit\n"
        "print('quick' if '--quick' in sys.argv else 'full')\n"
        "emit('answer', 42, 'x', '>= 40')\n"
    )
    crash = tmp_path / "crash_bench.py"
    crash.write_text("from bench.report import emit\nemit('first', 1, 's')\nraise SystemExit(3)\n")
    good = run_all.run_bench(ok, full=False, timeout=60, out_dir=tmp_path / "out")
    assert good.returncode == 0 and good.figures[0]["ok"] is True
    assert (tmp_path / "out" / "ok_bench.log").read_text().splitlines()[1] == "quick"
    bad = run_all.run_bench(crash, full=True, timeout=60, out_dir=None)
    assert bad.returncode == 3 and [f["name"] for f in bad.figures] == ["first"]


def test_run_bench_ends_a_bench_that_runs_too_long_and_keeps_its_figures(tmp_path: Path) -> None:
    slow = tmp_path / "slow_bench.py"
    slow.write_text(
        "import time\nfrom bench.report import emit\nemit('early', 1, 's')\ntime.sleep(120)\n"
    )
    run = run_all.run_bench(slow, full=True, timeout=2, out_dir=None)
    assert run.timed_out and [f["name"] for f in run.figures] == ["early"]
    assert "TIMED OUT" in run_all.table([run])
