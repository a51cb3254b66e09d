"""How often the likely-cause line of `buildtape diff` names the seeded cause, on real builds
nobody here wrote (Debian's bzip2, zlib, gzip, jq and fribidi sources: make, configure + make,
CMake + Ninja, autotools, meson + ninja; Google's uuid Go module from Debian's
golang-github-google-uuid).

Each case records the unchanged build (A) and a copy seeded with one known cause (B) with
the real CLI, in workspaces of equal path length (unless the case is about the directory),
and checks that the likely-cause line, and the first cause of ``--format json``, contain
the words that name the cause. Identical rebuilds must diff as equivalent. A case whose
source cannot be fetched (offline) is skipped and says so.

    python3 benchmarks/diagnosis_accuracy.py [--src DIR] [--work DIR] [--only NAME]

--src holds the unpacked sources (fetched with /work/shared/tools/debian-source when absent).
Not a timing benchmark: it runs each build twice per case, a few minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Mutate = Callable[[Path], None]
TOOL = "/work/shared/tools/debian-source"
EQUIVALENT = "verdict: equivalent: same command, inputs, steps and outputs"


def _nothing(ws: Path) -> None:
    pass


@dataclass(frozen=True)
class Case:
    name: str
    package: str
    argv: tuple[str, ...]
    expect: tuple[str, ...]  # empty: the two builds must be equivalent
    seed: Mutate = _nothing
    prepare: Mutate = _nothing
    env_a: dict[str, str | None] = field(default_factory=dict)
    env_b: dict[str, str | None] = field(default_factory=dict)
    argv_b: tuple[str, ...] | None = None
    between: Callable[[Path], None] | None = None
    dir_b: str = "b"  # where B is built beside A's a/: "a" rebuilds in A's place
    # Every step of one build has its partner in the other (none removed and added): the
    # compiler ran under another name, and the compiles are still the same steps.
    paired: bool = False
    # None of these may appear in the likely-cause line: a step that is no cause of its own.
    absent: tuple[str, ...] = ()


def edit(path: str, old: str, new: str) -> Mutate:
    def mutate(ws: Path) -> None:
        text = (ws / path).read_text(errors="surrogateescape")
        if old not in text:
            raise SystemExit(f"seed: {old!r} not in {path}")
        (ws / path).write_text(text.replace(old, new, 1), errors="surrogateescape")

    return mutate


def append(path: str, text: str) -> Mutate:
    def mutate(ws: Path) -> None:
        with (ws / path).open("a") as f:
            f.write(text)

    return mutate


def remove(path: str) -> Mutate:
    return lambda ws: (ws / path).unlink()


def both(*steps: Mutate) -> Mutate:
    def mutate(ws: Path) -> None:
        for s in steps:
            s(ws)

    return mutate


BZ = ("make", "-j2", "libbz2.a", "bzip2", "bzip2recover")
ZC = ("sh", "-c", "./configure >/dev/null && make -j2 libz.a")
ZN = ("sh", "-c", "cmake -S . -B build -G Ninja >/dev/null && ninja -C build zlibstatic")
# Debian's zlib tarball drops win32/zlib1.rc, which CMakeLists.txt lists; an empty one will do.
ZN_PREP = lambda ws: (ws / "win32").mkdir(exist_ok=True) or (ws / "win32" / "zlib1.rc").touch()  # noqa: E731
PATH = os.environ["PATH"]
GZ = ("sh", "-c", "./configure -q >/dev/null && make -j2 >/dev/null")
# meson + ninja (Debian's fribidi); --buildtype=release: -g would embed the directory.
MS = ("sh", "-c", "meson setup build -Ddocs=false --buildtype=release >/dev/null && "
      "ninja -C build >/dev/null")  # fmt: skip
# jq 1.6 (Debian's tarball is a git export: no configure) without its oniguruma submodule.
JQ = ("sh", "-c", "./configure -q --disable-docs --without-oniguruma >/dev/null && "
      "make -j2 -s >/dev/null")  # fmt: skip
JQ_PREP = lambda ws: subprocess.run(["autoreconf", "-fi"], cwd=ws, check=True, capture_output=True)  # noqa: E731
GO = ("go", "test", "-c", "-o", "uuid.test", ".")
GO_ENV: dict[str, str | None] = {"GOFLAGS": "-trimpath", "GOTOOLCHAIN": "local"}


def next_second() -> None:
    # __TIME__ has a resolution of one second: B compiles in a later one than A.
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.05)


BZ_EXT = both(
    edit("Makefile", "CFLAGS=-Wall", "CFLAGS=-I$(EXT) -Wall"),
    edit("bzlib.c", '#include "bzlib_private.h"', '#include "bzlib_private.h"\n#include "ext.h"'),
)

CASES = [
    Case("bz-flag", "bzip2", BZ, ("-O2 → -O3",), edit("Makefile", "-O2 -g", "-O3 -g")),
    Case("bz-src", "bzip2", BZ, ("bzlib.c changed",),
         append("bzlib.c", "\nint bz_probe_seed(void) { return 42; }\n")),
    Case("bz-hdr", "bzip2", BZ, ("bzlib_private.h changed",),
         edit("bzlib_private.h", "#define BZ_VERSION", "#define BZ_SEEDED 1\n#define BZ_VERSION")),
    Case("bz-rmh", "bzip2", BZ, ("bzlib_private.h removed from the workspace",),
         remove("bzlib_private.h")),
    Case("bz-jobs", "bzip2", ("make", "-j1", *BZ[2:]), ("build command", "-j1", "-j2"),
         argv_b=BZ),
    Case("bz-tool", "bzip2", BZ, ("gcc on PATH is now",), env_b={"PATH": "{case}/bin:" + PATH}),
    Case("bz-127", "bzip2", BZ, ("gcc: not found on PATH",),
         env_b={"PATH": "{case}/nogcc"}),
    Case("bz-ext", "bzip2", BZ, ("ext.h changed",), prepare=BZ_EXT,
         env_a={"EXT": "{case}/ext"}, env_b={"EXT": "{case}/ext"},
         between=lambda case: (case / "ext" / "ext.h").write_text("#define EXT_SEED 2\n")),
    Case("zc-cflags", "zlib", ZC, ("CFLAGS set to -O1",), env_b={"CFLAGS": "-O1"}),
    Case("zc-src", "zlib", ZC, ("deflate.c changed",),
         append("deflate.c", "\nint z_probe_seed(void) { return 42; }\n")),
    Case("zc-hdr", "zlib", ZC, ("zutil.h changed",), append("zutil.h", "\n#define Z_SEEDED 1\n")),
    Case("zc-cmd", "zlib", ZC, ("build command",),
         argv_b=("sh", "-c", "./configure --const >/dev/null && make -j2 libz.a")),
    Case("zc-cc", "zlib", ZC, ("CC set to gcc-12",), env_b={"CC": "gcc-12"}),
    Case("zn-src", "zlib", ZN, ("inflate.c changed",), prepare=ZN_PREP,
         seed=append("inflate.c", "\nint z_probe_seed(void) { return 42; }\n")),
    Case("zn-cflags", "zlib", ZN, ("CFLAGS set to -O1",), prepare=ZN_PREP, env_b={"CFLAGS": "-O1"}),
    Case("zn-list", "zlib", ZN, ("CMakeLists.txt changed",), prepare=ZN_PREP,
         seed=append("CMakeLists.txt", "\nadd_compile_options(-O1)\n")),
    Case("zn-sde", "zlib", ZN, ("SOURCE_DATE_EPOCH",),
         prepare=both(ZN_PREP, append("CMakeLists.txt", '\nstring(TIMESTAMP BUILT "%Y%m%d")\n'
                                      'file(WRITE ${CMAKE_BINARY_DIR}/built.txt "${BUILT}")\n')),
         env_a={"SOURCE_DATE_EPOCH": "1700000000"}, env_b={"SOURCE_DATE_EPOCH": "1600000000"}),
    # Shapes met on real builds (the sixth session's survey): the flag on make's command line,
    # a syntax error, a locale, a wrapper script that execs gcc with one more flag, a unit
    # stamped with __DATE__ __TIME__, another build directory under -g, a header only some
    # units include, CC and CFLAGS through configure, ninja -j, autotools, a Go module.
    Case("bz-O0cmd", "bzip2", BZ, ("build command", "-O0"),
         argv_b=("make", "-j2", "CFLAGS=-Wall -Winline -O0 -g -D_FILE_OFFSET_BITS=64",
                 *BZ[2:])),
    Case("bz-syntax", "bzip2", BZ, ("compress.c changed",),
         edit("compress.c", '#include "bzlib_private.h"',
              '#include "bzlib_private.h"\nint oops(;')),
    Case("bz-lcall", "bzip2", BZ, ("LC_ALL C → C.UTF-8",),
         env_a={"LC_ALL": "C"}, env_b={"LC_ALL": "C.UTF-8"}),
    Case("bz-ccsh", "bzip2", BZ, ("gcc on PATH is now", "-fno-inline added"),
         env_b={"PATH": "{case}/wrap:" + PATH}),
    Case("bz-date", "bzip2", BZ, ("nondeterministic", "bzip2.c: embeds a date or time"),
         prepare=edit("bzip2.c", "Char    inName [FILE_NAME_LEN];",
                      'const char *built_at = __DATE__ " " __TIME__;\n'
                      "Char    inName [FILE_NAME_LEN];"),
         between=lambda case: next_second(), dir_b="a"),
    Case("bz-dir", "bzip2", BZ, ("the build directory differs", "/elsewhere/"), dir_b="elsewhere"),
    Case("zc-inflh", "zlib", ZC, ("inflate.h changed",),
         append("inflate.h", "\n#define Z_SEEDED 1\n")),
    Case("zc-ccw", "zlib", ZC, ("CC set to", "adler32.c", "-fno-inline added"),
         env_b={"CC": "{case}/wrap/cc"}),
    Case("zc-O0env", "zlib", ZC, ("CFLAGS -O2 → -O0",),
         env_a={"CFLAGS": "-O2"}, env_b={"CFLAGS": "-O0"}),
    Case("zn-jobs", "zlib", (*ZN[:2], ZN[2].replace("ninja -C", "ninja -j1 -C")),
         ("build command", "-j1"),
         prepare=ZN_PREP, argv_b=ZN),
    Case("zn-hdr", "zlib", ZN, ("inflate.h changed",), prepare=ZN_PREP,
         seed=append("inflate.h", "\n#define Z_SEEDED 1\n")),
    Case("zn-tz", "zlib", ZN, ("TZ UTC → Asia/Tokyo",), prepare=ZN_PREP,
         env_a={"TZ": "UTC"}, env_b={"TZ": "Asia/Tokyo"}),
    Case("gz-conf", "gzip", GZ, ("build command", "--disable-largefile"),
         argv_b=("sh", "-c",
                 "./configure -q --disable-largefile >/dev/null && make -j2 >/dev/null")),
    Case("gz-src", "gzip", GZ, ("util.c changed",),
         append("util.c", "\nint gz_probe_seed(void) { return 42; }\n")),
    Case("go-src", "golang-github-google-uuid", GO, ("version4.go changed",),
         append("version4.go", "\nfunc probeSeed() int { return 42 }\n"),
         env_a=GO_ENV, env_b=GO_ENV),
    Case("go-flags", "golang-github-google-uuid", GO,
         ("GOFLAGS -trimpath → '-trimpath -ldflags=-s'",),
         env_a=GO_ENV, env_b={**GO_ENV, "GOFLAGS": "-trimpath -ldflags=-s"}),
    # The seventh session: the compiler under another name or another compiler (matched by
    # what it is), meson, a header and CFLAGS through gzip's configure.
    Case("bz-cc12", "bzip2", BZ, ("build command", "CC=gcc-12"),
         argv_b=(*BZ[:2], "CC=gcc-12", *BZ[2:]), paired=True),
    Case("bz-clang", "bzip2", BZ, ("CC=clang-14", "gcc → clang-14"),
         argv_b=(*BZ[:2], "CC=clang-14", *BZ[2:])),
    Case("bz-ccx", "bzip2", BZ, ("gcc on PATH is now", "which runs"),
         env_b={"PATH": "{case}/exec:" + PATH}, paired=True),
    Case("zc-clang", "zlib", ZC, ("CC set to clang-14",), env_b={"CC": "clang-14"}),
    Case("gz-hdr", "gzip", GZ, ("gzip.h changed",), append("gzip.h", "\n#define GZ_SEEDED 1\n")),
    Case("gz-cflags", "gzip", GZ, ("CFLAGS set to -O1",), env_b={"CFLAGS": "-O1"}),
    Case("ms-src", "fribidi", MS, ("lib/fribidi.c changed",),
         append("lib/fribidi.c", "\nint fribidi_probe_seed(void) { return 42; }\n")),
    Case("ms-hdr", "fribidi", MS, ("lib/common.h changed",),
         append("lib/common.h", "\n#define FRIBIDI_SEEDED 1\n")),
    Case("ms-cflags", "fribidi", MS, ("CFLAGS set to -O1",), env_b={"CFLAGS": "-O1"}),
    Case("ms-opt", "fribidi", MS, ("build command", "-Ddeprecated=false"),
         argv_b=("sh", "-c", MS[2].replace("-Ddocs=false", "-Ddocs=false -Ddeprecated=false"))),
    Case("ms-cc", "fribidi", MS, ("CC set to clang-14",), env_b={"CC": "clang-14"}),
    # The eighth session: jq's configure asks the compiler through libtool's subshells (a
    # process forked without exec between configure and gcc), which named those probes
    # (`gcc -g -O2 -print-multi-os-directory`, `gcc --version`) as causes of their own.
    Case("jq-cflags", "jq", JQ, ("CFLAGS set to '-g -O0'", "-O2 → -O0"), prepare=JQ_PREP,
         env_b={"CFLAGS": "-g -O0"}, absent=("-print-multi-os-directory", "; ")),
    Case("jq-clang", "jq", JQ, ("CC set to clang-14", "gcc → clang-14"), prepare=JQ_PREP,
         env_b={"CC": "clang-14"}, absent=("--version", "more independent")),
    Case("jq-hdr", "jq", JQ, ("src/jv.h changed",), prepare=JQ_PREP,
         seed=edit("src/jv.h", "#define JV_H", "#define JV_H\n#define JQ_SEEDED 1")),
    # Identical rebuilds: the second recording in the same checkout, rebuilt from a clean copy.
    Case("bz-same", "bzip2", BZ, ()),
    Case("zc-same", "zlib", ZC, ()),
    Case("zn-same", "zlib", ZN, (), prepare=ZN_PREP),
    # gzip's configure: hundreds of tests of one identity, and pids the build reuses.
    Case("gz-same", "gzip", GZ, ()),
    Case("ms-same", "fribidi", MS, ()),
    Case("jq-same", "jq", JQ, (), prepare=JQ_PREP),
]  # fmt: skip


WRAPPER_C = r"""
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argc;
    pid_t pid = fork();
    if (pid == 0) { argv[0] = "gcc"; execv("REAL", argv); _exit(127); }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
