"""The floor under any recorder started once per build, beside what ``record`` costs.

A recording's fixed cost cannot go below the interpreter's start and the imports of the
libraries a recorder needs (click for its options, zstandard for the tape, subprocess,
selectors and pty to run the build). This times, alternated in one run: the bare
interpreter (``-I -S``), the interpreter with this machine's site (its ``.pth`` files run on
every start), those imports, ``buildtape --version``, and ``buildtape record`` of ``true``
in an empty workspace. The medians say how much of a recording's fixed cost is buildtape's.

    python benchmarks/recorder_floor.py [--runs 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import byte_compile, emit

_LIBRARIES = "import click, zstandard, subprocess, json, hashlib, selectors, pty"


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    byte_compile()
    py = sys.executable
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root}
    with tempfile.TemporaryDirectory(prefix="bt-floor-") as tmp:
        ws = Path(tmp) / "ws"
        ws.mkdir()
        tape = Path(tmp) / "floor.tape"
        cases = {
            "python -I -S -c pass": [py, "-I", "-S", "-c", "pass"],
            "python -c pass": [py, "-c", "pass"],
            f'python -c "{_LIBRARIES}"': [py, "-c", _LIBRARIES],
            "buildtape --version": [py, "-m", "buildtape", "--version"],
            "buildtape record --no-store -q -- true": [
                py, "-m", "buildtape", "record", "--no-store", "-q", "-o", str(tape), "--", "true",
            ],
        }  # fmt: skip
        wall: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, argv in cases.items():
                before = _children_cpu()
                start = time.perf_counter()
                subprocess.run(argv, cwd=ws, env=env, check=True, stdout=subprocess.DEVNULL)
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(_children_cpu() - before)
    emit(
        {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}",
            "runs": args.runs,
            "median_ms": {
                name: {
                    "wall": round(statistics.median(wall[name]) * 1000, 1),
                    "cpu": round(statistics.median(cpu[name]) * 1000, 1),
                }
                for name in cases
            },
        },
        args.json,
    )


if __name__ == "__main__":
    main()
