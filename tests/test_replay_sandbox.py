"""Replays of real builds in the bubblewrap sandbox, and in the no-namespace fallback.

The fixtures are recorded once per module: a build with ``-g`` that writes through
absolute paths and /tmp (c-debug), a CMake + Ninja project with a configured header and -g (cmake-debug), and an
autotools-style build whose generated files must look newer than their sources (autogen).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from recorder.tape import open_tape
from tests.conftest import FIXTURES, buildtape, needs_strace


def bwrap_usable() -> bool:
    if shutil.which("bwrap") is None:
        return False
    probe = subprocess.run(
        ["bwrap", "--unshare-user", "--ro-bind", "/", "/", "true"], capture_output=True
    )
    return probe.returncode == 0


needs_bwrap = pytest.mark.skipif(not bwrap_usable(), reason="bwrap cannot create namespaces here")
needs_cmake = pytest.mark.skipif(
    shutil.which("cmake") is None or shutil.which("ninja") is None, reason="cmake/ninja missing"
)
pytestmark = [needs_strace, needs_bwrap]
DIRECTORY = {**os.environ, "BUILDTAPE_SANDBOX": "directory"}


def tree_hash(root: Path) -> str:
    """Names, contents, modes and mtimes of everything under ``root``."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        h.update(f"{path.relative_to(root)} {st.st_mode} {st.st_mtime_ns}".encode())
        if path.is_file() and not path.is_symlink():
            h.update(path.read_bytes())
    return h.hexdigest()


@dataclass
class Recorded:
    tape: Path
    ws: Path
    note: Path | None = None

    def steps(self) -> list[dict[str, Any]]:
        out = buildtape("ps", "--json", self.tape, check=True).stdout
        rows: list[dict[str, Any]] = json.loads(out)
        return rows

    def manifest(self) -> dict[str, Any]:
        out = buildtape("show", "--json", self.tape, check=True).stdout
        shown: dict[str, Any] = json.loads(out)
        return shown


def _record(
    root: Path, name: str, *argv: str, prepare: Any = None, options: tuple[str, ...] = ()
) -> Recorded:
    ws = root / name
    shutil.copytree(FIXTURES / name, ws)
    if prepare:
        prepare(ws)
    tape = root / f"{name}.tape"
    buildtape("record", "-q", "-o", tape, *options, "--", *argv, cwd=ws, check=True, timeout=300)
    return Recorded(tape, ws)


def _links_unseen(rec: Recorded, dst: Path) -> tuple[Path, tuple[str, ...]]:
    """``rec``'s tape with no process writing the links the build made, as tapes were before
    the tracers saw symlink(2) and link(2), and as a static program's links are where strace
    cannot trace it; with the options a replay of it needs (it was not recorded here)."""
    from tests.conftest import rewrite

    def forget(m: dict[str, Any]) -> None:
        links = {e["path"] for e in m["outputs"] if e.get("link") is not None}
        assert links, "the build made no link"
        unseen = {i for i, path in enumerate(m["paths"]) if path in links}
        for proc in m["processes"]:
            proc["writes"] = [i for i in proc["writes"] if i not in unseen]

    return rewrite(rec.tape, dst, forget), ("--yes",)


def _libtool_links(tmp_path: Path, seen: bool) -> tuple[Recorded, Path, tuple[str, ...]]:
    """The libtool-links build, with its links seen being made (both tracers see them) or
    not (a crafted tape)."""
    rec = _record(tmp_path, "libtool-links", "make")
    if seen:
        return rec, rec.tape, ()
    tape, options = _links_unseen(rec, tmp_path / "unseen.tape")
    return rec, tape, options


