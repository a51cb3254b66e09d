"""Differential flamegraphs of two tapes match frames by what each process is (its program
and role, flame/frame_key.py), not by every argument: two builds that differ in flags
draw the same frames, slower or faster. Real builds through the real CLI."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest

from flame.frame_key import frame_key
from recorder.model import Process
from tests.conftest import FIXTURES, buildtape


def _proc(*argv: str) -> Process:
    return Process(1, 10, None, list(argv), argv[0], "/ws", 0.0, 1.0, 0, None)


@pytest.mark.parametrize(
    ("a", "b", "key"),
    [
        (("make", "CFLAGS=-O0"), ("make", "CFLAGS=-O2 -g", "-j8"), "make"),
        (("make", "-C", "/ws/lib", "all"), ("make", "-j", "4", "-C/ws/lib", "all"), "make -C lib all"),
        (("ninja", "-C", "build", "-j", "2"), ("ninja", "-C", "build"), "ninja -C build"),
        (
            ("cc", "-O0", "-Wall", "-c", "/ws/src/main.c", "-o", "main.o"),
            ("/usr/bin/cc", "-O2", "-DNDEBUG", "-I.", "-c", "src/main.c", "-o", "main.o"),
            "cc -c src/main.c",
        ),
        (("gcc", "-O0", "-o", "app", "a.o", "-lm"), ("gcc", "-O3", "-flto", "-o", "app", "a.o"), "gcc -o app"),
        (("sh", "-c", "cc -O0 -c a.c"), ("sh", "-c", "cc -O2 -g -c a.c"), "sh -c cc -c a.c"),
        (("python3", "step.py", "--fast", "compile"), ("python3", "-u", "step.py", "compile"), "python3 step.py compile"),
        (("/usr/lib/gcc/x86_64-linux-gnu/12/cc1", "-O0"), ("cc1", "-O2", "-quiet"), "cc1"),
        (("env", "CFLAGS=-O0", "make"), ("env", "CFLAGS=-O2", "make"), "env make"),
    ],
)  # fmt: skip
def test_frame_key_is_the_program_and_its_role(
    a: tuple[str, ...], b: tuple[str, ...], key: str
) -> None:
    assert frame_key(_proc(*a), "/ws") == frame_key(_proc(*b), "/ws") == key


def test_frame_key_keeps_what_a_step_is() -> None:
    assert frame_key(_proc("cc", "-c", "a.c")) != frame_key(_proc("cc", "-c", "b.c"))
    assert frame_key(_proc("make", "install")) != frame_key(_proc("make", "check"))
    assert frame_key(_proc("python3", "step.py", "link")) != frame_key(
        _proc("python3", "step.py", "compile")
    )
    key = frame_key(_proc("sh", "-c", "a;\nb " + "x" * 200))
    assert ";" not in key and "\n" not in key and len(key) <= 60


def _record(src: str, into: Path, *command: str, env: dict[str, str] | None = None) -> Path:
    ws = into / "ws"
    shutil.copytree(FIXTURES / src, ws, ignore=shutil.ignore_patterns("*.o", "app"))
    tape = into / "build.tape"
    buildtape("record", "-o", tape, "--", *command, cwd=ws, env=env, check=True)
    return tape


def _folded_diff(a: Path, b: Path, out: Path) -> dict[str, tuple[int, int]]:
    buildtape("flame", "--diff", a, b, "-o", out, check=True)
    pairs = {}
    for line in out.read_text().splitlines():
        stack, base, new = line.rsplit(" ", 2)
        pairs[stack] = (int(base), int(new))
    return pairs


def _svg_titles(a: Path, b: Path, out: Path) -> dict[str, str]:
    buildtape("flame", "--no-js", "--diff", a, b, "-o", out, check=True)
    titles = [html.unescape(t) for t in re.findall(r"<title>([^<]*)</title>", out.read_text())]
    return {t.split(" (")[0]: t for t in titles if " (" in t}


def test_two_builds_with_different_cflags_match_frame_for_frame(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _record("c-make", tmp_path / "a", "make", "CFLAGS=-O0")
    b = _record("c-make", tmp_path / "b", "make", "CFLAGS=-O2 -g")
    pairs = _folded_diff(a, b, tmp_path / "diff.folded")
    compiles = [f"make;cc -c {n}.c" for n in ("main", "vec", "strbuf", "hash", "parse", "stats")]
    for stack in ("make", *compiles, "make;cc -o app"):
        base, new = pairs[stack]
        assert base > 0 and new > 0, (stack, base, new)
    # No process frame is only in one build: every stack has weight on both sides.
    one_sided = {s: w for s, w in pairs.items() if 0 in w and not s.endswith(("as", "ld"))}
    assert one_sided == {}
    titles = _svg_titles(a, b, tmp_path / "diff.svg")
    for name in ("make", "cc -c main.c", "cc -c parse.c", "cc -o app"):
        assert ", base " in titles[name], titles[name]
        assert "(new)" not in titles[name] and "only in base" not in titles[name]


def test_a_slower_step_is_drawn_slower_not_added(tmp_path: Path) -> None:
    import os

    (tmp_path / "fast").mkdir()
    (tmp_path / "slow").mkdir()
    env = dict(os.environ)
    fast = _record("timed-steps", tmp_path / "fast", "make", "SPEED=fast",
                   env=env | {"STEP_COMPILE_S": "0.05", "STEP_LINK_S": "0.05"})  # fmt: skip
    slow = _record("timed-steps", tmp_path / "slow", "make", "SPEED=slow",
                   env=env | {"STEP_COMPILE_S": "1.5", "STEP_LINK_S": "0.05"})  # fmt: skip
    pairs = _folded_diff(fast, slow, tmp_path / "diff.folded")

    def total(frame: str) -> tuple[int, int]:
        # The frame's own weight and that of its Python stacks (the sampler's, when on).
        inside = [w for s, w in pairs.items() if s == frame or s.startswith(frame + ";")]
        return sum(w[0] for w in inside), sum(w[1] for w in inside)

    base, new = total("make;python3 step.py compile")
    assert 0 < base < new
    assert 0 not in total("make;python3 step.py link")
    title = _svg_titles(fast, slow, tmp_path / "diff.svg")["python3 step.py compile"]
    assert re.search(r", base \d+, \+\d+ \(\+[\d.]+%\)\)$", title), title
    # And the other way round, the same step is faster.
    back = _svg_titles(slow, fast, tmp_path / "back.svg")["python3 step.py compile"]
    assert re.search(r", base \d+, -\d+ \(-[\d.]+%\)\)$", back), back
