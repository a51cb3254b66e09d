"""The likely-cause line on pairs of real recordings, each pair seeded with one known cause.

Every case copies a fixture build twice, applies ``prepare`` to both copies and ``seed`` to
the second, records both with the real CLI, and asserts that the likely-cause line (the
second line of ``buildtape diff``) names the seeded cause. Workspaces have paths of equal
length (``…/<case>/a/<fixture>`` and ``…/<case>/b/<fixture>``), as two CI checkouts would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, buildtape, needs_strace

pytestmark = needs_strace

Mutate = Callable[[Path], None]


def _nothing(ws: Path) -> None:
    pass


@dataclass(frozen=True)
class Case:
    id: str
    fixture: str
    argv: tuple[str, ...]
    expect: tuple[str, ...]  # all must appear in the likely-cause line
    prepare: Mutate = _nothing  # applied to both copies
    seed: Mutate = _nothing  # applied to the second copy only
    env_a: dict[str, str | None] = field(default_factory=dict)
    env_b: dict[str, str | None] = field(default_factory=dict)
    argv_b: tuple[str, ...] | None = None
    between: Callable[[Path], None] | None = None  # run after recording A (gets the case dir)
    dir_b: str = "b"  # where B is built, beside A's a/: "a" rebuilds A's place
    absent: tuple[str, ...] = ()  # none may appear in it: a step that is no cause


def _edit(path: str, old: str, new: str) -> Mutate:
    def mutate(ws: Path) -> None:
        text = (ws / path).read_text()
        assert old in text, (path, old)
        (ws / path).write_text(text.replace(old, new, 1))

    return mutate


def _append(path: str, text: str) -> Mutate:
    def mutate(ws: Path) -> None:
        with (ws / path).open("a") as f:
            f.write(text)

    return mutate


def _both(*steps: Mutate) -> Mutate:
    def mutate(ws: Path) -> None:
        for step in steps:
            step(ws)

    return mutate


def _remove(path: str) -> Mutate:
    return lambda ws: (ws / path).unlink()


MAKE = ("make", "-j2")
CMAKE = ("sh", "build.sh")
PY = ("make",)
SUB = ("sh", "build.sh")

# main.c includes a header from outside the workspace (the case directory's ext/).
_EXT_HEADER = _both(
    _edit("main.c", '#include "common.h"', '#include "common.h"\n#include "ext.h"'),
    _edit("Makefile", "CFLAGS ?= -O2 -Wall", "CFLAGS ?= -O2 -Wall -I$(EXT)"),
)
# A generated file made by a tool found on PATH (a stand-in protoc in the case's tools/).
_PROTOC = _append("Makefile", "\napp: proto.txt\nproto.txt:\n\tprotoc --version > proto.txt\n")
_STAMP_TZ = _append("Makefile", "\napp: zone.txt\nzone.txt:\n\tdate +%Z > zone.txt\n")
_STAMP_LOCALE = _append(
    "Makefile", '\napp: locale.txt\nlocale.txt:\n\techo "$$LC_ALL" > locale.txt\n'
)
_PY_EPOCH = _edit(
    "build.py",
    '    write_index(HERE / "out", index)\n',
    '    write_index(HERE / "out", index)\n'
    '    (HERE / "out" / "epoch.txt").write_text(os.environ.get("SOURCE_DATE_EPOCH", "-"))\n',
)
_VERSION_H = _both(
    lambda ws: (ws / "version.h").write_text('#define VERSION "1.0"\n'),
    _edit("main.c", '#include "common.h"', '#include "common.h"\n#include "version.h"'),
)

# One unit embeds the time it was compiled: a nondeterministic output, in a real compile.
_BUILT_AT = _append("stats.c", 'const char *stats_built_at = __DATE__ " " __TIME__;\n')


def _next_second(case_dir: Path) -> None:
    # __TIME__ has a resolution of one second: B compiles in a later one than A.
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.05)


CASES = [
    Case("mk-flag", "c-make", MAKE, ("-O2 → -O3",),
         seed=_edit("Makefile", "CFLAGS ?= -O2", "CFLAGS ?= -O3")),
    Case("mk-src", "c-make", MAKE, ("stats.c changed",),
         seed=_edit("stats.c", ": 0.0;", ": -1.0;")),
    Case("mk-rmh", "c-make", MAKE, ("version.h removed from the workspace",),
         prepare=_VERSION_H, seed=_remove("version.h")),
    Case("mk-cfl", "c-make", MAKE, ("CFLAGS set to -Os",), env_b={"CFLAGS": "-Os"}),
    Case("mk-jobs", "c-make", ("make", "-j1"), ("make -j1 → make -j2",), argv_b=("make", "-j2")),
    Case("mk-tool", "c-make", MAKE, ("cc on PATH is now",),
         env_b={"PATH": "{case}/bin:" + os.environ["PATH"]}),
    Case("mk-127", "c-make", MAKE, ("protoc: not found on PATH",), prepare=_PROTOC,
         env_a={"PATH": "{case}/tools:" + os.environ["PATH"]}),
    Case("mk-ext", "c-make", MAKE, ("ext.h changed",), prepare=_EXT_HEADER,
         env_a={"EXT": "{case}/ext"}, env_b={"EXT": "{case}/ext"},
         between=lambda case: (case / "ext" / "ext.h").write_text("#define EXT 2\n")),
    Case("mk-tz", "c-make", MAKE, ("TZ UTC → Asia/Tokyo",), prepare=_STAMP_TZ,
         env_a={"TZ": "UTC"}, env_b={"TZ": "Asia/Tokyo"}),
    Case("mk-lc", "c-make", MAKE, ("LC_ALL C → de_DE.UTF-8",), prepare=_STAMP_LOCALE,
         env_a={"LC_ALL": "C"}, env_b={"LC_ALL": "de_DE.UTF-8"}),
    # A wrapper script named cc, first on PATH, that execs the real compiler with one more
    # flag: every compile runs under the real compiler's name and executable.
    Case("mk-ccsh", "c-make", MAKE, ("cc on PATH is now", "/wrap/cc", "-fno-inline added"),
         env_b={"PATH": "{case}/wrap:" + os.environ["PATH"]}),
    # A directory on PATH that shadows nothing: named by the entry, not by 50 characters.
    Case("mk-path", "c-make", MAKE, ("PATH: ", "/empty added",),
         env_b={"PATH": "{case}/empty:" + os.environ["PATH"]}),
    Case("mk-date", "c-make", MAKE, ("nondeterministic", "stats.o (stats.c: embeds a date or time)"),
         prepare=_BUILT_AT, between=_next_second, dir_b="a"),
    # -g writes the build directory into every object; B is built in another one.
    Case("mk-dir", "c-make", (*MAKE, "CFLAGS=-O2 -g"), ("the build directory differs", "/elsewhere/"),
         dir_b="elsewhere"),
    Case("cm-src", "cmake-ninja", CMAKE, ("src/fmt.c changed",),
         seed=_edit("src/fmt.c", "%.2f", "%.3f")),
    Case("cm-list", "cmake-ninja", CMAKE, ("CMakeLists.txt changed", "-O1"),
         seed=_append("CMakeLists.txt", "target_compile_options(tally PRIVATE -O1)\n")),
    Case("cm-cfl", "cmake-ninja", CMAKE, ("CFLAGS set to -O1",), env_b={"CFLAGS": "-O1"}),
    Case("cm-cmd", "cmake-ninja", CMAKE, ("build command sh build.sh → sh build.sh -DCMAKE_BUILD_TYPE=Debug",),
         argv_b=(*CMAKE, "-DCMAKE_BUILD_TYPE=Debug")),
    # libtool's configure runs the compiler below processes forked without exec (a
    # subshell, a `$(… | …)`): those inherit the variable, and the steps below them follow
    # from it, not causes of their own (jq's configure named its `gcc -g -O2
    # -print-multi-os-directory` as a second cause).
    Case("sub-cfl", "subshell-cc", SUB, ("CFLAGS set to -O0", "main.o", "-O2 → -O0"),
         env_b={"CFLAGS": "-O0"}, absent=("-dumpmachine", "; ")),
    Case("sub-cc", "subshell-cc", SUB, ("CC set to clang-14", "the C compiler is now clang-14"),
         env_b={"CC": "clang-14"}, absent=("-dumpmachine",)),
    Case("py-src", "py-build", PY, ("src/doc1.txt changed",),
         seed=_append("src/doc1.txt", "one more line\n")),
    Case("py-env", "py-build", PY, ("PYBUILD_ROUNDS set to 41",), env_b={"PYBUILD_ROUNDS": "41"}),
    Case("py-sde", "py-build", PY, ("SOURCE_DATE_EPOCH unset",), prepare=_PY_EPOCH,
         env_a={"SOURCE_DATE_EPOCH": "1700000000"}, env_b={"SOURCE_DATE_EPOCH": None}),
]  # fmt: skip


WRAPPER_C = r"""
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argc;
    pid_t pid = fork();
    if (pid == 0) { argv[0] = "cc"; execv("REAL", argv); _exit(127); }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
