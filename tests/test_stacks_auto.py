"""``--stacks auto`` where py-spy cannot run falls back to the injected sampling thread.

pyinstrument costs call-heavy code about 2x (a callback on every call and return), the
sampling thread about nothing, so ``auto`` never picks pyinstrument; it stays selectable
by name. These are real recordings of the py-build fixture (make -> python3 build.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from recorder.sampling import PyinstrumentSampler, ThreadSampler, choose_sampler
from tests.conftest import buildtape, needs_strace


def without_py_spy(path: str) -> str:
    """``path`` with every directory that holds a ``py-spy`` left out."""
    dirs = [
        d for d in path.split(os.pathsep) if d and not os.path.exists(os.path.join(d, "py-spy"))
    ]
    return os.pathsep.join(dirs)


def record_py_build(
    ws: Path, tape: Path, *options: str, env: dict[str, str] | None = None
) -> dict[str, object]:
    env = {**(env or os.environ), "PYBUILD_ROUNDS": "60"}
    rec = buildtape("record", *options, "-o", tape, "--", "make", cwd=ws, env=env)
    assert rec.returncode == 0, rec.stderr
    view: dict[str, object] = json.loads(buildtape("show", "--json", tape, check=True).stdout)
    return view


def sampled_functions(tape: Path) -> set[str]:
    out = buildtape("flame", tape, "--format", "folded", check=True).stdout.decode()
    return {
        f.split(" (", 1)[0] for line in out.splitlines() for f in line.rsplit(" ", 1)[0].split(";")
    }


@pytest.mark.parametrize(
    ("trace", "hide_py_spy", "why"),
    [
        # --trace proc: no tracer that could let py-spy in (ptrace is taken as not allowed).
        ("proc", False, "py-spy cannot use ptrace here"),
        pytest.param("strace", True, "py-spy is not installed", marks=needs_strace),
    ],
)
def test_auto_without_py_spy_uses_the_sampling_thread(
    fixture_copy: Callable[..., Path], tmp_path: Path, trace: str, hide_py_spy: bool, why: str
) -> None:
    env = dict(os.environ)
    if hide_py_spy:
        env["PATH"] = without_py_spy(env["PATH"])
    tape = tmp_path / "auto.tape"
    view = record_py_build(
        fixture_copy("py-build"), tape, "--trace", trace, "--stacks", "auto", env=env
    )
    sampling = view["sampling"]
    assert isinstance(sampling, dict)
    assert sampling["sampler"] == "thread" and sampling["count"] > 0
    assert sampling["notice"] == f"{why}: using the sampling thread"
    assert "crunch_tokens" in sampled_functions(tape)
    text = buildtape("show", tape, check=True).stdout.decode()
    assert "stacks    thread at 100 Hz" in text and why in text


def test_auto_where_ptrace_is_not_permitted_picks_the_thread(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # The recorder's answer to "may a sampler attach?" (Yama, the tracer) given directly.
    sampler, notice = choose_sampler("auto", False, os.environ, tmp_path / "a", 100, 0.0)
    assert isinstance(sampler, ThreadSampler)
    assert notice == "py-spy cannot use ptrace here: using the sampling thread"
    named, none = choose_sampler("pyinstrument", False, os.environ, tmp_path / "b", 100, 0.0)
    assert isinstance(named, PyinstrumentSampler) and none is None


def test_pyinstrument_is_still_chosen_by_name(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    tape = tmp_path / "pyi.tape"
    view = record_py_build(
        fixture_copy("py-build"), tape, "--trace", "proc", "--stacks", "pyinstrument"
    )
    sampling = view["sampling"]
    assert isinstance(sampling, dict)
    assert sampling["sampler"] == "pyinstrument" and sampling["count"] > 0
    assert sampling.get("notice") is None
    assert "crunch_tokens" in sampled_functions(tape)
