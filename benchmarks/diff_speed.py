"""How fast ``buildtape diff`` explains two large tapes that differ a little.

Two recordings of a workspace of 10,000 small source files (the second with 10 files
changed), then ``buildtape diff`` between them: the engine's time in-process, and the
whole command's wall time, against ``diff -rq`` over the same two directories (the
baseline, in the same run). Goal: under 0.5 s.

    python benchmarks/diff_speed.py [--files 10000] [--changed 10] [--runs 7]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import emit
from recorder.tape import open_tape
from replay.diff import DiffOptions, diff


def populate(root: Path, files: int) -> None:
    rng = random.Random(5)
    words = ["alpha", "beta", "gamma", "delta", "value", "result", "index", "count"]
    for i in range(files):
        d = root / f"pkg{i % 100:02d}"
        d.mkdir(parents=True, exist_ok=True)
        body = "\n".join(
            f"int f{i}_{j}(int x) {{ return x * {rng.randrange(99)} /* {rng.choice(words)} */; }}"
            for j in range(8)
        )
        (d / f"m{i:05d}.c").write_text(body + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--changed", type=int, default=10)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bt-diff-"))
    a, b = work / "a", work / "b"
    populate(a, args.files)
    shutil.copytree(a, b)
    for i in range(args.changed):
        p = b / f"pkg{i:02d}" / f"m{i:05d}.c"
        p.write_text(p.read_text().replace("return x", "return -x", 1))
    tapes = []
    for ws in (a, b):
        tape = work / f"{ws.name}.tape"
        subprocess.run(
            [sys.executable, "-m", "buildtape", "record", "-q", "--trace", "none", "-o", str(tape),
             "--", "true"],
            cwd=ws, check=True,
        )  # fmt: skip
        tapes.append(tape)
    engine, cli, baseline = [], [], []
    for _ in range(args.runs):
        t = time.perf_counter()
        with open_tape(tapes[0]) as ta, open_tape(tapes[1]) as tb:
            report = diff(ta, tb, DiffOptions())
        engine.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "buildtape", "diff", *map(str, tapes)],
            stdout=subprocess.DEVNULL,
            check=False,
        )
        cli.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run(["diff", "-rq", str(a), str(b)], stdout=subprocess.DEVNULL, check=False)
        baseline.append(time.perf_counter() - t)
    result = {
        "files": args.files,
        "changed": args.changed,
        "inputs_reported_changed": len(report.inputs),
        "engine_median_s": round(statistics.median(engine), 3),
        "cli_median_s": round(statistics.median(cli), 3),
        "diff_rq_median_s": round(statistics.median(baseline), 3),
        "cli_vs_diff_rq": round(statistics.median(cli) / statistics.median(baseline), 2),
    }
    emit(result, args.json)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
