"""Run every benchmark and print one table of their headline figures and targets.

    python bench/run_all.py                 # --quick runs of each (a few minutes)
    python bench/run_all.py --full          # the full sizes the targets are stated for
    python bench/run_all.py --only gate ledger

Each bench/*_bench.py runs in its own process with a time limit; its
readable output goes to bench/out/NAME.log, and its ``FIGURE`` lines
(bench/report.py) make the table: bench, figure, value, unit, target, met.
Quick runs use small sizes: a target stated for a size (e.g. 60,000 rows)
is shown only when the bench ran at that size. Exit status 1 if a bench
crashed or ran out of time; missed targets are shown, not failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.report import parse_line  # noqa: E402

# Extra arguments per bench: hj212_bench would otherwise repeat the Modbus
# polling measurement that modbus_poll_bench makes on its own.
EXTRA_ARGS = {"hj212_bench": ["--no-poll"]}


@dataclass
class BenchRun:
    name: str
    figures: list[dict[str, object]] = field(default_factory=list)
    returncode: int | None = None
    timed_out: bool = False
    seconds: float = 0.0
    log: Path | None = None
    tail: str = ""


def discover(folder: Path = HERE) -> list[Path]:
    """Every ``*_bench.py`` beside this file, in name order."""
    return sorted(folder.glob("*_bench.py"))


def collect(output: str) -> list[dict[str, object]]:
    """The figures on the ``FIGURE`` lines of a bench's output, in order."""
    return [f for f in (parse_line(line) for line in output.splitlines()) if f is not None]


def run_bench(path: Path, full: bool, timeout: float, out_dir: Path | None) -> BenchRun:
    """Run one bench in its own session, so a timeout also ends its brokers and servers."""
    name = path.stem
    cmd = [sys.executable, str(path), *([] if full else ["--quick"]), *EXTRA_ARGS.get(name, [])]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    run = BenchRun(name)
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        run.timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
    run.seconds = time.monotonic() - started
    run.returncode = proc.returncode
    run.figures = collect(output or "")
    run.tail = "\n".join((output or "").strip().splitlines()[-5:])
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        run.log = out_dir / f"{name}.log"
        run.log.write_text(f"$ {' '.join(cmd)}\n{output or ''}", encoding="utf-8")
    return run


def fmt_value(value: float) -> str:
    """Enough digits to read, no more: 2345.6 -> 2346, 0.01234 -> 0.0123."""
    if value != value:  # NaN
        return "nan"
    a = abs(value)
    if a >= 100:
        return f"{value:,.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def rows(runs: list[BenchRun], quick: bool = False) -> list[tuple[str, str, str, str, str, str]]:
    """Table rows; a bench that crashed or timed out gets a row saying so.

    A quick run's verdicts are bracketed: its samples are too small to judge a
    target by (a ratio over four frames moves by a tenth), only to show that
    every bench runs and roughly where it stands.
    """
    out: list[tuple[str, str, str, str, str, str]] = []
    for run in runs:
        for f in run.figures:
            ok = f.get("ok")
            met = "—" if ok is None else ("yes" if ok else "no")
            if quick and ok is not None:
                met = f"({met})"
            value = f["value"]
            assert isinstance(value, float)
            target = f.get("target")
            out.append(
                (
                    run.name,
                    str(f["name"]),
                    fmt_value(value),
                    str(f["unit"]),
                    str(target or "—"),
                    met,
                )
            )
        if run.timed_out:
            out.append((run.name, f"TIMED OUT after {run.seconds:.0f} s", "", "", "", "no"))
        elif run.returncode not in (0, None):
            out.append((run.name, f"FAILED (exit {run.returncode})", "", "", "", "no"))
        elif not run.figures:
            out.append((run.name, "no figures reported", "", "", "", "—"))
    return out


def table(runs: list[BenchRun], quick: bool = False) -> str:
    """One aligned text table of every figure of every bench."""
    header = ("bench", "figure", "value", "unit", "target", "met")
    body = rows(runs, quick)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    right = {2}  # numbers line up on the right

    def line(r: tuple[str, ...]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in body)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Readable output of each bench: bench/out/NAME.log",
    )
    ap.add_argument("--full", action="store_true", help="full sizes instead of --quick runs")
    ap.add_argument(
        "--timeout", type=float, default=None, help="seconds per bench (default 600, --full 3600)"
    )
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these (gate, ledger, ...)")
    ap.add_argument("--out", type=Path, default=HERE / "out", help="folder for the bench logs")
    args = ap.parse_args(argv)
    timeout = args.timeout or (3600.0 if args.full else 600.0)
    benches = discover()
    if args.only:
        wanted = {n.removesuffix("_bench").removesuffix(".py") for n in args.only}
        unknown = wanted - {p.stem.removesuffix("_bench") for p in benches}
        if unknown:
            names = ", ".join(p.stem.removesuffix("_bench") for p in benches)
            print(f"run_all: no bench named {', '.join(sorted(unknown))}; there are: {names}")
            return 2
        benches = [p for p in benches if p.stem.removesuffix("_bench") in wanted]
    mode = "full" if args.full else "quick"
    runs = []
    for path in benches:
        print(f"run_all: {path.stem} ({mode}) ...", end=" ", flush=True)
        run = run_bench(path, args.full, timeout, args.out)
        status = "timed out" if run.timed_out else f"exit {run.returncode}"
        print(f"{status}, {run.seconds:.0f} s, {len(run.figures)} figures", flush=True)
        if run.timed_out or run.returncode:
            print("  " + run.tail.replace("\n", "\n  "), flush=True)
        runs.append(run)
    print()
    print(table(runs, quick=not args.full))
    if not args.full:
        print(
            "\nquick runs: small samples, so the verdicts in brackets are only indicative;"
            " the targets are judged by full runs (make bench-full)"
        )
    print(f"each bench's own output: {args.out}/NAME.log")
    return 1 if any(r.timed_out or r.returncode for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
