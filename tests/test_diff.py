"""buildtape diff on pairs of real recordings."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recorder.tape import open_tape
from tests.conftest import buildtape, needs_strace

pytestmark = needs_strace


def record(ws: Path, tape: Path, *argv: str, env: dict[str, str] | None = None) -> Path:
    buildtape("record", "-q", "-o", tape, "--", *argv, cwd=ws, env=env, check=True)
    return tape


@pytest.fixture
def pair(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> Callable[[Callable[[Path], None]], tuple[Path, Path]]:
    """Record c-make, then record a copy changed by ``change``."""

    def make_pair(change: Callable[[Path], None]) -> tuple[Path, Path]:
        a = record(fixture_copy("c-make", "a"), tmp_path / "a.tape", "make", "-j2")
        ws_b = fixture_copy("c-make", "b")
        change(ws_b)
        b = record(ws_b, tmp_path / "b.tape", "make", "-j2")
        return a, b

    return make_pair


def diff_json(a: Path, b: Path) -> dict[str, Any]:
    out = buildtape("diff", "--format", "json", a, b)
    assert out.returncode in (0, 1), out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def test_changed_cflag_names_the_compile_as_cause_and_the_link_downstream(pair: Any) -> None:
    def change(ws: Path) -> None:
        with (ws / "Makefile").open("a") as f:
            f.write("\nparse.o: CFLAGS += -O0\n")

    a, b = pair(change)
    out = buildtape("diff", a, b)
    assert out.returncode == 1
    text = out.stdout.decode()
    first_two = text.splitlines()[:2]
    assert first_two[0] == "verdict: different"
    assert first_two[1].startswith("likely cause: Makefile changed (then step #")
    assert first_two[1].endswith("cc [.] parse.o <parse.c>: -O0 added)")
    report = diff_json(a, b)
    roles = {c["identity"]: c["role"] for c in report["steps"]["changed"]}
    # make read the changed Makefile: it is the cause; the compile it ran is downstream.
    assert roles["make (the build command)"] == "cause"
    assert roles["cc [.] parse.o <parse.c>"] == "downstream"
    assert roles["ld [.] app"] == "downstream"
    assert {o["path"] for o in report["outputs"]} == {"parse.o", "app"}
    assert [i["path"] for i in report["inputs"]] == ["Makefile"]


def test_changed_source_names_the_file_and_its_compile(pair: Any) -> None:
    def change(ws: Path) -> None:
        src = ws / "stats.c"
        src.write_text(
            src.read_text().replace(
                "return v->len ? s / (double)v->len : 0.0;",
                "return v->len ? s / (double)v->len : -1.0;",
            )
        )

    a, b = pair(change)
    report = diff_json(a, b)
    assert not report["equivalent"]
    [changed_input] = report["inputs"]
    assert changed_input["path"] == "stats.c"
    assert any("-1.0" in line for line in changed_input["detail"])
    cause = next(c for c in report["steps"]["changed"] if c["role"] == "cause")
    assert "stats.c" in cause["argv_a"] and "stats.c" in cause["changed_inputs"]
    assert "stats.c" in report["cause"]


def test_a_compile_that_fails_is_the_cause_and_the_drivers_above_it_follow(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    """make exits 2 because its cc did, and cc because its cc1 did: neither is a
    nondeterministic step (same command and inputs), both follow from the compile."""
    a = record(fixture_copy("c-make", "a"), tmp_path / "a.tape", "make")
    ws_b = fixture_copy("c-make-failing", "b")
    out = buildtape("record", "-q", "-o", tmp_path / "b.tape", "--", "make", cwd=ws_b)
    assert out.returncode == 2, out.stderr
    report = diff_json(a, tmp_path / "b.tape")
    roles = {c["identity"]: c["role"] for c in report["steps"]["changed"]}
    assert "nondeterministic" not in roles.values(), roles
    assert roles["make (the build command)"] == "downstream"
    assert roles["cc [.] parse.o <parse.c>"] == "downstream"
    assert roles["cc1 [.] $TMP <parse.c>"] == "cause"
    assert report["cause"] == "parse.c changed"
    text = buildtape("diff", a, tmp_path / "b.tape").stdout.decode()
    assert "nondeterministic" not in text


def test_diff_of_a_build_against_itself_is_empty(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    tape = record(fixture_copy("c-make"), tmp_path / "a.tape", "make")
    out = buildtape("diff", tape, tape)
    assert out.returncode == 0
    assert out.stdout == b"verdict: equivalent: same command, inputs, steps and outputs\n"


def test_diff_output_is_stable_across_runs_and_hash_seeds(pair: Any) -> None:
    def change(ws: Path) -> None:
        (ws / "hash.c").write_text(
            (ws / "hash.c").read_text().replace("1099511628211UL", "1099511628212UL")
        )

    a, b = pair(change)
    outputs = set()
    for seed in ("0", "1", "987"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        for fmt in ("text", "json"):
            outputs.add((fmt, buildtape("diff", "--format", fmt, a, b, env=env).stdout))
    assert len(outputs) == 2


@pytest.mark.skipif(shutil.which("meson") is None, reason="needs meson (Debian meson)")
def test_two_meson_builds_are_equivalent(fixture_copy: Callable[..., Path], tmp_path: Path) -> None:
    # meson runs each compiler check in build/meson-private/tmpXXXXXXXX and pickles random
    # GUIDs into its private state: neither is a difference between the two builds.
    # Rebuilt in one place from a clean tree: meson builds with -g, which embeds the path.
    ws = fixture_copy("meson-tiny")
    a = record(ws, tmp_path / "a.tape", "sh", "build.sh")
    shutil.rmtree(ws / "build")
    b = record(ws, tmp_path / "b.tape", "sh", "build.sh")
    with open_tape(a) as ta:
        checks = [p for p in ta.manifest.processes if "meson-private/tmp" in " ".join(p.argv)]
    assert checks  # the compiler checks ran, each in its own temp directory
    out = buildtape("diff", a, b)
    assert out.returncode == 0, out.stdout.decode()
    assert out.stdout == b"verdict: equivalent: same command, inputs, steps and outputs\n"


def test_nondeterministic_step_is_named(fixture_copy: Callable[..., Path], tmp_path: Path) -> None:
    a = record(fixture_copy("nondeterministic", "a"), tmp_path / "a.tape", "make")
    b = record(fixture_copy("nondeterministic", "b"), tmp_path / "b.tape", "make")
    report = diff_json(a, b)
    assert report["cause"].startswith(
        "nondeterministic: same command and inputs, different outputs"
    )
    [step] = report["steps"]["changed"]
    assert step["role"] == "nondeterministic" and step["changed_outputs"] == ["out/stamp.txt"]
    assert [o["path"] for o in report["outputs"]] == ["out/stamp.txt"]


def test_archive_outputs_are_compared_by_member(tmp_path: Path) -> None:
    script = (
        "import os, zipfile\n"
        "with zipfile.ZipFile('out.whl', 'w') as z:\n"
        "    z.writestr('pkg/__init__.py', 'VERSION = %r\\n' % os.environ['V'])\n"
        "    z.writestr('pkg/data.txt', 'same\\n')\n"
    )
    tapes = []
    for v in ("1.0", "1.1"):
        ws = tmp_path / v
        ws.mkdir()
        (ws / "mk.py").write_text(script)
        tapes.append(
            record(ws, tmp_path / f"{v}.tape", sys.executable, "mk.py", env={**os.environ, "V": v})
        )
    report = diff_json(*tapes)
    [whl] = [o for o in report["outputs"] if o["path"] == "out.whl"]
    assert whl["detail"][0] == "member changed: pkg/__init__.py"
    assert "-VERSION = '1.0'" in whl["detail"] and "+VERSION = '1.1'" in whl["detail"]
    assert not any("data.txt" in line for line in whl["detail"])


def test_redacted_values_are_compared_by_digest_never_shown(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    tapes = []
    for name, token in (
        ("a", "first-secret-value-1"),
        ("b", "second-secret-value-2"),
        ("c", "second-secret-value-2"),
    ):
        env = {**os.environ, "DEPLOY_TOKEN": token}
        tapes.append(
            record(
                fixture_copy("nondeterministic", name), tmp_path / f"{name}.tape", "true", env=env
            )
        )
    changed = diff_json(tapes[0], tapes[1])["environment"]["changed"]
    assert {"name": "DEPLOY_TOKEN", "a": "[REDACTED]", "b": "[REDACTED]", "secret": True} in changed
    text = buildtape("diff", tapes[0], tapes[1]).stdout.decode()
    assert "DEPLOY_TOKEN: secret value changed (compared by digest, not shown)" in text
    assert "secret-value" not in text
    same = diff_json(tapes[1], tapes[2])["environment"]["changed"]
    assert not any(c["name"] == "DEPLOY_TOKEN" for c in same)


@pytest.mark.skipif(
    shutil.which("diffoscope") is None,
    reason="diffoscope is not installed (CI installs diffoscope-minimal)",
)
def test_deep_hands_differing_outputs_to_diffoscope(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    a = record(fixture_copy("nondeterministic", "a"), tmp_path / "a.tape", "make")
    b = record(fixture_copy("nondeterministic", "b"), tmp_path / "b.tape", "make")
    first = buildtape("diff", "--deep", a, b).stdout
    assert b"diffoscope:" in first and b"a/stamp.txt" in first and b"b/stamp.txt" in first
    assert buildtape("diff", "--deep", a, b).stdout == first
