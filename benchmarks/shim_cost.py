"""What the interposer costs a process: a shell that runs a tiny program N times.

Three variants alternate, each run N processes (``/bin/true`` from ``sh``):
``plain``; ``loaded``, the shim preloaded with no log (the dynamic loader's part: one more
object to map and to look symbols up through); ``logging``, the shim writing its records
as under ``record`` (the constructor, exit, the parent's exec attempt and wait). The
result is the median of the per-run added time per process, in microseconds, against the
plain run of the same round; no recorder is involved, so this is the shim alone. The page
faults the shim adds a process are counted too: unlike time, they do not depend on the load.

    python benchmarks/shim_cost.py [--processes 2000] [--rounds 9]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import emit
from recorder.preload import build_shim

LOOP = 'i=0; while [ "$i" -lt {n} ]; do /bin/true; i=$((i+1)); done'


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt


def _run(env: dict[str, str], n: int) -> tuple[float, int]:
    """Wall time, and the page faults of the loop's processes (they do not vary with the
    machine's load, so they show a change in the shim even on a busy machine)."""
    faults = _faults()
    start = time.perf_counter()
    subprocess.run(["sh", "-c", LOOP.format(n=n)], env=env, check=True)
    return time.perf_counter() - start, _faults() - faults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    shim = build_shim(os.environ).library
    if shim is None:
        raise SystemExit("the shim could not be built (is cc installed?)")
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "files.log"
        log.touch()
        (Path(tmp) / "saved" / "env").mkdir(parents=True)
        base = dict(os.environ)
        variants = {
            "plain": base,
            "loaded": {**base, "LD_PRELOAD": str(shim)},
            "logging": {
                **base,
                "LD_PRELOAD": str(shim),
                "BUILDTAPE_FILELOG": str(log),
                "BUILDTAPE_SAVEDIR": str(Path(tmp) / "saved"),
                "BUILDTAPE_WORKSPACE": tmp,
                "BUILDTAPE_T0": str(time.time_ns()),
            },
        }
        added: dict[str, list[float]] = {"loaded": [], "logging": []}
        faults: dict[str, list[float]] = {"loaded": [], "logging": []}
        plain: list[float] = []
        for _ in range(args.rounds):
            runs = {name: _run(env, args.processes) for name, env in variants.items()}
            plain.append(runs["plain"][0])
            for name in added:
                added[name].append((runs[name][0] - runs["plain"][0]) / args.processes * 1e6)
                faults[name].append((runs[name][1] - runs["plain"][1]) / args.processes)
            log.write_bytes(b"")
    emit(
        {
            "processes": args.processes,
            "rounds": args.rounds,
            "plain_us_per_process": round(statistics.median(plain) / args.processes * 1e6, 1),
            "added_us_per_process": {k: round(statistics.median(v), 1) for k, v in added.items()},
            "added_page_faults_per_process": {
                k: round(statistics.median(v), 1) for k, v in faults.items()
            },
        },
        args.json,
    )


if __name__ == "__main__":
    main()
