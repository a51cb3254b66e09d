"""Recording overhead and tape size on real C builds.

Workloads: ``lua`` (Lua 5.4.4's upstream source from Debian's archive, ``make -j2 posix``;
fetched by benchmarks/fetch_lua.sh) and ``generated`` (a generated 200-unit C project,
``make -j2``). Each is built in alternating pairs — plain, then one recorder — from a clean
tree every time; the figure is the median of per-pair wall-time ratios, so drift in the
machine's speed cancels out. Also reports the tape size against ``tar czf`` of the same
built workspace and the compressed metadata per recorded process. Pairs alternate which side
runs first, and the interquartile range of the per-pair ratios is printed beside the median.

    python benchmarks/record_overhead.py [--workload lua|generated] [--pairs 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import byte_compile, emit
from benchmarks.gen_cproject import generate
from recorder.preload import build_shim, preload_env
from recorder.tape import TapeReader
from recorder.tracing import StraceTracer


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    subprocess.run(["make", "clean"], cwd=cwd, check=True, capture_output=True)
    t = time.perf_counter()
    subprocess.run(
        argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - t


def raw_tools(work: Path, cwd: Path) -> tuple[list[str], dict[str, str]]:
    """The recorder's strace command prefix and preload environment, without buildtape:
    what tracing alone costs the build."""
    strace = shutil.which("strace")
    shim = build_shim(os.environ).library
    if strace is None or shim is None:
        sys.exit("the raw-* variants need strace and a C compiler for the shim")
    prefix = StraceTracer(strace, work, str(cwd), trace_files=False).wrap([])
    log = work / "files.log"
    log.touch()
    return prefix, preload_env(os.environ, shim, log)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--workload", choices=("lua", "generated"), default="lua")
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--files", type=int, default=200, help="units of the generated project")
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--variants",
        default="default,strace-files,proc,none,reprozip",
        help="comma-separated subset of: default, strace-files, proc, none, reprozip, and "
        "(without buildtape, with its exact options) raw-strace, raw-preload, raw-both",
    )
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bt-bench-"))
    proj = work / "proj"
    if args.workload == "lua":
        fetched = (
            subprocess.run(
                [str(Path(__file__).with_name("fetch_lua.sh"))],
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        shutil.copytree(fetched, proj)
        make = ["make", "-j2", "posix"]
    else:
        generate(proj, args.files)
        make = ["make", "-j2"]
    tape = work / "bench.tape"
    bt = [
        sys.executable,
        "-m",
        "buildtape",
        "record",
        "-q",
        "--workspace",
        str(proj),
        "-o",
        str(tape),
        "--",
    ]
    all_variants: dict[str, tuple[str, list[str]]] = {
        "default": ("buildtape (default: strace + preload)", bt),
        "strace-files": (
            "buildtape --file-events strace",
            [*bt[:4], "--file-events", "strace", *bt[4:]],
        ),
        "proc": ("buildtape --trace proc", [*bt[:4], "--trace", "proc", *bt[4:]]),
        "none": ("buildtape --trace none", [*bt[:4], "--trace", "none", *bt[4:]]),
    }
    if shutil.which("reprozip"):
        all_variants["reprozip"] = (
            "reprozip trace",
            [
                "reprozip",
                "trace",
                "--overwrite",
                "--dont-identify-packages",
                "-d",
                str(work / "rpz"),
            ],
        )
    wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
    envs: dict[str, dict[str, str] | None] = {}
    if any(v.startswith("raw-") for v in wanted):
        strace_prefix, preload = raw_tools(work, proj)
        all_variants["raw-strace"] = ("strace alone (the recorder's options)", strace_prefix)
        all_variants["raw-preload"] = ("LD_PRELOAD shim alone", [])
        all_variants["raw-both"] = ("strace + shim, without buildtape", strace_prefix)
        envs = {all_variants["raw-preload"][0]: preload, all_variants["raw-both"][0]: preload}
    variants = {all_variants[v][0]: all_variants[v][1] for v in wanted if v in all_variants}
    byte_compile()
    timed(make, proj)  # warm the page cache and the compiler
    ratios: dict[str, list[float]] = {name: [] for name in variants}
    plain_times: list[float] = []
    for i in range(args.pairs):
        for name, prefix in variants.items():
            # Every other pair runs the recorder first, so a machine that is slower on the
            # second of two builds (or drifts) does not favour either side.
            env = envs.get(name)
            if i % 2 == 0:
                base = timed(make, proj)
                recorded = timed([*prefix, *make], proj, env)
            else:
                recorded = timed([*prefix, *make], proj, env)
                base = timed(make, proj)
            plain_times.append(base)
            ratios[name].append(recorded / base)

    # Size: the last strace recording against tar.gz of the same (built) workspace.
    timed([*bt, *make], proj)
    tgz = work / "ws.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(proj, arcname="proj")
    with TapeReader(tape) as reader:
        manifest = reader.read_manifest()
        meta_bytes = reader.manifest_frame_length
    processes = len(manifest["processes"])
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "workload": args.workload,
        "build": " ".join(make),
        "pairs": args.pairs,
        "plain_median_s": round(statistics.median(plain_times), 3),
        "median_ratio": {k: round(statistics.median(v), 3) for k, v in ratios.items()},
        # The middle half of the per-pair ratios: how much one pair can be trusted here.
        "ratio_iqr": {
            k: [round(q, 3) for q in statistics.quantiles(v, n=4)[::2]]
            for k, v in ratios.items()
            if len(v) > 1
        },
        "tape_bytes": tape.stat().st_size,
        "tar_gz_bytes": tgz.stat().st_size,
        "tape_vs_tar_gz": round(tape.stat().st_size / tgz.stat().st_size, 3),
        "processes": processes,
        "manifest_compressed_bytes": meta_bytes,
        "metadata_bytes_per_process": round(meta_bytes / processes, 1),
    }
    emit(result, args.json)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
