"""How fast the history answers, and what indexing adds to a recording.

1. Record the c-make fixture once (a real 20-odd-process tape), then index it as 10,000
   builds spread over 30 days (statuses, durations and step times varied, every 7th
   build failed, two custom metrics each) into a fresh history.
2. Time ``buildtape stats --json`` over those 10k builds (the whole command, a fresh
   interpreter each run), against ``buildtape history --limit 1`` on the same history
   (the baseline, same start-up and database open; the ratio is what stats itself adds).
   Goal: stats in <= 0.3 s.
3. Time what ``record`` spends indexing one tape (open the history, insert the build
   with its steps, metrics and events, commit) into that 10k-build history, against
   the recording's own wall time. Goal: <= 20 ms.

    python benchmarks/history_speed.py [--builds 10000] [--runs 7] [--tape BIG.tape]

``--tape`` indexes that recording instead of c-make's (e.g. a tape of the Lua build from
``record_overhead.py``: 115 processes, 39 outermost steps per build).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from history.indexing import index_tape  # noqa: E402
from history.options import StatsOptions  # noqa: E402
from history.store import HistoryStore  # noqa: E402
from recorder.model import Event, Manifest  # noqa: E402
from recorder.tape import open_tape  # noqa: E402


def variant(m: Manifest, i: int, rng: random.Random, start: datetime) -> Manifest:
    scale = rng.lognormvariate(0, 0.15)
    procs = [
        dataclasses.replace(
            p,
            start_s=p.start_s * scale,
            end_s=None if p.end_s is None else p.end_s * scale,
        )
        for p in m.processes
    ]
    failed = i % 7 == 3
    if failed:
        victim = procs[-1]
        procs[-1] = dataclasses.replace(victim, exit_code=1)
    when = start + timedelta(seconds=i * 30 * 86400 / 10_000)
    iso = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    events = [
        Event(0.1, "metric", {"name": "binary_size", "value": 40_000 + rng.randrange(500)}),
        Event(0.2, "metric", {"name": "warnings", "value": rng.randrange(3)}),
    ]
    return dataclasses.replace(
        m,
        processes=procs,
        started_at=iso,
        duration_s=m.duration_s * scale,
        status="failed" if failed else "succeeded",
        exit_code=2 if failed else 0,
        events=events,
    )


def timed(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builds", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--tape", type=Path, help="index this recording instead of c-make's")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bt-history-"))
    try:
        ws = work / "c-make"
        shutil.copytree(ROOT / "fixtures" / "c-make", ws)
        tape = work / "real.tape"
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "buildtape", "record", "-q", "--no-store", "-o", str(tape),
             "--", "make", "-j2"],
            cwd=ws, check=True, capture_output=True,
        )  # fmt: skip
        record_wall = time.perf_counter() - t
        if args.tape:
            tape = args.tape
        with open_tape(tape) as tp:
            m = tp.manifest
        home = work / "history"
        rng = random.Random(7)
        start = datetime(2026, 10, 1, tzinfo=timezone.utc)
        t = time.perf_counter()
        with HistoryStore(home) as store:
            for i in range(args.builds):
                index_tape(store, work / f"t{i:05d}.tape", variant(m, i, rng, start), stderr=b"")
        bulk = time.perf_counter() - t

        # What record does for one tape: open the history, index, close.
        one = []
        for i in range(args.runs):
            t = time.perf_counter()
            with HistoryStore(home) as store:
                index_tape(store, work / f"extra{i}.tape", variant(m, i, rng, start), stderr=b"")
            one.append(time.perf_counter() - t)
        index_s = statistics.median(one)

        cli = [sys.executable, "-m", "buildtape"]
        stats_s = timed([*cli, "stats", "--json", "--home", str(home)], args.runs)
        base_s = timed([*cli, "history", "--limit", "1", "--json", "--home", str(home)], args.runs)
        alerts_s = timed([*cli, "alerts", "--json", "--home", str(home)], args.runs)
        with HistoryStore(home) as store:
            from history.stats import stats

            t = time.perf_counter()
            result = stats(store, StatsOptions())
            engine_s = time.perf_counter() - t
            step_rows = store.row_counts()["steps"]
        result_out = {
            "builds": result.summary.builds,
            "processes_per_build": len(m.processes),
            "step_rows": step_rows,
            "stats_cli_s": round(stats_s, 3),
            "history_cli_baseline_s": round(base_s, 3),
            "stats_over_baseline": round(stats_s / base_s, 2),
            "stats_engine_s": round(engine_s, 3),
            "alerts_cli_s": round(alerts_s, 3),
            "index_one_tape_ms": round(index_s * 1000, 2),
            "record_wall_s": round(record_wall, 3),
            "index_share_of_record": round(index_s / record_wall, 4),
            "bulk_index_per_build_ms": round(bulk / args.builds * 1000, 2),
            "history_size_mb": round((home / "history.sqlite").stat().st_size / 1e6, 1),
        }
        print(json.dumps(result_out, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