@pytest.fixture(scope="module")
def c_debug(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    root = tmp_path_factory.mktemp("cdebug")
    note = Path(f"/tmp/buildtape-test-note-{os.getpid()}-{root.name}")
    rec = _record(root, "c-debug", "make", f"NOTE={note}")
    rec.note = note
    assert not note.exists()  # the build removed its scratch file
    return rec


def _autogen_times(ws: Path) -> None:
    # Sources older than what is generated from them, as in a release tarball.
    for name in ("configure.ac", "config.h.in", "table.def", "mktable.c", "main.c", "shape.c"):
        os.utime(ws / name, (1_600_000_000, 1_600_000_000))
    os.utime(ws / "configure", (1_610_000_000, 1_610_000_000))


@pytest.fixture(scope="module")
def autogen(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    return _record(tmp_path_factory.mktemp("autogen"), "autogen", "make", prepare=_autogen_times)


def test_an_archive_step_starts_without_the_archive_an_earlier_step_removed(
    tmp_path: Path,
) -> None:
    # A rebuild: the stale libshape.a from the first build is in the workspace; the build
    # removes it (rm -f), then `ar cq` creates it afresh. Replayed alone, `ar cq` must not
    # find the old (or the final) archive, or it would append to it.
    ws = tmp_path / "autogen"
    shutil.copytree(FIXTURES / "autogen", ws)
    _autogen_times(ws)
    subprocess.run(["make"], cwd=ws, check=True, capture_output=True)
    os.utime(ws / "shape.c")  # now: newer than shape.o, so the archive is rebuilt
    tape = tmp_path / "rebuild.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", cwd=ws, check=True)
    rows = Recorded(tape, ws).steps()
    ar = next(r for r in rows if r["argv"][:2] == ["ar", "cq"])
    assert any(r["argv"][:2] == ["rm", "-f"] for r in rows)
    verdict = replay_json(tape, "--step", ar["id"])
    assert verdict["reproduced"], verdict
    assert [o["path"] for o in verdict["outputs"]] == ["libshape.a"]


@pytest.fixture(scope="module")
def cmake_debug(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    return _record(tmp_path_factory.mktemp("cmake"), "cmake-debug", "sh", "build.sh")


def has_mtimes(tape: Path) -> bool:
    with open_tape(tape) as t:
        return any(e.mtime_ns is not None for e in t.manifest.inputs)


def replay(*args: Any, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out = buildtape("replay", *args, env=env, timeout=300)
    return out.returncode, out.stdout.decode(), out.stderr.decode()


def replay_json(*args: Any, env: dict[str, str] | None = None) -> dict[str, Any]:
    code, text, err = replay(*args, "--json", env=env)
    verdict: dict[str, Any] = json.loads(text)
    assert (code == 0) == verdict["reproduced"], err
    return verdict


TOOLS = ("cc", "gcc", "ar", "/usr/bin/cc", "/usr/bin/ar")


def build_steps(rec: Recorded) -> list[dict[str, Any]]:
    """Every compile, link and archive step whose output the build kept."""
    kept = {e["path"] for e in rec.manifest()["outputs"] if e.get("change") != "deleted"}
    rows = rec.steps()
    by_id = {r["id"]: r for r in rows}
    out = []
    for r in rows:
        if (
            r["argv"][:1]
            and r["argv"][0] in TOOLS
            and by_id.get(r["parent_id"], {}).get("argv", [""])[0] not in TOOLS
        ):
            target = r["argv"][r["argv"].index("-o") + 1] if "-o" in r["argv"] else None
            if target is None and r["argv"][0].endswith("ar"):
                target = r["argv"][2]
            rel = os.path.relpath(os.path.join(r["cwd"], target or "?"), rec.ws)
            if rel in kept:
                out.append(r)
    return out


@contextlib.contextmanager
def moved_away(ws: Path) -> Iterator[Path]:
    """The checkout moved elsewhere for the duration (and put back after)."""
    away = ws.with_name(ws.name + "-moved")
    ws.rename(away)
    try:
        yield away
    finally:
        assert not ws.exists(), f"something appeared at the old path {ws}"
        away.rename(ws)


@pytest.mark.parametrize(
    "name", ["c_debug", "autogen", pytest.param("cmake_debug", marks=needs_cmake)]
)
def test_whole_replay_reproduces_and_leaves_the_checkout_alone(
    name: str, request: pytest.FixtureRequest
) -> None:
    rec: Recorded = request.getfixturevalue(name)
    if name == "autogen":
        assert has_mtimes(rec.tape)  # what lets make decide as it did
    before = tree_hash(rec.ws)
    code, text, err = replay(rec.tape)
    assert code == 0, text + err
    assert "reproduced:" in text
    assert f"replay: {rec.tape.name}: the whole build at {rec.ws} (bwrap sandbox)" in err
    assert tree_hash(rec.ws) == before
    if rec.note is not None:
        assert not rec.note.exists()


@pytest.mark.parametrize(
    "name", ["c_debug", "autogen", pytest.param("cmake_debug", marks=needs_cmake)]
)
def test_every_compile_and_link_step_reproduces_with_the_checkout_moved_away(
    name: str, request: pytest.FixtureRequest
) -> None:
    rec: Recorded = request.getfixturevalue(name)
    steps = build_steps(rec)
    assert len(steps) >= 3, steps
    before = tree_hash(rec.ws)
    for step in steps[:1]:  # one with the checkout in place
        verdict = replay_json(rec.tape, "--step", step["id"])
        assert verdict["reproduced"], verdict
    with moved_away(rec.ws):
        for step in steps:
            verdict = replay_json(rec.tape, "--step", step["id"])
            assert verdict["reproduced"], (step["argv"], verdict)
            assert verdict["place"] == str(rec.ws) and verdict["isolation"] == "bwrap"
    assert tree_hash(rec.ws) == before


def test_vary_leaves_the_checkout_and_tmp_alone(c_debug: Recorded) -> None:
    before = tree_hash(c_debug.ws)
    code, text, err = replay(c_debug.tape, "--vary", "path,tz")
    assert code == 1, text + err  # -g embeds the path: varying it on purpose shows
    assert "main.o" in text and "varied path,tz" in err
    assert tree_hash(c_debug.ws) == before
    assert c_debug.note is not None and not c_debug.note.exists()


def test_path_embedding_build_in_the_fallback_is_path_dependent(c_debug: Recorded) -> None:
    verdict = replay_json(c_debug.tape, env=DIRECTORY)
    assert verdict["isolation"] == "directory"
    assert "may differ" in verdict["isolation_note"]
    reasons = {f["path"]: f["reason"] for f in verdict["findings"]}
    assert reasons.get("main.o") == "path" and reasons.get("app") == "path", reasons
    assert "nondeterministic" not in reasons.values()


def test_fallback_refuses_a_step_that_names_the_checkout(c_debug: Recorded) -> None:
    step = next(s for s in build_steps(c_debug) if str(c_debug.ws) in " ".join(s["argv"]))
    before = tree_hash(c_debug.ws)
    code, _, err = replay(c_debug.tape, "--step", step["id"], env=DIRECTORY)
    assert code != 0 and code != 1
    assert "names the recorded workspace" in err and "refusing" in err
    assert tree_hash(c_debug.ws) == before


@needs_cmake
def test_ninja_and_ctest_bookkeeping_is_an_expected_difference(cmake_debug: Recorded) -> None:
    # libpng's `ninja && ctest` diverged only on ctest's logs of times and durations.
    verdict = replay_json(cmake_debug.tape)
    expected = sorted(f["path"] for f in verdict["findings"] if f["expected"])
    assert "build/.ninja_log" in expected
    assert "build/Testing/Temporary/CTestCostData.txt" in expected
    assert all(f["expected"] for f in verdict["findings"]), verdict["findings"]


def _extract_and_run(
    tape: Path, step: int, out_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    buildtape("extract", tape, "--step", step, "-o", out_dir, check=True)
    return subprocess.run(
        ["sh", "run.sh"], cwd=out_dir, capture_output=True, env=env or {"PATH": "/usr/bin:/bin"}
    )


def test_extract_of_a_compile_that_names_its_path_runs_there(
    c_debug: Recorded, tmp_path: Path
) -> None:
    step = next(s for s in build_steps(c_debug) if "main.c" in " ".join(s["argv"]))
    with moved_away(c_debug.ws):
        run = _extract_and_run(c_debug.tape, step["id"], tmp_path / "repro")
    err = run.stderr.decode()
    assert run.returncode == 0, err
    assert f"running at the recorded path {c_debug.ws} in a bwrap sandbox" in err
    assert "exit 0, as recorded" in err and "outputs as recorded" in err
    check = subprocess.run(
        ["sha256sum", "-c", "expected.sha256"], cwd=tmp_path / "repro", capture_output=True
    )
    assert check.returncode == 0 and b"workspace/main.o: OK" in check.stdout


def test_extract_of_a_failing_step_states_and_reproduces_its_status(
    tmp_path: Path,
) -> None:
    rec_root = tmp_path / "failing"
    rec_root.mkdir()
    ws = rec_root / "c-make-failing"
    shutil.copytree(FIXTURES / "c-make-failing", ws)
    tape = rec_root / "fail.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", "-k", cwd=ws)
    with open_tape(tape) as t:
        m = t.manifest
        stderr = t.stream("stderr").decode()
        step = next(p for p in m.processes if p.argv[:1] == ["cc"] and "parse.c" in p.argv)
    assert step.exit_code not in (None, 0)
    run = _extract_and_run(tape, step.id, tmp_path / "repro")
    text = (tmp_path / "repro" / "run.sh").read_text()
    assert f"# Recorded exit status: {step.exit_code}." in text
    assert run.returncode == step.exit_code
    err = run.stderr.decode()
    assert f"exit {step.exit_code}, as recorded" in err
    first_error = next(line for line in stderr.splitlines() if "error:" in line)
    assert first_error in err  # the compiler says what it said in the recording


def test_extract_of_an_as_step_fed_by_tmp(c_debug: Recorded, tmp_path: Path) -> None:
    with open_tape(c_debug.tape) as t:
        m = t.manifest
        assert m.intermediates, "the recorder keeps /tmp/cc*.s for a later as step"
        step = next(p for p in m.processes if p.argv[:1] == ["as"] and "util.o" in p.argv)
    source = next(a for a in step.argv if a.startswith("/tmp/") and a.endswith(".s"))
    assert not Path(source).exists()
    run = _extract_and_run(c_debug.tape, step.id, tmp_path / "repro")
    err = run.stderr.decode()
    assert run.returncode == 0, err
    assert "outputs as recorded" in err
    assert not Path(source).exists()
    # And without a sandbox, the intermediate is put in /tmp for the run and removed after.
    shutil.rmtree(tmp_path / "repro")
    env = {"PATH": "/usr/bin:/bin", "BUILDTAPE_RUN_AT": "here"}
    run = _extract_and_run(c_debug.tape, step.id, tmp_path / "repro", env)
    assert run.returncode == 0, run.stderr.decode()
    assert not Path(source).exists()


def test_run_sh_quotes_every_value(tmp_path: Path) -> None:
    from replay.extract import ExtractError, expected_sha256, sh_quote

    assert sh_quote("it's $HOME `x`") == "'it'\\''s $HOME `x`'"
    out = subprocess.run(["sh", "-c", "printf %s " + sh_quote("a'b $c\nd")], capture_output=True)
    assert out.stdout == b"a'b $c\nd"
    from recorder.model import FileEntry

    with pytest.raises(ExtractError, match="newline"):
        expected_sha256([FileEntry("a\nb", 0o644, 1, "0" * 64)])


def test_extract_refuses_a_umask_that_is_not_octal(c_debug: Recorded, tmp_path: Path) -> None:
    from tests.conftest import rewrite

    def alter(m: dict[str, Any]) -> None:
        m["environment"]["umask"] = "022; touch /tmp/pwned"

    bad = rewrite(c_debug.tape, tmp_path / "bad.tape", alter)
    step = build_steps(c_debug)[0]
    out = buildtape("extract", bad, "--step", step["id"], "-o", tmp_path / "x")
    # The reader refuses it first (recorder/trust.py, exit 3); run.sh's own check stays behind.
    assert out.returncode == 3 and b"not an octal umask" in out.stderr
    assert not (tmp_path / "x" / "run.sh").exists()


def test_an_output_that_holds_the_time_is_reported_as_a_timestamp(tmp_path: Path) -> None:
    ws = tmp_path / "stamp"
    ws.mkdir()
    (ws / "Makefile").write_text("all:\n\tdate -u +%Y-%m-%dT%H:%M:%S > stamp.txt\n")
    tape = tmp_path / "stamp.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", cwd=ws, check=True)
    time.sleep(1.1)
    verdict = replay_json(tape)
    assert not verdict["reproduced"]
    assert [(f["path"], f["reason"]) for f in verdict["findings"]] == [("stamp.txt", "timestamp")]


def test_writes_into_the_cache_directory_stay_in_the_sandbox(tmp_path: Path) -> None:
    # Go's build cache and the like must be writable: the sandbox gives the build an
    # empty ~/.cache of its own, and the host's is not touched.
    # On a fresh machine the directory may not exist yet: the recording makes it (buildtape
    # keeps its shim there, and the build's mkdir -p), and the replay finds it.
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    if str(cache).startswith("/tmp/"):
        pytest.skip("needs a cache directory outside /tmp (the sandbox's /tmp is its own)")
    name = f"buildtape-test-{os.getpid()}-{tmp_path.name}"
    ws = tmp_path / "cachews"
    ws.mkdir()
    (ws / "Makefile").write_text(
        f"all:\n\tmkdir -p {cache}/{name}\n\techo built > {cache}/{name}/f\n"
        f"\tcp {cache}/{name}/f out.txt\n"
    )
    tape = tmp_path / "cache.tape"
    try:
        buildtape("record", "-q", "-o", tape, "--", "make", cwd=ws, check=True)
    finally:
        shutil.rmtree(cache / name, ignore_errors=True)
    verdict = replay_json(tape)
    assert verdict["reproduced"], verdict
    assert not (cache / name).exists()


def test_a_tape_without_the_new_fields_still_replays(c_debug: Recorded, tmp_path: Path) -> None:
    # A 1.0 tape: no mtimes, directories, intermediates, per-process env or exe sha256.
    from tests.conftest import rewrite

    def to_1_0(m: dict[str, Any]) -> None:
        m["format_version"] = "1.0"
        for key in ("directories", "intermediates"):
            m.pop(key, None)
        for entry in (*m["inputs"], *m["outputs"]):
            entry.pop("mtime_ns", None)
        for proc in m["processes"]:
            for key in ("env", "exe_sha256", "static"):
                proc.pop(key, None)

    old = rewrite(c_debug.tape, tmp_path / "old.tape", to_1_0)
    with open_tape(old) as t:
        assert not t.manifest.intermediates and not has_mtimes(old)
    # A rewritten tape was not recorded here: replaying it needs --yes.
    assert replay_json(old, "--yes")["reproduced"]
    link = next(s for s in build_steps(c_debug) if s["argv"][:3] == ["cc", "-g", "-o"])
    assert replay_json(old, "--yes", "--step", link["id"])["reproduced"]


def test_an_output_of_a_drifted_tool_is_blamed_on_the_drift(
    c_debug: Recorded, tmp_path: Path
) -> None:
    # As if the tape came from a machine whose assembler was another build: `as` is known
    # by sha256 and by the name it ran as; util.o (its output) then differs.
    from tests.conftest import rewrite

    def drifted(m: dict[str, Any]) -> None:
        for tool in m["toolchain"]:
            if tool["name"] == "as":
                tool["sha256"] = "0" * 64
        for entry in m["outputs"]:
            if entry["path"] == "util.o":
                entry["sha256"], entry["stored"] = "1" * 64, False

    tape = rewrite(c_debug.tape, tmp_path / "drift.tape", drifted)
    verdict = replay_json(tape, "--yes")  # rewritten: not recorded here
    assert any(d["recorded"].startswith("as 000000000000") for d in verdict["drift"])
    finding = next(f for f in verdict["findings"] if f["path"] == "util.o")
    assert finding["reason"] == "drift" and "made by as" in finding["why"], finding


def test_a_recorded_path_under_a_missing_top_level_directory(tmp_path: Path) -> None:
    # Recorded at /<missing>/deep/ws: the sandbox shadows / itself to make that path,
    # on the sandbox's side only; extract's run.sh does the same.
    from tests.conftest import rewrite

    ws = tmp_path / "c-make"
    shutil.copytree(FIXTURES / "c-make", ws, ignore=shutil.ignore_patterns("*.o", "app"))
    tape = tmp_path / "c.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", cwd=ws, check=True)
    top = Path(f"/buildtape-test-{os.getpid()}-{tmp_path.name}")
    place = f"{top}/deep/ws"

    def move(m: dict[str, Any]) -> None:
        for p in (m, *m["processes"]):
            p["cwd"] = p["cwd"].replace(m["workspace"], place)
        m["workspace"] = place

    moved = rewrite(tape, tmp_path / "moved.tape", move)
    verdict = replay_json(moved, "--yes")  # rewritten: not recorded here
    assert verdict["reproduced"] and verdict["place"] == place, verdict
    step = next(r for r in Recorded(moved, ws).steps() if r["argv"][:1] == ["cc"])
    assert replay_json(moved, "--yes", "--step", step["id"])["reproduced"]
    env = {"PATH": "/usr/bin:/bin", "BUILDTAPE_RUN_AT": "recorded"}
    run = _extract_and_run(moved, step["id"], tmp_path / "repro", env)
    assert run.returncode == 0 and b"outputs as recorded" in run.stderr, run.stderr
    assert not top.exists()


def test_a_step_that_runs_a_program_the_build_made(autogen: Recorded) -> None:
    # ./mktable < table.def > table.h: the step needs ./mktable, an earlier step's output.
    rows = autogen.steps()
    step = next(
        r for r in rows if "./mktable" in " ".join(r["argv"]) and r["argv"][0] != "./mktable"
    )
    with moved_away(autogen.ws):
        verdict = replay_json(autogen.tape, "--step", step["id"])
    assert verdict["reproduced"], verdict
    assert [o["path"] for o in verdict["outputs"]] == ["table.h"]


def stat_hash(root: Path) -> str:
    """Names, modes, sizes and mtimes under ``root`` (a write changes the mtime), for
    directories too large to read whole, such as ~/.cargo."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        h.update(f"{path.relative_to(root)} {st.st_mode} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def overlays_usable() -> bool:
    """Whether this kernel lets a user namespace mount an overlay whose upper layer is
    under /tmp (what a replay's sandbox needs for writes outside the workspace)."""
    from replay.overlay import enter, prepare_overlays

    with tempfile.TemporaryDirectory() as tmp:
        overlays = prepare_overlays([str(Path.home())], Path(tmp))
        try:
            subprocess.run(["true"], preexec_fn=enter(overlays), check=True)
        except (subprocess.SubprocessError, OSError):
            return False
    return True


needs_overlays = pytest.mark.skipif(
    not overlays_usable(), reason="overlayfs cannot be mounted in a user namespace here"
)


@needs_overlays
def test_writes_through_absolute_paths_land_in_the_sandbox(tmp_path: Path) -> None:
    # The build writes /var/tmp/<dir>/copy.txt and $HOME/<file>, then reads them back.
    # Replayed, both writes succeed inside the sandbox (copy-on-write overlays) and the
    # host's files are as they were: a canary the build overwrites keeps its content.
    unique = f"buildtape-test-{os.getpid()}-{tmp_path.name}"
    outside, homefile = Path("/var/tmp") / unique, Path.home() / f".{unique}"
    ws = tmp_path / "writes-outside"
    shutil.copytree(FIXTURES / "writes-outside", ws)
    tape = tmp_path / "outside.tape"
    argv = ["make", f"OUTSIDE={outside}", f"HOMEFILE={homefile}"]
    try:
        buildtape("record", "-q", "-o", tape, "--", *argv, cwd=ws, check=True)
        shutil.rmtree(outside)
        homefile.write_text("the host's canary\n")
        os.utime(homefile, ns=(1_600_000_000_000_000_000,) * 2)
        before = tree_hash(ws)
        verdict = replay_json(tape)
        assert verdict["reproduced"], verdict
        assert [o["path"] for o in verdict["outputs"]] == ["result.txt"]
        note = next(n for n in verdict["notes"] if "wrote outside the workspace" in n)
        assert str(homefile) in note and str(outside / "copy.txt") in note, note
        assert not outside.exists()
        assert homefile.read_text() == "the host's canary\n"
        assert homefile.stat().st_mtime_ns == 1_600_000_000_000_000_000
        assert tree_hash(ws) == before
        # Without namespaces nothing can keep them off the host: the replay says so first.
        code, _, err = replay(tape, env=DIRECTORY)
        assert code == 0 and "without namespaces nothing keeps the build's writes" in err, err
        assert str(homefile) in err and str(outside / "copy.txt") in err
    finally:
        shutil.rmtree(outside, ignore_errors=True)
        homefile.unlink(missing_ok=True)


CARGO = shutil.which("cargo") or shutil.which(str(Path.home() / ".cargo" / "bin" / "cargo"))


@needs_overlays
@pytest.mark.skipif(CARGO is None, reason="cargo is not installed")
def test_a_cargo_build_replays_without_touching_cargo_home(tmp_path: Path) -> None:
    # cargo locks and writes $CARGO_HOME (~/.cargo: .package-cache, .global-cache) and
    # writes target/ with incremental-compilation sessions named by the time.
    assert CARGO is not None
    home = Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")
    ws = tmp_path / "cargo-tiny"
    shutil.copytree(FIXTURES / "cargo-tiny", ws)
    env = {**os.environ, "PATH": f"{Path(CARGO).parent}:{os.environ.get('PATH', '')}"}
    tape = tmp_path / "cargo.tape"
    buildtape("record", "-q", "-o", tape, "--", "cargo", "build", "--offline", cwd=ws, env=env,
              check=True, timeout=600)  # fmt: skip
    with open_tape(tape) as t:
        wrote_home = {w for p in t.manifest.processes for w in p.writes if w.startswith(f"{home}/")}
    checkout, cargo_home = tree_hash(ws), stat_hash(home)
    code, text, err = replay(tape, "--json", env=env)
    verdict = json.loads(text)
    assert code == 0 and verdict["reproduced"], (verdict, err)
    same = {o["path"] for o in verdict["outputs"] if o["status"] == "same"}
    assert "target/debug/tiny" in same
    expected = {f["path"] for f in verdict["findings"] if f["expected"]}
    assert all("/incremental/" in p or p.endswith(".rustc_info.json") for p in expected)
    if wrote_home:  # what cargo wrote there in the recording went to the sandbox this time
        assert any(str(home) in n for n in verdict["notes"]), verdict["notes"]
    assert tree_hash(ws) == checkout
    assert stat_hash(home) == cargo_home


def test_a_step_is_compared_with_what_it_wrote_before_a_later_step_changed_it(
    tmp_path: Path,
) -> None:
    # `echo one > gen.txt`, then a later step appends to gen.txt: the tape keeps gen.txt
    # as the first step left it (format 1.2 versions), so the first step's replay is
    # compared with that, and the later step starts from it, not from the final gen.txt.
    ws = tmp_path / "rewrite"
    ws.mkdir()
    (ws / "Makefile").write_text(
        "final.txt: gen.txt\n\techo two >> gen.txt\n\tcp gen.txt final.txt\n"
        "gen.txt:\n\techo one > gen.txt\n"
    )
    tape = tmp_path / "rewrite.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", cwd=ws, check=True)
    rows = Recorded(tape, ws).steps()
    first = next(r for r in rows if "echo one > gen.txt" in " ".join(r["argv"]))
    later = next(r for r in rows if "echo two >> gen.txt" in " ".join(r["argv"]))
    verdict = replay_json(tape, "--step", first["id"])
    assert verdict["reproduced"], verdict
    gen = next(o for o in verdict["outputs"] if o["path"] == "gen.txt")
    assert gen["status"] == "same", verdict["outputs"]
    assert not any(n.startswith("not compared: gen.txt") for n in verdict["notes"])
    # extract holds the step to the same content: what it wrote, not the final gen.txt.
    out_dir = tmp_path / "repro"
    buildtape("extract", tape, "--step", first["id"], "--into", out_dir, check=True)
    one = hashlib.sha256(b"one\n").hexdigest()
    assert f"{one}  workspace/gen.txt" in (out_dir / "expected.sha256").read_text()
    verdict = replay_json(tape, "--step", later["id"])
    assert verdict["reproduced"], verdict
    assert not any("restored as the build left it" in n for n in verdict["notes"])
    assert {o["path"]: o["status"] for o in verdict["outputs"]}["gen.txt"] == "same"


def test_ar_and_the_ranlib_that_rewrites_its_archive_each_replay_alone(tmp_path: Path) -> None:
    # ranlib truncates and rewrites the archive ar made (as zlib's CMake build runs them):
    # each step alone is compared with what it wrote, and ranlib starts from ar's archive.
    ws = tmp_path / "lib"
    ws.mkdir()
    (ws / "a.c").write_text("int f(void) { return 1; }\n")
    (ws / "Makefile").write_text(
        "lib.a: a.o\n\trm -f lib.a\n\tar qc lib.a a.o\n\tranlib lib.a\n"
        "a.o: a.c\n\tcc -c a.c -o a.o\n"
    )
    tape = tmp_path / "lib.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", cwd=ws, check=True)
    rows = Recorded(tape, ws).steps()
    for tool in ("ar", "ranlib"):
        step = next(r for r in rows if r["argv"][:1] == [tool])
        verdict = replay_json(tape, "--step", step["id"])
        assert verdict["reproduced"], (tool, verdict)
        assert {o["path"]: o["status"] for o in verdict["outputs"]} == {"lib.a": "same"}
        assert not any(
            "not compared" in n or "restored as the build" in n for n in verdict["notes"]
        )


