"""Recording overhead and tape size on real builds.

Workloads:

* ``lua``: Lua 5.4.4's upstream source from Debian's archive, ``make -j2 posix``
  (fetched by benchmarks/fetch_lua.sh);
* ``generated``: a generated 200-unit C project, ``make -j2``;
* ``gzip-configure``: GNU gzip's ``./configure`` from Debian's source package, about 3,900
  short processes (fetched by benchmarks/fetch_debian_source.sh); every run starts from
  the unpacked tree;
* ``big-workspace``: one ``cc -c`` inside a generated workspace of 20,000 files, ~470 MB
  that the build never touches (benchmarks/gen_workspace.py; ``--ws-files``,
  ``--ws-mb``): what a recording costs beside the build (``median_added_s``) and the tape
  size, which should follow what the build touched, not the repository.

Each is built in alternating pairs — plain, then one recorder — from the same starting
tree every time; the figure is the median of per-pair wall-time ratios (and of the
seconds the recorder added), so drift in the machine's speed cancels out. Pairs alternate
which side runs first, and the interquartile range of the per-pair ratios is printed
beside the median. Also reports the tape size, against ``tar czf`` of the same built
workspace (not for ``big-workspace``), and the compressed metadata per recorded process.

    python benchmarks/record_overhead.py [--workload lua|generated|gzip-configure|big-workspace]
        [--pairs 7] [--variants default,none,...] [--json out.json]
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import byte_compile, emit
from benchmarks.gen_cproject import generate
from benchmarks.gen_workspace import generate as generate_workspace
from recorder.container import TapeReader
from recorder.preload import build_shim, preload_env
from recorder.tracing import StraceTracer


@dataclass
class Workload:
    """A tree, its build command, and how to put the tree back before each timed build."""

    proj: Path
    build: list[str]
    reset: Callable[[], None]
    compare_tar: bool = True  # tar.gz of the built tree beside the tape


def timed(workload: Workload, prefix: list[str], env: dict[str, str] | None = None) -> float:
    workload.reset()  # not timed
    t = time.perf_counter()
    subprocess.run(
        [*prefix, *workload.build],
        cwd=workload.proj,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t


def fetched(script: str, *args: str) -> Path:
    out = subprocess.run(
        [str(Path(__file__).with_name(script)), *args], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


def make_clean(proj: Path) -> Callable[[], None]:
    return lambda: subprocess.run(["make", "clean"], cwd=proj, check=True, capture_output=True)


def workload(name: str, work: Path, args: argparse.Namespace) -> Workload:
    proj = work / "proj"
    if name == "lua":
        shutil.copytree(fetched("fetch_lua.sh"), proj)
        return Workload(proj, ["make", "-j2", "posix"], make_clean(proj))
    if name == "generated":
        generate(proj, args.files)
        return Workload(proj, ["make", "-j2"], make_clean(proj))
    if name == "gzip-configure":
        pristine = fetched("fetch_debian_source.sh", "gzip")

        def unpack() -> None:
            shutil.rmtree(proj, ignore_errors=True)
            shutil.copytree(pristine, proj, symlinks=True)

        return Workload(proj, ["./configure"], unpack)
    generate_workspace(proj, args.ws_files, args.ws_mb)
    return Workload(proj, ["make"], make_clean(proj), compare_tar=False)


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
    ap.add_argument(
        "--workload",
        choices=("lua", "generated", "gzip-configure", "big-workspace"),
        default="lua",
    )
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--files", type=int, default=200, help="units of the generated project")
    ap.add_argument(
        "--ws-files", type=int, default=20_000, help="files in big-workspace's workspace"
    )
    ap.add_argument("--ws-mb", type=float, default=470, help="their total size in MB")
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--variants",
        default="default,strace-files,proc,none,reprozip",
        help="comma-separated subset of: default, strace-files, proc, none, reprozip, and "
        "(without buildtape, with its exact options) raw-strace, raw-preload, raw-both",
    )
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bt-bench-"))
    w = workload(args.workload, work, args)
    proj = w.proj
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
        "default": ("buildtape (default: the preload interposer)", bt),
        "strace-files": (
            "buildtape --trace strace (full fidelity)",
            [*bt[:4], "--trace", "strace", *bt[4:]],
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
    timed(w, [])  # warm the page cache and the compiler
    ratios: dict[str, list[float]] = {name: [] for name in variants}
    added: dict[str, list[float]] = {name: [] for name in variants}
    plain_times: list[float] = []
    for i in range(args.pairs):
        for name, prefix in variants.items():
            # Every other pair runs the recorder first, so a machine that is slower on the
            # second of two builds (or drifts) does not favour either side.
            env = envs.get(name)
            if i % 2 == 0:
                base = timed(w, [])
                recorded = timed(w, prefix, env)
            else:
                recorded = timed(w, prefix, env)
                base = timed(w, [])
            plain_times.append(base)
            ratios[name].append(recorded / base)
            added[name].append(recorded - base)

    # Size: one more default recording, against tar.gz of the same (built) workspace.
    timed(w, bt)
    tgz = work / "ws.tar.gz"
    if w.compare_tar:
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
        "build": " ".join(w.build),
        "pairs": args.pairs,
        "plain_median_s": round(statistics.median(plain_times), 3),
        "median_ratio": {k: round(statistics.median(v), 3) for k, v in ratios.items()},
        # The middle half of the per-pair ratios: how much one pair can be trusted here.
        "ratio_iqr": {
            k: [round(q, 3) for q in statistics.quantiles(v, n=4)[::2]]
            for k, v in ratios.items()
            if len(v) > 1
        },
        "median_added_s": {k: round(statistics.median(v), 3) for k, v in added.items()},
        "tape_bytes": tape.stat().st_size,
        "processes": processes,
        "manifest_compressed_bytes": meta_bytes,
        "metadata_bytes_per_process": round(meta_bytes / processes, 1),
    }
    if w.compare_tar:
        result["tar_gz_bytes"] = tgz.stat().st_size
        result["tape_vs_tar_gz"] = round(tape.stat().st_size / tgz.stat().st_size, 3)
    emit(result, args.json)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