"""


def _env(case_dir: Path, changes: dict[str, str | None]) -> dict[str, str]:
    env = dict(os.environ)
    for k, v in changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v.replace("{case}", str(case_dir))
    return env


def _setup_case_dir(case_dir: Path) -> None:
    # Another `cc` on PATH (a wrapper that runs the real one as its child, as ccache does),
    # a stand-in protoc, and a header outside every workspace.
    (case_dir / "bin").mkdir(parents=True)
    wrapper_c = case_dir / "bin" / "cc-wrapper.c"
    wrapper_c.write_text(WRAPPER_C.replace("REAL", os.path.realpath(shutil.which("cc") or "cc")))
    subprocess.run(["cc", "-o", case_dir / "bin" / "cc", wrapper_c], check=True)
    (case_dir / "tools").mkdir()
    protoc = case_dir / "tools" / "protoc"
    protoc.write_text("#!/bin/sh\necho libprotoc 3.21.12\n")
    protoc.chmod(0o755)
    (case_dir / "ext").mkdir()
    (case_dir / "ext" / "ext.h").write_text("#define EXT 1\n")
    (case_dir / "wrap").mkdir()
    wrap = case_dir / "wrap" / "cc"
    wrap.write_text(
        f'#!/bin/sh\nexec {os.path.realpath(shutil.which("cc") or "cc")} -fno-inline "$@"\n'
    )
    wrap.chmod(0o755)
    (case_dir / "empty").mkdir()


def record_pair(case: Case, case_dir: Path, same_path: bool = False) -> tuple[Path, Path]:
    """Record A, then B; ``same_path``: B rebuilds a fresh copy where A was built."""
    _setup_case_dir(case_dir)
    tapes = []
    for side in ("a", "b"):
        ws = case_dir / ("a" if same_path or side == "a" else case.dir_b) / case.fixture
        shutil.rmtree(ws, ignore_errors=True)
        shutil.copytree(
            FIXTURES / case.fixture, ws, ignore=shutil.ignore_patterns("*.o", "app", "out", "build")
        )
        case.prepare(ws)
        if side == "b":
            case.seed(ws)
        argv = case.argv_b if side == "b" and case.argv_b else case.argv
        env = _env(case_dir, case.env_b if side == "b" else case.env_a)
        tape = case_dir / f"{side}.tape"
        out = buildtape("record", "-q", "-o", tape, "--", *argv, cwd=ws, env=env, timeout=300)
        assert tape.exists(), out.stderr.decode()
        tapes.append(tape)
        if side == "a" and case.between is not None:
            case.between(case_dir)
    return tapes[0], tapes[1]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_likely_cause_names_the_seeded_cause(case: Case, tmp_path: Path) -> None:
    a, b = record_pair(case, tmp_path / "case")
    out = buildtape("diff", a, b)
    assert out.returncode == 1, out.stdout.decode() + out.stderr.decode()
    lines = out.stdout.decode().splitlines()
    assert lines[0] == "verdict: different"
    cause = lines[1]
    assert cause.startswith("likely cause: ")
    for word in case.expect:
        assert word in cause, out.stdout.decode()
    for word in case.absent:
        assert word not in cause, out.stdout.decode()
    if "nondeterministic" not in case.expect:
        assert "nondeterministic" not in cause


@pytest.mark.parametrize(
    ("fixture", "argv", "same_path"),
    [
        # gcc -g orders its debug strings by a hash of the build path: one checkout, rebuilt.
        ("c-make", ("make", "-j2", "CFLAGS=-O2 -g"), True),
        # Two checkouts: CMake writes the workspace path into its cache and build files.
        ("cmake-ninja", CMAKE, False),
        ("py-build", PY, False),
    ],
    ids=["make-g", "cmake-ninja", "python"],
)
def test_two_recordings_of_one_build_are_equivalent(
    fixture: str, argv: tuple[str, ...], same_path: bool, tmp_path: Path
) -> None:
    case = Case("same", fixture, argv, ())
    a, b = record_pair(case, tmp_path / "case", same_path)
    out = buildtape("diff", a, b)
    assert out.stdout.decode().startswith("verdict: equivalent"), out.stdout.decode()
    assert out.returncode == 0
    report = json.loads(buildtape("diff", "--format", "json", a, b).stdout)
    assert report["equivalent"] and report["cause"] is None


@pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed")
def test_two_go_builds_are_equivalent(tmp_path: Path) -> None:
    # A build outside the recordings warms the build cache: both then do the same work.
    tapes = []
    for side in ("w", "a", "b"):
        ws = tmp_path / side / "hello"
        ws.mkdir(parents=True)
        (ws / "go.mod").write_text("module example.com/hello\n\ngo 1.19\n")
        (ws / "main.go").write_text(
            'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello") }\n'
        )
        env = {**os.environ, "GOFLAGS": "-trimpath", "GOTOOLCHAIN": "local"}
        if side == "w":
            subprocess.run(["go", "build", "-o", "hello", "."], cwd=ws, env=env, check=True)
            continue
        tape = tmp_path / f"{side}.tape"
        buildtape("record", "-q", "-o", tape, "--", "go", "build", "-o", "hello", ".",
                  cwd=ws, env=env, check=True, timeout=300)  # fmt: skip
        tapes.append(tape)
    out = buildtape("diff", *tapes)
    assert out.returncode == 0, out.stdout.decode()


@pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed")
def test_a_go_source_change_is_named_without_build_ids(tmp_path: Path) -> None:
    # Every step below an edited Go file gets other -buildid hashes: those are no flags
    # worth a "then step …" note, the edited file is the whole story.
    env = {**os.environ, "GOFLAGS": "-trimpath", "GOTOOLCHAIN": "local"}
    tapes = []
    for side in ("w", "a", "b"):
        ws = tmp_path / side / "go-tiny"
        shutil.copytree(FIXTURES / "go-tiny", ws)
        if side == "b":
            with (ws / "main.go").open("a") as f:
                f.write("\nfunc probeSeed() int { return 42 }\n")
        if side == "w":  # warms the build cache, so both recordings do the same work
            subprocess.run(["go", "build", "-o", "hello", "."], cwd=ws, env=env, check=True)
            continue
        tape = tmp_path / f"{side}.tape"
        buildtape("record", "-q", "-o", tape, "--", "go", "build", "-o", "hello", ".",
                  cwd=ws, env=env, check=True, timeout=300)  # fmt: skip
        tapes.append(tape)
    out = buildtape("diff", *tapes)
    lines = out.stdout.decode().splitlines()
    assert lines[1] == "likely cause: main.go changed", out.stdout.decode()
    report = json.loads(buildtape("diff", "--format", "json", *tapes).stdout)
    assert report["causes"] == ["main.go changed"]