def test_a_configure_log_that_differs_every_run_is_an_expected_difference(
    tmp_path: Path,
) -> None:
    # As autoconf's config.log: the run's date and process ids. Debian's gzip reproduced
    # 248 of its 249 outputs with config.log the only "nondeterministic" one.
    ws = tmp_path / "conf"
    ws.mkdir()
    (ws / "configure").write_text(
        "#!/bin/sh\n{ date +%s%N; echo \"pid $$\"; } > config.log\necho 'x = 1' > config.mk\n"
    )
    (ws / "configure").chmod(0o755)
    tape = tmp_path / "conf.tape"
    buildtape("record", "-q", "-o", tape, "--", "./configure", cwd=ws, check=True)
    verdict = replay_json(tape)
    assert verdict["reproduced"], verdict
    expected = {f["path"] for f in verdict["findings"] if f["expected"]}
    assert expected == {"config.log"}, verdict["findings"]


def test_a_step_whose_output_was_replaced_without_a_kept_version_is_not_compared(
    tmp_path: Path,
) -> None:
    # Four kept versions per path: the fifth writer of a log-like file is not compared
    # with the final content (it did not write that), and the replay says so.
    ws = tmp_path / "log"
    ws.mkdir()
    steps = [f"s{i}" for i in range(6)]
    rules = "".join(
        f"{s}:{(' ' + steps[i - 1]) if i else ''}\n\tsh -c 'echo {s} > log.txt'\n"
        for i, s in enumerate(steps)
    )
    (ws / "Makefile").write_text(f"all: {steps[-1]}\n{rules}")
    tape = tmp_path / "log.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", cwd=ws, check=True)
    rows = Recorded(tape, ws).steps()
    fifth = next(r for r in rows if r["argv"][:3] == ["sh", "-c", "echo s4 > log.txt"])
    verdict = replay_json(tape, "--step", fifth["id"])
    assert verdict["reproduced"], verdict
    assert any(n.startswith("not compared: log.txt") for n in verdict["notes"]), verdict
    # extract leaves it out of expected.sha256 too, and run.sh says why.
    out_dir = tmp_path / "repro"
    buildtape("extract", tape, "--step", fifth["id"], "--into", out_dir, check=True)
    assert "log.txt" not in (out_dir / "expected.sha256").read_text()
    assert "# Not in expected.sha256: log.txt (step" in (out_dir / "run.sh").read_text()


