"""Ledger benchmarks: durable append latency and verify of 1,000,000 rows.

    python bench/ledger_bench.py [--rows N] [--db FILE] [--keep] [--quick]

Targets (issue 5): append p99 <= 10 ms with synchronous=FULL; verify of
1,000,000 rows <= 20 s. Each figure comes with a baseline measured in the
same run (NORMAL sync for appends, bare SHA-256 over the same bytes for
verify). The monthly report of a busy gate is bench/report_bench.py.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit
from edged.ledger.chain import GENESIS_HASH, canonical, hash_bytes
from edged.ledger.record import PassageRecord, Snapshot
from edged.ledger.store import LedgerStore

CST = timezone(timedelta(hours=8))
STAGES = ("国五", "国六", "国六", "国四", "新能源")


def record(i: int, t0: datetime, step_s: float) -> PassageRecord:
    return PassageRecord(
        time=(t0 + timedelta(seconds=i * step_s)).isoformat(timespec="milliseconds"),
        site="hbsteel",
        gate="east",
        direction="in" if i % 2 == 0 else "out",
        decision="deny" if i % 37 == 0 else "allow",
        reason_code="stage_below_5" if i % 37 == 0 else "ok",
        reason_zh="非国五车辆禁入" if i % 37 == 0 else "准入",
        reason_en="below China V" if i % 37 == 0 else "admitted",
        plate=f"冀B{i % 3000:05d}",
        plate_colour="yellow",
        vehicle_type="重型半挂牵引车",
        vin=f"LZZ1CLSB0KA{i % 3000:06d}",
        fuel="electric" if i % 5 == 4 else "diesel",
        emission_stage=STAGES[i % 5],
        snapshots=(Snapshot(f"2024/05/{i}.jpg", hashlib.sha256(str(i).encode()).hexdigest()),),
        rfid_tag=f"E2000017{i % 3000:08X}",
        weight_kg=30000 + i % 20000,
        cargo="焦炭",
        id_source="plate+rfid",
        id_confidence=0.97,
    )


def write_chain(path: Path, rows: int, make: Callable[[int], PassageRecord]) -> float:
    """A valid chain of ``rows`` rows made by ``make(i)``, in one transaction (fast;
    not what is timed); returns the seconds it took."""
    LedgerStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    started = time.perf_counter()
    prev, batch = GENESIS_HASH, []
    insert = "INSERT INTO passages(seq, prev_hash, hash, fields) VALUES (?,?,?,?)"
    conn.execute("BEGIN")
    for i in range(rows):
        fields = make(i).to_fields()
        fields["event_id"] = str(uuid.UUID(int=i))
        enc = canonical(fields)
        digest = hash_bytes(prev, i + 1, enc)
        batch.append((i + 1, prev, digest, enc.decode("utf-8")))
        prev = digest
        if len(batch) >= 20000:
            conn.executemany(insert, batch)
            batch.clear()
    conn.executemany(insert, batch)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - started


def build_db(path: Path, rows: int, t0: datetime, step_s: float) -> float:
    """A valid chain of ``rows`` rows, written in one transaction (fast; not what is timed)."""
    return write_chain(path, rows, lambda i: record(i, t0, step_s))


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def bench_append(workdir: Path, n: int) -> None:
    t0 = datetime(2024, 5, 1, tzinfo=CST)
    results = {}
    for label, sync in (("FULL", 2), ("NORMAL (baseline)", 1)):
        path = workdir / f"append-{sync}.db"
        path.unlink(missing_ok=True)
        store = LedgerStore(path)
        store.raw_connection().execute(f"PRAGMA synchronous={sync}")
        lat = []
        started = time.perf_counter()
        for i in range(n):
            rec = record(i, t0, 10)
            a = time.perf_counter()
            store.append_passage(rec)
            lat.append((time.perf_counter() - a) * 1000)
        total = time.perf_counter() - started
        store.close()
        results[label] = (pct(lat, 0.5), pct(lat, 0.99), n / total)
    p50, p99, rate = results["FULL"]
    b50, b99, brate = results["NORMAL (baseline)"]
    print(
        f"append (synchronous=FULL, {n} rows): p50 {p50:.2f} ms  p99 {p99:.2f} ms  "
        f"{rate:.0f} appends/s   [target p99 <= 10 ms: {'OK' if p99 <= 10 else 'MISSED'}]"
    )
    emit(f"append p99 (synchronous=FULL, {n} rows)", p99, "ms", "<= 10")
    emit("append rate (synchronous=FULL)", rate, "rows/s")
    print(
        f"  baseline synchronous=NORMAL: p50 {b50:.2f} ms  p99 {b99:.2f} ms  {brate:.0f}/s  "
        f"(FULL/NORMAL p99 ratio {p99 / max(b99, 1e-9):.1f}x)"
    )


def bench_verify(path: Path, rows: int) -> None:
    from edged.ledger.verify import verify_db

    build = build_db(path, rows, datetime(2023, 1, 1, tzinfo=CST), 30)
    size = path.stat().st_size
    started = time.perf_counter()
    res = verify_db(path)
    elapsed = time.perf_counter() - started
    assert res.ok and res.chains["passages"].rows == rows, res.problem
    conn = sqlite3.connect(path)
    started = time.perf_counter()
    h = 0
    for (data,) in conn.execute("SELECT CAST(fields AS BLOB) FROM passages"):
        h ^= hashlib.sha256(data).digest()[0]
    base = time.perf_counter() - started
    conn.close()
    per_m = elapsed * 1_000_000 / rows
    print(
        f"verify {rows} rows: {elapsed:.2f} s ({per_m:.1f} s per million)   "
        f"[target <= 20 s per 1,000,000: {'OK' if per_m <= 20 else 'MISSED'}]  "
        f"(built in {build:.1f} s)"
    )
    emit(f"verify, per 1,000,000 rows ({rows} measured)", per_m, "s", "<= 20")
    print(
        f"  baseline bare read+SHA-256 of the same rows: {base:.2f} s "
        f"(verify/baseline {elapsed / max(base, 1e-9):.1f}x)"
    )
    print(
        f"database size: {size / 1e6:.1f} MB for {rows} rows = {size / rows:.0f} B/row, "
        f"{size * 1_000_000 / rows / 1e9:.2f} GB per million rows"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows for the verify benchmark")
    ap.add_argument("--db", help="where to build the verify database (kept with --keep)")
    ap.add_argument("--keep", action="store_true", help="leave the databases behind for inspection")
    ap.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke test in well under 20 s"
    )
    args = ap.parse_args()
    rows = 20_000 if args.quick else args.rows
    appends = 200 if args.quick else 2000
    workdir = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    db = Path(args.db) if args.db else workdir / "verify.db"
    if db.exists():
        db.unlink()
    try:
        bench_append(workdir, appends)
        bench_verify(db, rows)
    finally:
        if args.keep:
            print(f"databases kept: {db} and {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
            if args.db:
                for suffix in ("", "-wal", "-shm"):
                    Path(str(db) + suffix).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
