"""The fixed cost of one recording: time before the build starts and after it ends.

On a build of a few seconds this fixed cost, not tracing, is most of the overhead that
``record_overhead.py`` measures, and it is far less noisy to measure on its own. The
"build" here is ``date +%s.%N``: it writes the moment it ran, so the recorder's wall time
splits into *before* (process start to the build's first instruction: interpreter,
imports, workspace scan, tracer probe) and *after* (build end to exit: rescan, tape,
history index, interpreter exit). The baseline in the same run is the bare interpreter
(``python -c pass``), alternated with the recordings.

    python benchmarks/record_latency.py [--runs 21] [--workspace DIR] [--json out.json]
    python benchmarks/record_latency.py --against /tmp/old   # A/B: another checkout's record

``--against`` adds the default mode of another checkout of buildtape (``git worktree add
/tmp/old HEAD~3``), run from its tree in the same alternation, to measure a change.

The default workspace is the Lua tree that record_overhead.py builds (fetched by
benchmarks/fetch_lua.sh), so the scan covers a real source tree.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import byte_compile, emit


def _fetch_lua() -> Path:
    out = subprocess.run(
        [str(Path(__file__).with_name("fetch_lua.sh"))], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _one(
    argv: list[str], stamp: Path, env: dict[str, str], cwd: Path
) -> tuple[float, float, float]:
    """(before, after) in seconds around the moment the wrapped ``date`` ran, and the CPU
    time the whole run used (it varies less than wall time on a shared machine)."""
    stamp.unlink(missing_ok=True)
    cpu = _cpu()
    start = time.time()
    # Run from the workspace (record refuses a cwd outside it), never from a checkout:
    # `python -m` puts the current directory first on sys.path, which would hide
    # --against's PYTHONPATH.
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env, cwd=cwd)
    end = time.time()
    ran = float(stamp.read_text())
    return ran - start, end - ran, _cpu() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--workspace", type=Path, help="default: a copy of the Lua source tree")
    ap.add_argument(
        "--variants", default="default,none", help="comma-separated: default, none, proc"
    )
    ap.add_argument("--against", type=Path, help="another checkout of buildtape to compare")
    ap.add_argument("--samples", action="store_true", help="also list every total, sorted")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bt-latency-"))
    ws = work / "ws"
    shutil.copytree(args.workspace or _fetch_lua(), ws, symlinks=True)
    stamp = work / "ran"
    env = {**os.environ, "BUILDTAPE_HOME": str(work / "home")}
    build = ["sh", "-c", f"date +%s.%N > {stamp}"]
    bt = [sys.executable, "-m", "buildtape", "record", "-q", "--workspace", str(ws)]
    variants = {
        "default": [*bt, "-o", str(work / "t.tape"), "--", *build],
        "none": [*bt, "--trace", "none", "-o", str(work / "t.tape"), "--", *build],
        "proc": [*bt, "--trace", "proc", "-o", str(work / "t.tape"), "--", *build],
    }
    wanted = [v for v in args.variants.split(",") if v in variants]
    envs = {v: env for v in variants}
    if args.against:
        variants["against"] = variants["default"]
        old_path = os.pathsep.join(filter(None, [str(args.against), env.get("PYTHONPATH")]))
        envs["against"] = {**env, "PYTHONPATH": old_path}
        wanted.append("against")
    bare = [sys.executable, "-c", f"import os; os.system('date +%s.%N > {stamp}')"]
    byte_compile()
    if args.against:
        byte_compile(args.against)
    _one(bare, stamp, env, ws)
    for v in wanted:  # warm the page cache, the shim and the hash cache
        _one(variants[v], stamp, envs[v], ws)
    samples: dict[str, list[tuple[float, float, float]]] = {"python -c pass": []}
    samples.update({v: [] for v in wanted})
    for _ in range(args.runs):
        samples["python -c pass"].append(_one(bare, stamp, env, ws))
        for v in wanted:
            samples[v].append(_one(variants[v], stamp, envs[v], ws))

    def ms(values: list[float]) -> float:
        return round(1000 * statistics.median(values), 1)

    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "workspace_files": sum(len(f) for _, _, f in os.walk(ws)),
        "runs": args.runs,
        "median_ms": {
            name: {
                "before": ms([b for b, _, _ in s]),
                "after": ms([a for _, a, _ in s]),
                "total": ms([b + a for b, a, _ in s]),
                "total_min": round(1000 * min(b + a for b, a, _ in s), 1),
                "cpu": ms([c for _, _, c in s]),
            }
            for name, s in samples.items()
        },
    }
    base = result["median_ms"]["python -c pass"]["total"]
    result["added_over_bare_python_ms"] = {
        v: round(result["median_ms"][v]["total"] - base, 1) for v in wanted
    }
    if args.samples:
        result["samples_ms"] = {
            name: sorted(round(1000 * (b + a)) for b, a, _ in s) for name, s in samples.items()
        }
    emit(result, args.json)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