GO = shutil.which("go")


@pytest.mark.skipif(GO is None, reason="go is not installed")
def test_a_go_module_replays_whole_and_reproduces(tmp_path: Path) -> None:
    # Recorded with the default tracer: Go makes its own system calls, which the
    # interposer cannot see, so --trace auto traces Go's subtree with strace; without that
    # the tape lacks main.go's content and the replay fails. No network, no dependencies;
    # the build cache lives under the build's /tmp, which is the sandbox's own in the
    # replay. Go without -trimpath embeds the source path.
    ws = tmp_path / "go-tiny"
    shutil.copytree(FIXTURES / "go-tiny", ws)
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off",
           "GOCACHE": str(tmp_path / "gocache"), "GOPATH": str(tmp_path / "gopath")}  # fmt: skip
    tape = tmp_path / "go.tape"
    buildtape("record", "-q", "-o", tape, "--", "go", "build", "-o", "tiny", ".",
              cwd=ws, env=env, check=True, timeout=600)  # fmt: skip
    shutil.rmtree(tmp_path / "gocache")
    with open_tape(tape) as t:  # what Go read is in the tape, not a placeholder
        stored = {e.path for e in t.manifest.inputs if e.blob is not None}
    assert {"go.mod", "main.go"} <= stored, stored
    before = tree_hash(ws)
    code, text, err = replay(tape, "--json", env=env)
    verdict = json.loads(text)
    assert code == 0 and verdict["reproduced"], (verdict, err)
    assert {o["path"]: o["status"] for o in verdict["outputs"]} == {"tiny": "same"}
    assert tree_hash(ws) == before
    assert not (tmp_path / "gocache").exists()  # the replay's cache was the sandbox's


