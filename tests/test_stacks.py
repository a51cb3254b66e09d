"""Timed Python stacks in recordings, and build steps marked with buildtape.step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import buildtape, needs_strace


def folded_of(tape: Path) -> list[tuple[list[str], int]]:
    out = buildtape("flame", tape, "--format", "folded", check=True).stdout.decode()
    stacks = []
    for line in out.splitlines():
        stack, count = line.rsplit(" ", 1)
        stacks.append((stack.split(";"), int(count)))
    return stacks


def function_weights(stacks: list[tuple[list[str], int]], under: str) -> dict[str, int]:
    """Total weight per Python function (any line) below the frame ``under``."""
    weights: dict[str, int] = {}
    for stack, count in stacks:
        if under not in stack:
            continue
        for frame in set(stack[stack.index(under) + 1 :]):
            name = frame.split(" (", 1)[0]
            weights[name] = weights.get(name, 0) + count
    return weights


@pytest.mark.parametrize(
    "sampler",
    [pytest.param("py-spy", marks=needs_strace), "pyinstrument", "thread"],
)
def test_python_build_hot_function_under_its_process(
    fixture_copy: Callable[..., Path], tmp_path: Path, sampler: str
) -> None:
    # Long enough (~1.5 s) that a sampler attaching ~100 ms late still sees the hot loop.
    env = {**os.environ, "PYBUILD_ROUNDS": "150"}
    plain = subprocess.run(
        ["make"], cwd=fixture_copy("py-build", "plain"), capture_output=True, env=env
    )
    ws = fixture_copy("py-build", "recorded")
    tape = tmp_path / "py.tape"
    trace = [] if sampler == "py-spy" else ["--trace", "proc"]
    rec = buildtape(
        "record", "-q", *trace, "--stacks", sampler, "-o", tape, "--", "make", cwd=ws, env=env
    )
    assert rec.returncode == plain.returncode == 0
    assert rec.stdout == plain.stdout and rec.stderr == plain.stderr
    view = json.loads(buildtape("show", "--json", tape, check=True).stdout)
    assert view["sampling"]["sampler"] == sampler and view["sampling"]["count"] > 0
    stacks = folded_of(tape)
    python = [s for s, _ in stacks if len(s) > 2 and s[:2] == ["make", "python3 build.py"]]
    assert python, stacks
    assert any(any(f.startswith("crunch_tokens (build.py:") for f in s) for s in python)
    weights = function_weights(stacks, "python3 build.py")
    sampled = weights.get("<module>", 0)
    assert sampled > 0
    assert weights["crunch_tokens"] > 0.5 * sampled, weights


@pytest.mark.parametrize("sampler", ["pyinstrument", "thread"])
def test_injected_sampler_keeps_the_builds_own_sitecustomize(
    fixture_copy: Callable[..., Path], tmp_path: Path, sampler: str
) -> None:
    ws = fixture_copy("py-build")
    site = tmp_path / "site"
    site.mkdir()
    # Records which program ran it: the recorder's own interpreter sees this PYTHONPATH too.
    (site / "sitecustomize.py").write_text(
        "import os\n"
        "cmd = open('/proc/self/cmdline', 'rb').read().split(b'\\0')\n"
        "if cmd[1:2] == [b'build.py']:\n"
        "    open(os.environ['MARKER'], 'a').write('ran\\n')\n"
    )
    marker = tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": str(site), "MARKER": str(marker)}
    tape = tmp_path / "s.tape"
    rec = buildtape(
        "record", "-q", "--trace", "proc", "--stacks", sampler, "-o", tape, "--",
        sys.executable, "build.py", cwd=ws, env=env,
    )  # fmt: skip
    assert rec.returncode == 0, rec.stderr
    assert rec.stdout == b"indexed 4 files, 40 rounds\n"
    assert marker.read_text() == "ran\n"  # the build's sitecustomize ran, once
    # ...and buildtape's profiler ran too.
    assert any(f.startswith("crunch_tokens (") for s, _ in folded_of(tape) for f in s)


STEP_SCRIPT = """
import time, buildtape

@buildtape.step("link")
def link():
    time.sleep(0.15)

with buildtape.step("compile"):
    with buildtape.step("parse"):
        time.sleep(0.1)
    time.sleep(0.05)
