"""Flamegraph render time, peak memory and SVG size against flamegraph.pl.

Renders the same synthetic folded file (benchmarks/gen_folded.py: 100k unique deep stacks)
with ``buildtape flame`` and with Brendan Gregg's flamegraph.pl, in alternating pairs, and
reports the median time ratio, each tool's peak RSS (from wait4's rusage) and the SVG
sizes, with the fixed header/script bytes and bytes per drawn frame of ours.

flamegraph.pl is a public Perl script: fetch it yourself for the benchmark run and pass
its path; it is not part of this repository.

    python benchmarks/flame_render.py --flamegraph-pl /path/to/flamegraph.pl [--pairs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import byte_compile, emit
from benchmarks.gen_folded import generate


def run(argv: list[str], out: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one run, stdout to ``out``."""
    with out.open("wb") as f:
        t = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[0]} failed")
    return elapsed, usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--flamegraph-pl", type=Path, required=True)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    byte_compile()
    work = Path(tempfile.mkdtemp(prefix="bt-flame-"))
    folded = work / "in.folded"
    generate(folded, args.lines, 28, 1)
    ours_cmd = [sys.executable, "-m", "buildtape", "flame", str(folded)]
    theirs_cmd = ["perl", str(args.flamegraph_pl), str(folded)]
    ours_svg, theirs_svg = work / "ours.svg", work / "theirs.svg"
    ratios, ours_t, theirs_t, ours_rss, theirs_rss = [], [], [], [], []
    for _ in range(args.pairs):
        t_theirs, r_theirs = run(theirs_cmd, theirs_svg)
        t_ours, r_ours = run(ours_cmd, ours_svg)
        ratios.append(t_ours / t_theirs)
        ours_t.append(t_ours)
        theirs_t.append(t_theirs)
        ours_rss.append(r_ours)
        theirs_rss.append(r_theirs)
    svg = ours_svg.read_text()
    frames = svg.count("<g>") + svg.count('<g class="ghost">')
    # Fixed cost: the SVG of a one-frame profile (header, CSS, script); the rest is per frame,
    # counting its element and its row in the script's data table.
    tiny = work / "tiny.folded"
    tiny.write_text("main 1\n")
    fixed = len(subprocess.run([*ours_cmd[:-1], str(tiny)], capture_output=True, check=True).stdout)
    frame_bytes = len(svg.encode()) - fixed
    result = {
        "input_bytes": folded.stat().st_size,
        "input_lines": args.lines,
        "pairs": args.pairs,
        "ours_median_s": round(statistics.median(ours_t), 3),
        "flamegraph_pl_median_s": round(statistics.median(theirs_t), 3),
        "time_ratio_median": round(statistics.median(ratios), 3),
        "ours_peak_rss_mib": round(max(ours_rss) / 1024, 1),
        "flamegraph_pl_peak_rss_mib": round(max(theirs_rss) / 1024, 1),
        "ours_svg_bytes": ours_svg.stat().st_size,
        "flamegraph_pl_svg_bytes": theirs_svg.stat().st_size,
        "drawn_frames": frames,
        "fixed_bytes": fixed,
        "bytes_per_frame": round(frame_bytes / max(1, frames), 1),
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
