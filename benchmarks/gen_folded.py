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


def frame(rng: random.Random, depth: int) -> str:
    mod = MODULES[min(len(MODULES) - 1, int(rng.paretovariate(1.2)) - 1)]
    verb = rng.choice(VERBS)
    return f"{mod}::{verb}_{depth}_{rng.randrange(40)}(src/{mod}/{verb}.c:{rng.randrange(900)})"


def generate(out: Path, lines: int, depth: int, seed: int) -> None:
    rng = random.Random(seed)
    seen: set[str] = set()
    with out.open("w") as f:
        while len(seen) < lines:
            d = rng.randint(depth // 2, depth)
            stack = ";".join(["main", *(frame(rng, i) for i in range(d))])
            if stack in seen:
                continue
            seen.add(stack)
            f.write(f"{stack} {int(rng.paretovariate(1.1) * 10)}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--depth", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    generate(args.out, args.lines, args.depth, args.seed)


if __name__ == "__main__":
    main()
