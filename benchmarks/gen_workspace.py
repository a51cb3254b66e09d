"""Generate a big workspace around a one-file C build: many files the build never touches.

The shape of a repository with vendored code, ``node_modules`` or a virtualenv: FILES text
files (TOTAL_MB together, sizes spread like real source trees) under ``vendor/``, beside
``src/main.c`` and a Makefile that compiles only that one file. Content is seeded
pseudo-random text (letters, spaces, newlines), so it compresses about as well as source.
Usage: python benchmarks/gen_workspace.py DIR [--files 20000] [--total-mb 470]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

MAKEFILE = """main.o: src/main.c
\tcc -O1 -c src/main.c -o main.o

clean:
\trm -f main.o

.PHONY: clean
"""
MAIN = '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n'
_EXTENSIONS = (".js", ".py", ".json", ".md", ".txt", ".ts", ".h")
# Bytes to text: 20 letters weighted like prose, spaces and a newline now and then.
_TEXT = bytes((b"etaoinshrdlucmfwypvb" + b" " * 5 + b"\n" * 1) * 10)[:256]


def generate(root: Path, files: int = 20_000, total_mb: float = 470, seed: int = 1) -> int:
    """Write the workspace; returns the bytes written under vendor/."""
    rng = random.Random(seed)
    (root / "src").mkdir(parents=True)
    (root / "src" / "main.c").write_text(MAIN)
    (root / "Makefile").write_text(MAKEFILE)
    weights = [rng.expovariate(1.0) for _ in range(files)]
    scale = total_mb * 1e6 / sum(weights)
    written = 0
    for i, weight in enumerate(weights):
        d = root / "vendor" / f"pkg{i // 100:03d}"
        if i % 100 == 0:
            d.mkdir(parents=True)
        size = max(1, round(weight * scale))
        data = rng.randbytes(size).translate(_TEXT)
        (d / f"mod{i % 100:02d}{_EXTENSIONS[i % len(_EXTENSIONS)]}").write_bytes(data)
        written += size
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--total-mb", type=float, default=470)
    args = ap.parse_args()
    written = generate(args.dir, args.files, args.total_mb)
    print(f"{args.files} files, {written / 1e6:.0f} MB under {args.dir / 'vendor'}")


if __name__ == "__main__":
    main()
