"""Peak memory and speed of ``edged registry import`` on a registry-sized CSV file.

    python bench/registry_import_bench.py [--rows N] [--quick]

Writes a CSV of N vehicles (default 1,000,000; --quick 100,000) as plants export
them (Chinese headings, every column filled), runs the real command in its own
process (``edged registry import FILE --mode replace``) and prints its peak RSS
(VmHWM) and rows per second. Baseline, in the same run: the same process doing
``edged registry list`` on an empty registry (interpreter and imports), so the
ratio shows what the import itself costs. Target: under 300 MB at 1,000,000 rows.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit

REPO = Path(__file__).resolve().parent.parent
_PEAK = (
    "import resource, runpy, sys\n"
    "sys.argv = ['edged', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('edged', run_name='__main__')\n"
    "finally:\n"
    "    print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)
_STAGES = ("国五", "国六", "国六b", "国四")
_FUELS = ("柴油", "天然气", "纯电动", "汽油")


def write_csv(path: Path, rows: int) -> None:
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("车牌号码,车牌颜色,车辆识别代码,燃料类型,排放阶段,运输单位,电子标签,有效期至\n")
        for i in range(rows):
            plate = f"冀{letters[(i // 100_000) % 24]}{i % 100_000:05d}"
            if i >= 2_400_000:
                plate = f"晋{letters[(i // 100_000) % 24]}{i % 100_000:05d}"
            fh.write(
                f"{plate},黄色,LZZ1CLVB{i:09d},{_FUELS[i % 4]},{_STAGES[i % 4]},"
                f"唐山运输{i % 97}号车队,E200{i:012X},2027-12-31\n"
            )


def run(args: list[str]) -> tuple[int, float, str]:
    """Peak RSS in kB, seconds, and the output of one ``edged`` command in its own process."""
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.monotonic() - t0
    peak = next(
        (int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_KB")),
        0,
    )
    if proc.returncode != 0:
        raise SystemExit(f"edged {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return peak, took, proc.stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="100,000 rows")
    a = ap.parse_args()
    rows = a.rows or (100_000 if a.quick else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="edged-import-bench-") as tmp:
        csv_path, db = Path(tmp) / "vehicles.csv", Path(tmp) / "registry.db"
        write_csv(csv_path, rows)
        size_mb = csv_path.stat().st_size / 1e6
        base_kb, _t, _out = run(["registry", "list", "--db", str(db), "--limit", "1"])
        argv = ["registry", "import", str(csv_path), "--mode", "replace", "--db", str(db)]
        peak_kb, took, out = run([*argv, "--operator", "bench"])
        print(f"{rows:,} rows, {size_mb:.0f} MB of CSV: {out.splitlines()[-1]}; {took:.1f} s")
        print(
            f"peak RSS {peak_kb / 1024:.0f} MB; baseline (edged registry list) {base_kb / 1024:.0f} MB"
        )
    emit(
        f"registry import peak RSS ({rows:,} rows)",
        peak_kb / 1024,
        "MB",
        "<= 300" if rows >= 1_000_000 else None,
    )
    emit("registry import peak RSS / baseline", peak_kb / max(base_kb, 1), "x")
    emit("registry import speed", rows / took, "rows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