"""


class Unavailable(Exception):
    """A case's source could not be fetched (offline, or the package is gone)."""


def source(src: Path, package: str) -> Path:
    found = sorted((src / package).glob("*/"))
    if not found:
        try:
            subprocess.run([TOOL, package, str(src / package)], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as e:
            err = getattr(e, "stderr", b"") or b""
            lines = err.decode(errors="replace").strip().splitlines() or [str(e)]
            raise Unavailable(f"could not fetch the {package} source: {lines[-1]}") from e
        found = sorted((src / package).glob("*/"))
    return found[0]


def setup_case_dir(case_dir: Path) -> None:
    # Another gcc on PATH: a wrapper that runs the real one as its child (as ccache does).
    (case_dir / "bin").mkdir(parents=True)
    wrapper = case_dir / "bin" / "gcc-wrapper.c"
    wrapper.write_text(WRAPPER_C.replace("REAL", os.path.realpath(shutil.which("gcc") or "gcc")))
    subprocess.run(["gcc", "-o", str(case_dir / "bin" / "gcc"), str(wrapper)], check=True)
    nogcc = case_dir / "nogcc"
    nogcc.mkdir()
    seen: set[str] = set()
    for d in PATH.split(":"):
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if name in seen or name == "gcc" or name.startswith("gcc-"):
                continue
            seen.add(name)
            (nogcc / name).symlink_to(os.path.join(d, name))
    (case_dir / "ext").mkdir()
    (case_dir / "ext" / "ext.h").write_text("#define EXT_SEED 1\n")
    # A wrapper script, as gcc and as cc, that execs the real compiler with one more flag.
    (case_dir / "wrap").mkdir()
    real = os.path.realpath(shutil.which("gcc") or "gcc")
    for name in ("gcc", "cc"):
        (case_dir / "wrap" / name).write_text(f'#!/bin/sh\nexec {real} -fno-inline "$@"\n')
        (case_dir / "wrap" / name).chmod(0o755)
    # As ccache's masquerade directory: gcc on PATH execs the compiler under another name.
    (case_dir / "exec").mkdir()
    (case_dir / "exec" / "gcc").write_text('#!/bin/sh\nexec gcc-12 "$@"\n')
    (case_dir / "exec" / "gcc").chmod(0o755)


def env_for(case_dir: Path, changes: dict[str, str | None]) -> dict[str, str]:
    env = dict(os.environ)
    for k, v in changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v.replace("{case}", str(case_dir))
    return env


def run_case(case: Case, src: Path, work: Path, repo: Path) -> tuple[bool, str]:
    case_dir = work / case.name.ljust(10, "_")
    shutil.rmtree(case_dir, ignore_errors=True)
    setup_case_dir(case_dir)
    tree = source(src, case.package)
    tapes = []
    for side in ("a", "b"):
        ws = case_dir / ("a" if side == "a" or not case.expect else case.dir_b) / "src"
        shutil.rmtree(ws, ignore_errors=True)
        shutil.copytree(tree, ws, symlinks=True)
        case.prepare(ws)
        if side == "b":
            case.seed(ws)
        argv = case.argv_b if side == "b" and case.argv_b else case.argv
        env = env_for(case_dir, case.env_b if side == "b" else case.env_a)
        env["PYTHONPATH"] = str(repo)
        tape = case_dir / f"{side}.tape"
        cmd = [sys.executable, "-m", "buildtape", "record", "-q", "-o", str(tape), "--", *argv]
        subprocess.run(cmd, cwd=ws, env=env, capture_output=True, timeout=900)
        if not tape.exists():
            return False, f"no tape for {side}"
        tapes.append(tape)
        if side == "a" and case.between is not None:
            case.between(case_dir)
    env = {**os.environ, "PYTHONPATH": str(repo)}
    out = subprocess.run(
        [sys.executable, "-m", "buildtape", "diff", *map(str, tapes)],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    lines = out.stdout.splitlines()
    if not case.expect:
        ok = out.returncode == 0 and lines[:1] == [
            "verdict: equivalent: same command, inputs, steps and outputs"
        ]
        return ok, lines[0] if ok else " | ".join(lines[:2])
    cause = next((x for x in lines if x.startswith("likely cause: ")), "(no likely-cause line)")
    as_json = subprocess.run(
        [sys.executable, "-m", "buildtape", "diff", "--format", "json", *map(str, tapes)],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    report = json.loads(as_json.stdout) if as_json.stdout else {}
    first = (report.get("causes") or [""])[0]
    named = all(w in cause for w in case.expect) and not any(w in cause for w in case.absent)
    if named and not all(w in first for w in case.expect):
        return False, f"{cause} (but --format json names first: {first})"
    steps = report.get("steps", {})
    unpaired = [s for k in ("only_in_a", "only_in_b") for s in steps.get(k, []) if not s["probe"]]
    if named and case.paired and unpaired:
        return False, f"{cause} (but {len(unpaired)} steps have no partner)"
    return named, cause


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", type=Path, default=Path("/tmp/diagnosis-accuracy/src"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/diagnosis-accuracy/work"))
    ap.add_argument("--only", action="append", default=[])
    args = ap.parse_args()
    repo = Path(__file__).resolve().parent.parent
    cases = [c for c in CASES if not args.only or c.name in args.only]
    named = equivalent = seeded = same = 0
    skipped = 0
    for case in cases:
        try:
            ok, line = run_case(case, args.src, args.work, repo)
        except Unavailable as e:
            print(f"SKIP  {case.name:<10} {e}", flush=True)
            skipped += 1
            continue
        print(f"{'PASS' if ok else 'FAIL'}  {case.name:<10} {line}", flush=True)
        if case.expect:
            seeded += 1
            named += ok
        else:
            same += 1
            equivalent += ok
    if seeded:
        print(
            f"likely cause names the seeded cause: {named}/{seeded} = {100 * named / seeded:.0f}%"
        )
    if same:
        print(f"identical rebuilds diffed as equivalent: {equivalent}/{same}")
    if skipped:
        print(f"skipped (source unavailable): {skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
