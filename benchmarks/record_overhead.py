"""Recording overhead and tape size on a real C build (issue: the spine).

Builds a generated 200-unit C project with ``make -j2``, in alternating pairs:
plain, then each recorder in turn, from a clean tree every time. Reports the median
of per-pair wall-time ratios (each recorder against the plain build of the same
pair), the tape size against ``tar czf`` of the built workspace, and the tape
metadata per recorded process.

    python benchmarks/record_overhead.py [--pairs 5] [--files 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
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

from benchmarks.gen_cproject import generate
from recorder.tape import TapeReader


def timed(argv: list[str], cwd: Path) -> float:
    subprocess.run(["make", "-s", "clean"], cwd=cwd, check=True, capture_output=True)
    t = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bt-bench-"))
    proj = work / "proj"
    generate(proj, args.files)
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
    variants: dict[str, list[str]] = {
        "buildtape (strace)": [*bt[:4], "--trace", "strace", *bt[4:]],
        "buildtape --trace proc": [*bt[:4], "--trace", "proc", *bt[4:]],
        "buildtape --trace none": [*bt[:4], "--trace", "none", *bt[4:]],
    }
    if shutil.which("reprozip"):
        variants["reprozip trace"] = [
            "reprozip",
            "trace",
            "--overwrite",
            "--dont-identify-packages",
            "-d",
            str(work / "rpz"),
        ]
    make = ["make", "-j2"]
    timed(make, proj)  # warm the page cache and the compiler
    ratios: dict[str, list[float]] = {name: [] for name in variants}
    plain_times: list[float] = []
    for _ in range(args.pairs):
        for name, prefix in variants.items():
            base = timed(make, proj)
            plain_times.append(base)
            ratios[name].append(timed([*prefix, *make], proj) / base)

    # Size: the last strace recording against tar.gz of the same (built) workspace.
    timed([*variants["buildtape (strace)"], *make], proj)
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
        "files": args.files,
        "pairs": args.pairs,
        "plain_median_s": round(statistics.median(plain_times), 3),
        "median_ratio": {k: round(statistics.median(v), 3) for k, v in ratios.items()},
        "tape_bytes": tape.stat().st_size,
        "tar_gz_bytes": tgz.stat().st_size,
        "tape_vs_tar_gz": round(tape.stat().st_size / tgz.stat().st_size, 3),
        "processes": processes,
        "manifest_compressed_bytes": meta_bytes,
        "metadata_bytes_per_process": round(meta_bytes / processes, 1),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
