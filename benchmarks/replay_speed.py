"""Replay wall time against the recording's, and what the bubblewrap sandbox costs.

For each of ``--runs`` rounds, on a fresh copy of the build: record it (``buildtape record``,
wall time of the whole command), then replay the tape in the bwrap sandbox and in a plain
directory (``--sandbox directory``), alternating which goes first, and time the sandbox
set-up alone (bwrap with the same mounts running ``true``), and a replay that keeps its
own tape (``-o``: the build runs under the recorder inside the sandbox, a second
interpreter). Ratios are per round (paired), reported as medians with the interquartile
range.

    python benchmarks/replay_speed.py --build c-make --runs 1     # smallest, a smoke run
    python benchmarks/replay_speed.py --build cmake-ninja --runs 11
    python benchmarks/replay_speed.py --build lua --runs 11      # fetches Lua (fetch_lua.sh)

Needs a quiet machine for real figures; the issue's target is replay <= 1.1x recording.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, byte_compile, emit
from replay.sandbox import Layout, bwrap_argv, choose_isolation

BUILDS = {
    "c-make": ["make", "-j2"],
    "c-debug": ["make", "-j2"],
    "cmake-debug": ["sh", "build.sh"],
    "lua": ["make", "-j2", "linux"],
}


def _source(build: str) -> Path:
    if build == "lua":
        out = subprocess.run(
            [str(Path(__file__).with_name("fetch_lua.sh"))],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return Path(out.stdout.strip().splitlines()[-1])
    return ROOT / "fixtures" / build


def _timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    return wall


def _setup_cost(place: Path, scratch: Path, command: list[str]) -> float:
    """Wall time of bwrap with a replay's mounts, running ``command``."""
    isolation = choose_isolation("bwrap", {"PATH": "/usr/bin:/bin"})
    assert isolation.bwrap is not None
    dirs = {n: scratch / n for n in ("ws", "tmp", "out")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    layout = Layout(dirs["ws"], str(place), dirs["tmp"], dirs["out"], str(place), "bench")
    return _timed(bwrap_argv(isolation.bwrap, layout, command), scratch)


def _quartiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"median": round(values[0], 4)}
    q = statistics.quantiles(values, n=4)
    return {"median": round(statistics.median(values), 4), "q1": round(q[0], 4),
            "q3": round(q[2], 4)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--build", choices=sorted(BUILDS), default="c-make")
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--json", type=Path, help="Also write the result here.")
    args = ap.parse_args()
    byte_compile()
    source = _source(args.build)
    bt = [sys.executable, "-m", "buildtape"]
    rows: dict[str, list[float]] = {k: [] for k in (
        "record", "replay_bwrap", "replay_directory", "bwrap_true", "replay_recorded",
    )}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="replay-speed-") as tmp:
        for i in range(args.runs):
            ws = Path(tmp) / f"r{i}" / source.name
            shutil.copytree(source, ws, ignore=shutil.ignore_patterns("*.o", "build", "app"))
            tape = ws.parent / "b.tape"
            rows["record"].append(_timed([*bt, "record", "-q", "-o", str(tape), "--",
                                          *BUILDS[args.build]], ws))  # fmt: skip
            order = ["bwrap", "directory"] if i % 2 == 0 else ["directory", "bwrap"]
            for mode in order:
                wall = _timed([*bt, "replay", "--yes", "--sandbox", mode, str(tape)], ws.parent)
                rows[f"replay_{mode}"].append(wall)
            scratch = ws.parent / "setup"
            rows["bwrap_true"].append(_setup_cost(ws, scratch / "t", ["true"]))
            kept = ws.parent / f"replay{i}.tape"
            argv = [*bt, "replay", "--yes", "-o", str(kept), str(tape)]
            rows["replay_recorded"].append(_timed(argv, ws.parent))
    ratio = [b / r for b, r in zip(rows["replay_bwrap"], rows["record"], strict=True)]
    cost = [b - d for b, d in zip(rows["replay_bwrap"], rows["replay_directory"], strict=True)]
    emit(
        {
            "build": args.build,
            "runs": args.runs,
            "wall_s": {k: _quartiles(v) for k, v in rows.items()},
            "replay_over_record": _quartiles(ratio),
            "sandbox_cost_s": _quartiles(cost),
        },
        args.json,
    )


if __name__ == "__main__":
    main()