@needs_overlays
def test_an_as_step_fed_from_var_tmp_replays_alone(tmp_path: Path) -> None:
    # TMPDIR=/var/tmp/<dir>: cc1 writes the assembly there and as reads it. Replayed alone,
    # the as step finds it in the overlay of /var (the recording wrote there), not on the host.
    unique = Path("/var/tmp") / f"buildtape-test-{os.getpid()}-{tmp_path.name}"
    ws = tmp_path / "tmpdir"
    ws.mkdir()
    (ws / "hello.c").write_text("int hello(void) { return 42; }\n")
    tape = tmp_path / "tmpdir.tape"
    unique.mkdir()
    try:
        env = {**os.environ, "TMPDIR": str(unique)}
        buildtape("record", "-q", "-o", tape, "--", "cc", "-c", "hello.c", "-o", "hello.o",
                  cwd=ws, env=env, check=True)  # fmt: skip
    finally:
        shutil.rmtree(unique)
    with open_tape(tape) as t:
        assert any(i.path.startswith(f"{unique}/") for i in t.manifest.intermediates)
    step = next(r for r in Recorded(tape, ws).steps() if r["argv"][:1] == ["as"])
    verdict = replay_json(tape, "--step", step["id"])
    assert verdict["reproduced"], verdict
    assert [o["path"] for o in verdict["outputs"]] == ["hello.o"]
    assert not unique.exists()


