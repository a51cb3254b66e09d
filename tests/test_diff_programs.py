"""diff matches steps by what their program is, not the name it ran under.

Real recordings of the c-make fixture: one with make's default ``cc``, one whose compiler
ran under another name (a ccache-style wrapper on PATH that execs gcc-12, ``CC=gcc-12``,
or another compiler, ``CC=clang-14``). The compiles are the same steps, changed: none may
be reported as removed from one build and added in the other.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from replay.programs import program_role
from tests.conftest import buildtape, needs_strace

GCC = os.path.realpath(shutil.which("gcc-12") or shutil.which("gcc") or "gcc")
UNITS = ("main", "vec", "strbuf", "hash", "parse", "stats")


def _record(ws: Path, tape: Path, env: dict[str, str] | None = None) -> Path:
    buildtape("record", "-q", "-o", tape, "--", "make", "-j2", cwd=ws, env=env, check=True)
    return tape


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """make with its default ``cc``, in a workspace path as long as the others'."""
    root = tmp_path_factory.mktemp("direct")
    ws = root / "a" / "c-make"
    shutil.copytree(Path(__file__).parent.parent / "fixtures" / "c-make", ws)
    return _record(ws, root / "a.tape")


def _other(fixture_copy: Callable[..., Path], tmp_path: Path, env: dict[str, str]) -> Path:
    return _record(fixture_copy("c-make", "b"), tmp_path / "b.tape", {**os.environ, **env})


def _diff(a: Path, b: Path) -> tuple[str, dict[str, Any]]:
    text = buildtape("diff", a, b)
    assert text.returncode == 1, text.stdout.decode() + text.stderr.decode()
    as_json = buildtape("diff", "--format", "json", a, b)
    return text.stdout.decode(), json.loads(as_json.stdout)


def _assert_compiles_paired(
    report: dict[str, Any], internals_a: frozenset[str] = frozenset()
) -> dict[str, dict[str, Any]]:
    """Every compile and the link paired; ``internals_a``: programs a compiler driver runs
    that may have no partner (gcc's cc1 and as, when clang compiles and assembles in one)."""
    steps = report["steps"]
    only_a = [s for s in steps["only_in_a"] if not s["probe"]]
    assert {os.path.basename(s["argv"][0]) for s in only_a} <= internals_a
    assert [s for s in steps["only_in_b"] if not s["probe"]] == []
    by_identity = {c["identity"]: c for c in steps["changed"]}
    for unit in UNITS:
        assert f"cc [.] {unit}.o <{unit}.c>" in by_identity
    assert "cc [.] app" in by_identity
    return by_identity


pytestmark = needs_strace


def test_a_wrapper_on_path_that_execs_another_name_matches_the_direct_compiles(
    direct: Path, fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    wrap = tmp_path / "wrap"
    wrap.mkdir()
    # As ccache's and distcc's masquerade directories do: cc on PATH runs the real compiler.
    (wrap / "cc").write_text(f'#!/bin/sh\nexec {GCC} "$@"\n')
    (wrap / "cc").chmod(0o755)
    b = _other(fixture_copy, tmp_path, {"PATH": f"{wrap}:{os.environ['PATH']}"})
    text, report = _diff(direct, b)
    assert text.splitlines()[1] == (
        f"likely cause: cc on PATH is now {wrap}/cc (was /usr/bin/cc), which runs {GCC}"
    )
    compiles = _assert_compiles_paired(report)
    # The same executable did the work: the compiles differ only through make's PATH.
    assert compiles["cc [.] main.o <main.c>"]["role"] == "downstream"
    assert compiles["cc [.] main.o <main.c>"]["argv_diff"] == ["- cc", f"+ {GCC}"]
    assert report["outputs"] == []


def test_cc_set_to_another_name_of_the_same_compiler_is_one_step_changed(
    direct: Path, fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    name = os.path.basename(shutil.which("gcc-12") or "gcc")
    b = _other(fixture_copy, tmp_path, {"CC": name})
    text, report = _diff(direct, b)
    cause = text.splitlines()[1]
    assert cause.startswith(f"likely cause: CC set to {name} (then step #")
    assert cause.endswith(f": cc → {name})")
    compiles = _assert_compiles_paired(report)
    assert {compiles[f"cc [.] {u}.o <{u}.c>"]["role"] for u in UNITS} == {"downstream"}


@pytest.mark.skipif(shutil.which("clang-14") is None, reason="needs clang-14 (Debian clang-14)")
def test_another_compiler_is_named_as_the_compiler_that_changed(
    direct: Path, fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    b = _other(fixture_copy, tmp_path, {"CC": "clang-14"})
    text, report = _diff(direct, b)
    cause = text.splitlines()[1]
    assert cause.startswith("likely cause: CC set to clang-14 (then step #")
    assert ": cc → clang-14)" in cause
    assert "; the C compiler is now clang-14 (/usr/bin/clang-14, was cc: /usr/bin/cc)" in cause
    compiles = _assert_compiles_paired(report, frozenset({"cc1", "as", "collect2"}))
    assert {o["path"] for o in report["outputs"]} >= {f"{u}.o" for u in UNITS}
    assert compiles["cc [.] main.o <main.c>"]["changed_outputs"] == ["main.o"]


@pytest.mark.parametrize(
    ("argv", "role"),
    [
        (["cc", "-c", "x.c"], "cc"),
        (["gcc-12", "-c", "x.c"], "cc"),
        (["/usr/bin/x86_64-linux-gnu-gcc-12", "-c", "x.c"], "cc"),
        (["clang-14", "-c", "x.c"], "cc"),
        (["c99-gcc", "-c", "x.c"], "cc"),
        (["ccache", "gcc", "-c", "x.c"], "cc"),
        (["distcc", "x86_64-linux-gnu-g++-12", "-c", "x.cc"], "c++"),
        (["clang++", "-c", "x.cc"], "c++"),
        (["/usr/lib/llvm-14/bin/clang", "-cc1", "-triple"], "cc1"),
        (["cc1", "-quiet"], "sha256:0123456789abcdef"),
        (["gcc-ar-12", "rcs", "lib.a"], "sha256:0123456789abcdef"),
        (["ccache", "-s"], "sha256:0123456789abcdef"),
    ],
)
def test_program_role(argv: list[str], role: str) -> None:
    assert program_role(argv, "/usr/bin/x", "0123456789abcdef" * 4) == role
    if not role.startswith("sha256:"):
        return
    assert program_role(argv, "/usr/bin/x", None) == os.path.basename(argv[0])
