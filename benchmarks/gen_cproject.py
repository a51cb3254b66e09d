"""Generate a C project of N translation units that include real system headers.

Each unit has a few functions with loops and string handling, so gcc does
representative work (preprocessing stdio/stdlib/string/math, optimising, assembling).
Usage: python benchmarks/gen_cproject.py DIR [--files 200]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

HEADER = """#ifndef PROJ_H
#define PROJ_H
#include <stddef.h>
#include <stdint.h>
typedef struct {{ double x, y, z; }} vec3;
typedef struct {{ char name[32]; uint64_t id; vec3 pos; }} record;
{decls}
#endif
"""

UNIT = """#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "proj.h"

static double helper_{i}(const record *r, size_t n) {{
    double acc = 0.0;
    for (size_t k = 0; k < n; k++) {{
        acc += sqrt(r[k].pos.x * r[k].pos.x + r[k].pos.y * r[k].pos.y) * {a};
        if (strncmp(r[k].name, "skip", 4) == 0) continue;
        acc -= (double)(r[k].id % {b});
    }}
    return acc;
}}

uint64_t unit_{i}(record *r, size_t n) {{
    uint64_t h = {seed}u;
    for (size_t k = 0; k < n; k++) {{
        snprintf(r[k].name, sizeof r[k].name, "r%zu-%d", k, {i});
        for (const char *c = r[k].name; *c; c++) h = (h ^ (uint64_t)*c) * 1099511628211u;
        r[k].pos.z = helper_{i}(r, k + 1) / (double)(k + 1);
    }}
    qsort(r, n, sizeof *r, (int (*)(const void *, const void *))strcmp);
    return h ^ (uint64_t)helper_{i}(r, n);
}}
"""

MAIN = """#include <stdio.h>
#include <stdlib.h>
#include "proj.h"
int main(void) {{
    record *r = calloc(64, sizeof *r);
    uint64_t h = 0;
{calls}
    printf("%llx\\n", (unsigned long long)h);
    free(r);
    return 0;
}}
"""

MAKEFILE = """CC ?= cc
CFLAGS ?= -O2
SRCS := $(wildcard u*.c) main.c
OBJS := $(SRCS:.c=.o)

prog: $(OBJS)
\t$(CC) $(CFLAGS) -o $@ $(OBJS) -lm

%.o: %.c proj.h
\t$(CC) $(CFLAGS) -c $< -o $@

clean:
\trm -f $(OBJS) prog
.PHONY: clean
"""


def generate(root: Path, files: int) -> None:
    rng = random.Random(1234)
    root.mkdir(parents=True, exist_ok=True)
    decls = "\n".join(f"uint64_t unit_{i}(record *r, size_t n);" for i in range(files))
    (root / "proj.h").write_text(HEADER.format(decls=decls))
    for i in range(files):
        text = UNIT.format(
            i=i, a=rng.randint(2, 9), b=rng.randint(3, 97), seed=rng.randint(1, 10**9)
        )
        (root / f"u{i:03d}.c").write_text(text)
    calls = "\n".join(f"    h ^= unit_{i}(r, 64);" for i in range(files))
    (root / "main.c").write_text(MAIN.format(calls=calls))
    (root / "Makefile").write_text(MAKEFILE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--files", type=int, default=200)
    args = ap.parse_args()
    generate(args.dir, args.files)


if __name__ == "__main__":
    main()
