"""Synthetic folded stacks for the flame benchmark: many unique, deep stacks.

Stacks are random walks down a tree of plausible frame names, so prefixes are shared
the way real profiles share them (a few hot paths, a long tail). Deterministic per seed.
Usage: python benchmarks/gen_folded.py OUT [--lines 100000] [--depth 60] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

MODULES = ["core", "parse", "codegen", "io", "net", "alloc", "sched", "hash", "json", "vm"]
VERBS = ["run", "eval", "visit", "emit", "read", "write", "alloc", "lookup", "merge", "step"]
FUNCTIONS = 4000
CALLEES = 6


def call_graph(rng: random.Random) -> tuple[list[str], list[list[int]]]:
    """A fixed program: named functions, each calling a few others."""
    names = []
    for i in range(FUNCTIONS):
        mod = rng.choice(MODULES)
        names.append(f"{mod}::{rng.choice(VERBS)}_{i}(src/{mod}/f{i % 97}.c:{rng.randrange(900)})")
    callees = [[rng.randrange(FUNCTIONS) for _ in range(CALLEES)] for _ in range(FUNCTIONS)]
    return names, callees


def generate(out: Path, lines: int, depth: int, seed: int) -> None:
    """Random walks down the call graph, skewed towards each function's first callees,
    so that a few hot paths carry most of the weight, as in real profiles."""
    rng = random.Random(seed)
    names, callees = call_graph(rng)
    seen: set[str] = set()
    with out.open("w") as f:
        while len(seen) < lines:
            node = rng.randrange(20)
            stack = ["main", names[node]]
            for _ in range(rng.randint(depth // 2, depth)):
                pick = min(CALLEES - 1, int(rng.paretovariate(1.5)) - 1)
                node = callees[node][pick]
                stack.append(names[node])
            line = ";".join(stack)
            if line in seen:
                continue
            seen.add(line)
            f.write(f"{line} {int(rng.paretovariate(1.1) * 10)}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--depth", type=int, default=28)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    generate(args.out, args.lines, args.depth, args.seed)


if __name__ == "__main__":
    main()