@pytest.fixture
def vendor() -> Iterator[Path]:
    """The dependency's directory on the host, outside /tmp (the sandbox has its own /tmp),
    wherever the checkout lies: CI's clean clone may be under /tmp."""
    where = Path(tempfile.mkdtemp(prefix="bt-vendor-", dir="/var/tmp"))
    shutil.copytree(FIXTURES / "vendored-step" / "vendor", where / "vendor")
    yield (where / "vendor").resolve()
    shutil.rmtree(where, ignore_errors=True)


def test_steps_of_a_dependency_and_of_a_hard_linked_build_script_replay_alone(
    tmp_path: Path, vendor: Path
) -> None:
    # Cargo's shapes: a dependency compiled in its own directory outside the workspace, and
    # a build script run through a hard link (a write of the step that linked it). Each step
    # alone reproduces with the checkout moved away; extract says why it cannot take the first.
    ws = tmp_path / "vs"
    shutil.copytree(FIXTURES / "vendored-step", ws, ignore=shutil.ignore_patterns("vendor"))
    tape = tmp_path / "vs.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", f"VENDOR={vendor}",
              cwd=ws, check=True)  # fmt: skip
    rows = Recorded(tape, ws).steps()
    compile_there = next(r for r in rows if r["argv"][:2] == ["cc", "-c"])
    assert compile_there["cwd"] == str(vendor)
    run_gen = next(r for r in rows if r["argv"][-1:] == ["./gen > out.h"])
    with open_tape(tape) as t:
        m = t.manifest
        linked = next(p for p in m.processes if p.argv == ["ln", "-f", "gen-real", "gen"])
        assert "gen" in linked.writes and "gen-real" in linked.reads
    before = tree_hash(ws)
    with moved_away(ws):
        verdict = replay_json(tape, "--step", compile_there["id"])
        assert verdict["reproduced"], verdict
        assert {o["path"]: o["status"] for o in verdict["outputs"]} == {"vend.o": "same"}
        verdict = replay_json(tape, "--step", run_gen["id"])
        assert verdict["reproduced"], verdict
        assert {o["path"]: o["status"] for o in verdict["outputs"]} == {"out.h": "same"}
        # gen comes from the step that linked it, as any output of an earlier step.
        assert not any(n.startswith("gen was restored") for n in verdict["notes"]), verdict
    assert tree_hash(ws) == before
    out = buildtape("extract", tape, "--step", compile_there["id"], "-o", tmp_path / "x")
    assert out.returncode != 0
    assert b"outside the workspace" in out.stderr and b"Traceback" not in out.stderr
    code, _, err = replay(tape, "--step", compile_there["id"], env=DIRECTORY)
    assert code != 0 and "install bubblewrap" in err, err