link()
buildtape.metric("objects", 6, unit="files")
print("done")
"""


@pytest.mark.parametrize("trace", [pytest.param("strace", marks=needs_strace), "proc"])
def test_steps_nest_and_appear_in_the_flamegraph(tmp_path: Path, trace: str) -> None:
    script = tmp_path / "steps.py"
    script.write_text(STEP_SCRIPT)
    tape = tmp_path / "steps.tape"
    rec = buildtape(
        "record", "-q", "--trace", trace, "--stacks", "none", "-o", tape, "--",
        sys.executable, str(script), cwd=tmp_path,
    )  # fmt: skip
    assert rec.returncode == 0 and rec.stdout == b"done\n", rec.stderr
    view = json.loads(buildtape("show", "--json", tape, check=True).stdout)
    spans = {e["name"]: e for e in view["events"] if e["kind"] == "span"}
    assert set(spans) == {"compile", "parse", "link"}
    assert spans["parse"]["parent"] == "compile" and "parent" not in spans["compile"]
    assert spans["compile"]["start_s"] <= spans["parse"]["start_s"]
    assert spans["parse"]["end_s"] <= spans["compile"]["end_s"] <= spans["link"]["start_s"]
    assert view["metrics"] == [{"name": "objects", "value": 6.0, "unit": "files"}]
    text = buildtape("show", tape, check=True).stdout.decode()
    assert "objects = 6 files" in text
    stacks = {tuple(s[1:]): w for s, w in folded_of(tape)}
    assert ("[step] compile", "[step] parse") in stacks
    assert ("[step] link",) in stacks
    # Folded counts are milliseconds of each span's own time, as long as the tape says it
    # lasted: at least its sleep (parse 100 ms, link 150 ms); how much longer is the machine's.
    parse, link = stacks[("[step] compile", "[step] parse")], stacks[("[step] link",)]
    for name, weight in (("parse", parse), ("link", link)):
        lasted_ms = 1000 * (spans[name]["end_s"] - spans[name]["start_s"])
        assert weight == pytest.approx(lasted_ms, abs=1), (name, weight, lasted_ms)
    assert parse >= 99 and link >= 149


def test_step_outside_a_recording_is_a_no_op(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BUILDTAPE_EVENTS"}
    code = (
        "import buildtape\n"
        "with buildtape.step('x'):\n    pass\n"
        "@buildtape.step('y')\ndef f():\n    return 42\n"
        "assert f() == 42\n"
        "buildtape.metric('m', 1)\nbuildtape.event('e', a=1)\nprint('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True)
    assert out.returncode == 0 and out.stdout == b"ok\n" and out.stderr == b""
    assert list(tmp_path.iterdir()) == []


def test_step_records_errors_and_reraises(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.touch()  # the recorder creates it; steps only append
    env = {**os.environ, "BUILDTAPE_EVENTS": str(events)}
    code = (
        "import buildtape\n"
        "try:\n    with buildtape.step('boom'):\n        raise ValueError('x')\n"
        "except ValueError:\n    print('reraised')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
    assert out.stdout == b"reraised\n"
    [record] = [json.loads(line) for line in events.read_text().splitlines()]
    assert record["kind"] == "span" and record["name"] == "boom" and record["error"] == "ValueError"
    assert record["end"] >= record["start"] and record["pid"] > 0


FORK_AND_EXEC = """
import os, sys
child = os.fork()
if child == 0:
    sum(i * i for i in range(200000))
    sys.exit(0)  # runs the atexit handlers it inherited
os.waitpid(child, 0)
sum(i * i for i in range(2000000))
os.execv("/bin/sh", ["sh", "-c", "exit 7"])
"""


@pytest.mark.parametrize("sampler", ["pyinstrument", "thread"])
def test_injected_sampler_survives_fork_and_exec(tmp_path: Path, sampler: str) -> None:
    """A forked child must not write its parent's samples, and a process that execs a
    non-Python program must carry nothing into it: the build's status stays its own."""
    tape = tmp_path / "f.tape"
    rec = buildtape("record", "-q", "--trace", "proc", "--stacks", sampler, "-o", tape, "--",
                    sys.executable, "-c", FORK_AND_EXEC, cwd=tmp_path)  # fmt: skip
    assert rec.returncode == 7, rec.stderr
    assert rec.stderr == b""
    view = json.loads(buildtape("show", "--json", tape, check=True).stdout)
    assert view["sampling"]["sampler"] == sampler
    # The parent's samples were written before it exec'd sh: its loop is in the tape.
    assert any(f.startswith("<genexpr> (") for s, _ in folded_of(tape) for f in s)
