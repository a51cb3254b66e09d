"""Python sampling overhead: recording a Python-heavy build with stacks vs without.

The build is fixtures/py-build with more rounds (PYBUILD_ROUNDS, default 400: a few seconds
of hashing and dictionary work in Python). Each pair records it twice, alternating:
``--stacks none`` (the baseline), then ``--stacks py-spy``, ``pyinstrument`` or ``thread`` at
the default rate; the figure is the median of per-pair wall-time ratios.

    python benchmarks/sampling_overhead.py [--pairs 7] [--rounds 400] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import emit

REPO = Path(__file__).resolve().parent.parent


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=400)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--samplers",
        default="py-spy,pyinstrument,thread",
        help="comma-separated, each against --stacks none",
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bt-sampling-"))
    proj = work / "py-build"
    shutil.copytree(REPO / "fixtures" / "py-build", proj)
    env = {**os.environ, "PYBUILD_ROUNDS": str(args.rounds)}
    tape = work / "t.tape"

    def record(stacks: str) -> list[str]:
        return [
            sys.executable, "-m", "buildtape", "record", "-q", "--stacks", stacks,
            "-o", str(tape), "--", "make",
        ]  # fmt: skip

    timed(record("none"), proj, env)  # warm-up: caches, the shim
    result: dict[str, object] = {"rounds": args.rounds, "pairs": args.pairs}
    for sampler in args.samplers.split(","):
        ratios, base = [], []
        for _ in range(args.pairs):
            b = timed(record("none"), proj, env)
            ratios.append(timed(record(sampler), proj, env) / b)
            base.append(b)
        samples = json.loads(
            subprocess.run(
                [sys.executable, "-m", "buildtape", "show", "--json", str(tape)],
                capture_output=True,
                check=True,
            ).stdout
        )["sampling"]["count"]
        result[sampler] = {
            "median_ratio": round(statistics.median(ratios), 3),
            "baseline_median_s": round(statistics.median(base), 3),
            "segments_in_last_tape": samples,
        }
    emit(result, args.json)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