def test_a_replay_under_the_recorder_says_nothing_of_the_read_only_list(
    c_debug: Recorded, tmp_path: Path
) -> None:
    # The recorder in the sandbox notes its tape as recorded here, and the user's list is
    # read-only there: libpng's diverged replay ended with "could not note the tape as
    # recorded here (Read-only file system …); replaying it will ask", about a tape the
    # user never sees.
    own = tmp_path / "replayed.tape"
    code, text, err = replay(c_debug.tape, "-o", own)
    assert code == 0, text + err
    assert own.is_file()
    assert "could not note" not in err + text


def test_autom4te_requests_are_expected_and_a_mktemp_name_is_explained(tmp_path: Path) -> None:
    # Debian jq's whole replay: 134 same, config.log expected, and two outputs called
    # "nondeterministic": autom4te's requests (a Perl hash in random order: bookkeeping)
    # and a test log naming its mktemp directory (a real difference, now said as such).
    rec = _record(tmp_path, "autom4te-shapes", "make")
    verdict = replay_json(rec.tape)
    assert not verdict["reproduced"]
    findings = {f["path"]: f for f in verdict["findings"]}
    assert findings["autom4te.cache/requests"]["expected"], findings
    assert findings["tests/shtest.log"]["reason"] == "tempname", findings
    assert [p for p, f in findings.items() if not f["expected"]] == ["tests/shtest.log"]


def test_a_test_step_loads_the_builds_shared_library(tmp_path: Path) -> None:
    # libpng's ctest steps, replayed alone, failed with "libpng16d.so.16: cannot open
    # shared object file": the dynamic loader's opens are not seen by the interposer, so
    # the library (and its soname link, made by ln -s) were not part of the step's world.
    rec = _record(tmp_path, "shared-lib-test", "make")
    step = next(r for r in rec.steps() if r["argv"][-1:] == ["./prog > test.out"])
    before = tree_hash(rec.ws)
    with moved_away(rec.ws):
        verdict = replay_json(rec.tape, "--step", step["id"])
    assert verdict["reproduced"], verdict
    assert {o["path"]: o["status"] for o in verdict["outputs"]} == {"test.out": "same"}
    assert tree_hash(rec.ws) == before


@pytest.mark.parametrize("seen", [True, False], ids=["seen", "unseen"])
def test_a_link_made_later_is_not_there_when_the_step_starts(tmp_path: Path, seen: bool) -> None:
    # sqlite's libtool link step, replayed alone, started with the .so links it makes
    # itself (ln -s, in a tape where no process was seen to write them): restored from the
    # end of the build, they made a plain `ln -s` fail with "File exists".
    rec, tape, options = _libtool_links(tmp_path, seen)
    step = next(r for r in rec.steps() if r["argv"][:1] == ["/bin/sh"] and "ln -s" in r["argv"][-1])
    before = tree_hash(rec.ws)
    with moved_away(rec.ws):
        verdict = replay_json(tape, *options, "--step", step["id"])
    assert verdict["exit"] == {"recorded": 0, "replayed": 0}, verdict
    assert verdict["reproduced"], verdict
    assert not [n for n in verdict["notes"] if "libgreet.so" in n], verdict["notes"]
    assert tree_hash(rec.ws) == before


@pytest.mark.parametrize("seen", [True, False], ids=["seen", "unseen"])
def test_a_link_no_process_wrote_is_no_sign_of_missed_reads(tmp_path: Path, seen: bool) -> None:
    # json-c's whole-build replay warned that the recorder "did not see every read" and
    # asked for --trace strace, because no recorded process wrote libjson-c.so (CMake's
    # create_symlink, in a tape from before symlink(2) was traced), and a link is not read
    # as content.
    _, tape, options = _libtool_links(tmp_path, seen)
    verdict = replay_json(tape, *options)
    assert verdict["reproduced"], verdict
    assert not [n for n in verdict["notes"] if "placeholders" in n], verdict["notes"]


needs_meson = pytest.mark.skipif(
    shutil.which("meson") is None or shutil.which("ninja") is None, reason="meson/ninja missing"
)


@needs_meson
def test_a_meson_build_reproduces_with_mesons_own_state_as_bookkeeping(tmp_path: Path) -> None:
    # fribidi's meson build replayed as "diverged: 3 different", each "a nondeterministic
    # step": meson's log (its start time, its checks' temp directories) and its pickled
    # state (fresh project GUIDs, those temp names, Python's per-process set order).
    rec = _record(tmp_path, "meson-tiny", "sh", "build.sh")
    before = tree_hash(rec.ws)
    verdict = replay_json(rec.tape)
    assert verdict["reproduced"], verdict["findings"]
    expected = {f["path"] for f in verdict["findings"] if f["expected"]}
    assert {"build/meson-private/coredata.dat", "build/meson-logs/meson-log.txt"} <= expected
    same = {o["path"] for o in verdict["outputs"] if o["status"] == "same"}
    assert {"build/tiny", "build/libtiny.a", "build/config.h", "build/build.ninja"} <= same
    # A compile of the project alone, with the checkout moved away.
    step = next(r for r in rec.steps() if "-c" in r["argv"] and "../main.c" in r["argv"])
    with moved_away(rec.ws):
        alone = replay_json(rec.tape, "--step", step["id"])
    assert alone["reproduced"], alone
    assert [o["path"] for o in alone["outputs"]] == ["build/tiny.p/main.c.o"]
    assert tree_hash(rec.ws) == before


def test_a_zip_whose_members_differ_only_in_their_times_says_so(tmp_path: Path) -> None:
    # msgpack's wheel replayed as "nondeterministic: same command and inputs": every
    # member was the same, only the times zip stores with them (the .so was written later).
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    ws = tmp_path / "zip-stamps"
    shutil.copytree(FIXTURES / "zip-stamps", ws)
    tape = tmp_path / "zip.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", cwd=ws, env=env, check=True)
    time.sleep(2.1)  # zip stores times to 2 s: the replay's `tiny` must fall in another slot
    verdict = replay_json(tape, env=env)
    assert not verdict["reproduced"]
    findings = {f["path"]: f for f in verdict["findings"] if not f["expected"]}
    assert list(findings) == ["dist/tiny-1.0.zip"], findings
    assert findings["dist/tiny-1.0.zip"]["reason"] == "timestamp"
    assert "members are all as recorded" in findings["dist/tiny-1.0.zip"]["why"]
    assert {o["path"]: o["status"] for o in verdict["outputs"]}["tiny"] == "same"


def test_a_wheel_replayed_with_an_empty_cache_is_explained_by_its_times(tmp_path: Path) -> None:
    # pip wheel of MarkupSafe replayed with "diff: python3.11 (the build command) reads
    # /root/.cache only in B": pip looks in its cache, which the replay gives the build
    # empty, and the wheel differed only in the times stored with its members.
    home = tmp_path / "home"
    (home / ".cache" / "zip-stamps").mkdir(parents=True)
    (home / ".cache" / "zip-stamps" / "settings").write_text("level=9\n")
    drop = ("SOURCE_DATE_EPOCH", "XDG_CACHE_HOME")
    env = {**{k: v for k, v in os.environ.items() if k not in drop}, "HOME": str(home)}
    ws = tmp_path / "zip-stamps"
    shutil.copytree(FIXTURES / "zip-stamps", ws)
    tape = tmp_path / "zip.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", cwd=ws, env=env, check=True)
    reads = {r for p in Recorded(tape, ws).manifest()["processes"] for r in p.get("reads", [])}
    assert str(home / ".cache" / "zip-stamps" / "settings") in reads
    time.sleep(2.1)  # zip stores times to 2 s: the replay's `tiny` must fall in another slot
    verdict = replay_json(tape, env=env)
    assert [f["reason"] for f in verdict["findings"] if not f["expected"]] == ["timestamp"]
    cause = verdict["diff_cause"]
    assert cause.startswith("nondeterministic: "), cause
    assert "dist/tiny-1.0.zip: the same members, stored with other times" in cause
    assert ".cache" not in cause


def test_a_step_makes_the_directory_it_made_in_the_recording(tmp_path: Path) -> None:
    # msgpack's bdist_wheel step, replayed alone, failed with "[Errno 17] File exists:
    # 'build/bdist.linux-x86_64/wheel/msgpack-1.2.4.dist-info'": the replay had made every
    # directory the step wrote into, also one the step makes itself and the build removed.
    rec = _record(tmp_path, "staging-dir", "make")
    step = next(r for r in rec.steps() if "mkdir stage" in " ".join(r["argv"]))
    verdict = replay_json(rec.tape, "--step", step["id"])
    assert verdict["exit"] == {"recorded": 0, "replayed": 0}, verdict
    assert {o["path"]: o["status"] for o in verdict["outputs"]} == {"packed.txt": "same"}
    # A tape from before mkdir(2) was recorded (format 1.3): the replay guesses the same.
    from tests.conftest import rewrite

    def to_1_3(m: dict[str, Any]) -> None:
        m["format_version"] = "1.3"
        m["tracing"].pop("made_dirs")
        for proc in m["processes"]:
            proc.pop("made_dirs", None)

    old = rewrite(rec.tape, tmp_path / "old.tape", to_1_3)
    with open_tape(old) as t:
        assert not t.manifest.tracing.made_dirs
        assert not any(p.made_dirs for p in t.manifest.processes)
    verdict = replay_json(old, "--yes", "--step", step["id"])
    assert verdict["exit"] == {"recorded": 0, "replayed": 0}, verdict


@pytest.mark.parametrize("trace", ["auto", "strace"])
def test_a_step_is_left_to_make_the_directories_it_made(tmp_path: Path, trace: str) -> None:
    # `mkdir out && mkdir out/sub && cc -o out/sub/hello`: the build keeps both directories,
    # so only the record of who made them (format 1.4) tells the replay of that step not
    # to make them first, where the step's mkdir would fail.
    rec = _record(tmp_path, "made-dirs", "make", options=("--trace", trace))
    with open_tape(rec.tape) as t:
        m = t.manifest
    assert m.tracing.made_dirs
    made = {d: p.argv for p in m.processes for d in p.made_dirs}
    assert made == {"out": ["mkdir", "out"], "out/sub": ["mkdir", "out/sub"]}
    step = next(r for r in rec.steps() if "mkdir out &&" in " ".join(r["argv"]))
    verdict = replay_json(rec.tape, "--step", step["id"])
    assert verdict["exit"] == {"recorded": 0, "replayed": 0}, verdict
    assert {o["path"]: o["status"] for o in verdict["outputs"]} == {"out/sub/hello": "same"}


def test_a_step_that_lists_a_directory_finds_what_was_there(tmp_path: Path) -> None:
    # msgpack's PEP 517 build step alone wrote a PKG-INFO without "License-File: COPYING"
    # and was called nondeterministic: setuptools finds COPYING by listing the directory,
    # never opening it, and the step's world held only the files it opened.
    rec = _record(tmp_path, "listing-step", "make")
    step = next(r for r in rec.steps() if "*.txt" in " ".join(r["argv"]))
    with moved_away(rec.ws):
        verdict = replay_json(rec.tape, "--step", step["id"])
    assert verdict["reproduced"], verdict
    assert {o["path"]: o["status"] for o in verdict["outputs"]} == {"index.txt": "same"}
