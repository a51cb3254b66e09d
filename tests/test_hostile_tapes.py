"""Hostile tapes (issue #16): crafted through the real writer, so every checksum is valid.

One test per class of attack. Each asserts what must hold whatever the tape says: nothing
outside the sandbox changes (a canary directory), no crafted command runs without
consent, every command exits with a documented code and one line (never 70, "internal
error"), memory stays under a cap (``prlimit --as``), and no raw control character from
the tape reaches the output.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from recorder import container
from recorder.container import TapeReader, TapeWriter
from tests.conftest import answer_on_a_terminal, buildtape, rewrite

# Exit codes a command may end with on a hostile tape (docs/cli.md): ok, differ,
# usage, bad tape, not found, I/O, bad input, replay failed, aborted, out of memory.
DOCUMENTED = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
# Control characters that must never reach a terminal raw (tab and newline may).
RAW_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")
HOSTILE_TEXT = "make\r\x1b[2K\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\x9b31m\x1b[8mhidden"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A genuine tape of a tiny build (no tracer needed), recorded through the CLI."""
    ws = tmp_path_factory.mktemp("hostile") / "ws"
    (ws / "sub").mkdir(parents=True)
    (ws / "src.txt").write_text("hello\n")
    (ws / "sub" / "keep.txt").write_text("kept\n")
    tape = ws.parent / "base.tape"
    buildtape(
        "record", "-q", "--trace", "none", "--no-store", "-o", tape, "--",
        "sh", "-c", "cat src.txt > sub/out.txt; echo done",
        cwd=ws, check=True,
    )  # fmt: skip
    return tape


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Path]:
    """A directory outside every sandbox: it must be exactly the same after each test."""
    where = tmp_path / "canary"
    (where / "inner").mkdir(parents=True)
    (where / "inner" / "file.txt").write_text("untouched\n")

    def snapshot() -> list[tuple[str, int, str]]:
        out = []
        for p in sorted(where.rglob("*")):
            data = p.read_bytes() if p.is_file() and not p.is_symlink() else b""
            out.append((str(p), p.lstat().st_mode, hashlib.sha256(data).hexdigest()))
        return out

    before = snapshot()
    yield where
    assert snapshot() == before, "a hostile tape changed a directory outside the sandbox"


def craft(
    base: Path,
    dst: Path,
    mutate: Callable[[dict[str, Any]], None],
    raw: dict[str, str] | None = None,
) -> Path:
    """``rewrite`` with, optionally, JSON text the writer would never produce: each key of
    ``raw`` (a quoted placeholder string in the manifest) is replaced by its value."""
    if not raw:
        return rewrite(base, dst, mutate)
    real_dumps = json.dumps

    def dumps(obj: Any, **kw: Any) -> str:
        text = real_dumps(obj, **kw)
        for placeholder, value in raw.items():
            text = text.replace(real_dumps(placeholder), value)
        return text

    container.json.dumps = dumps  # type: ignore[attr-defined]
    try:
        return rewrite(base, dst, mutate)
    finally:
        container.json.dumps = real_dumps  # type: ignore[attr-defined]


def run(
    *args: Any, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[int, bytes, bytes]:
    out = buildtape(*args, cwd=cwd, env=env, timeout=120)
    return out.returncode, out.stdout, out.stderr


def assert_refused(code: int, err: bytes, fragment: str = "") -> None:
    """A documented non-zero code and exactly one line on stderr, never an internal error."""
    assert code in DOCUMENTED - {0}, (code, err)
    lines = err.decode("utf-8", "replace").splitlines()
    assert len(lines) == 1, err
    assert "internal error" not in lines[0]
    assert fragment in lines[0], lines[0]
    assert not RAW_CONTROL.search(err)


def _paths(m: dict[str, Any], *paths: str) -> list[int]:
    ids = []
    for p in paths:
        if p not in m["paths"]:
            m["paths"].append(p)
        ids.append(m["paths"].index(p))
    return ids


# --- writes outside the sandbox -----------------------------------------------------------


# The checks are the inner wall: they hold in the sandbox and in its no-namespace fallback.
SANDBOXES = {"bwrap": {}, "directory": {"BUILDTAPE_SANDBOX": "directory"}}


@pytest.mark.parametrize("sandbox", sorted(SANDBOXES))
def test_link_chains_and_climbing_cwds_never_reach_outside(
    base: Path, tmp_path: Path, canary: Path, sandbox: str
) -> None:
    env = {**os.environ, **SANDBOXES[sandbox]}
    outside = os.path.relpath(canary, tmp_path / "sandbox" / "workspace")

    def chain(m: dict[str, Any]) -> None:
        # p/q -> .. is inside on its own; r -> p/q/p/q/../../<outside> passes a lexical check.
        m["inputs"] += [
            {"path": "p/q", "mode": 0o120777, "size": 0, "sha256": None, "link": ".."},
            {"path": "r", "mode": 0o120777, "size": 0, "sha256": None,
             "link": "p/q/p/q/" + "../" * 2 + outside + "/inner"},
        ]  # fmt: skip
        m["cwd"] = m["workspace"] + "/r"

    hostile = craft(base, tmp_path / "chain.tape", chain)
    for args in (
        ["verify", hostile],
        ["show", hostile],
        ["replay", hostile, "--yes", "--workdir", tmp_path / "sandbox"],
        ["extract", hostile, "--step", "1", "-o", tmp_path / "x"],
    ):
        code, _, err = run(*args, env=env)
        assert code == 3, (args, err)
        assert_refused(code, err, "escapes the workspace")

    def climbing_step(m: dict[str, Any]) -> None:
        m["processes"].append({
            **m["processes"][0], "id": 2, "parent_id": 1, "pid": 4242,
            "argv": ["sh", "-c", f"touch {canary}/inner/pwned"],
            "cwd": m["workspace"] + "/../../" + outside,
        })  # fmt: skip

    step = craft(base, tmp_path / "step.tape", climbing_step)
    code, _, err = run(
        "replay", step, "--yes", "--step", "2", "--workdir", tmp_path / "s2", env=env
    )
    assert_refused(code, err, "outside the workspace")
    code, _, err = run("extract", step, "--step", "2", "-o", tmp_path / "x2", env=env)
    assert_refused(code, err, "outside the workspace")
    assert not (canary / "inner" / "pwned").exists()


def test_restored_modes_carry_no_special_or_world_write_bits(base: Path, tmp_path: Path) -> None:
    def modes(m: dict[str, Any]) -> None:
        m["inputs"][0]["mode"] = 0o107777  # setuid, setgid, sticky, rwx for all
        m["processes"][0]["reads"] = _paths(m, m["inputs"][0]["path"])

    hostile = craft(base, tmp_path / "modes.tape", modes)
    code, _, err = run("extract", hostile, "--step", "1", "-o", tmp_path / "x")
    assert code == 0, err
    got = stat.S_IMODE((tmp_path / "x" / "workspace" / "src.txt").stat().st_mode)
    assert got == 0o755

    def negative(m: dict[str, Any]) -> None:
        m["inputs"][0]["mode"] = -1

    code, _, err = run("extract", craft(base, tmp_path / "neg.tape", negative), "--step", "1",
                       "-o", tmp_path / "y")  # fmt: skip
    assert_refused(code, err, "not a file mode")
    assert not (tmp_path / "y").exists()


def test_extracted_run_sh_runs_only_the_recorded_command(base: Path, tmp_path: Path) -> None:
    """A step whose argv holds newlines and a command substitution, in a cwd named like
    one: run.sh quotes every value, so running it creates no marker."""
    marker = tmp_path / "pwned"

    def injecting(m: dict[str, Any]) -> None:
        m["processes"].append({
            **m["processes"][0], "id": 2, "parent_id": 1, "pid": 4242,
            "argv": ["sh", "-c", "true", f"x\ntouch {marker}\n", f"$(touch {marker})",
                     f"`touch {marker}`"],
            "cwd": m["workspace"] + f"/sub/$(touch {marker})",
        })  # fmt: skip

    hostile = craft(base, tmp_path / "inject.tape", injecting)
    out_dir = tmp_path / "x"
    code, _, err = run("extract", hostile, "--step", "2", "-o", out_dir)
    assert code == 0, err
    ran = subprocess.run(
        ["sh", "run.sh"], cwd=out_dir, capture_output=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "BUILDTAPE_RUN_AT": "here"},
    )  # fmt: skip
    assert not marker.exists(), ran.stderr


# --- consent --------------------------------------------------------------------------------


def test_no_crafted_command_runs_without_consent(base: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    def here(m: dict[str, Any]) -> None:
        # It claims this very machine: a hostname is the tape's word, not proof.
        m["host"]["hostname"] = socket.gethostname()
        m["argv"] = ["sh", "-c", f"touch {marker}", HOSTILE_TEXT]

    hostile = craft(base, tmp_path / "here.tape", here)
    sandbox = tmp_path / "sandbox"
    code, _, err = run("replay", hostile, "--workdir", sandbox)
    assert code == 8
    assert_refused(code, err, "pass --yes")
    code, _, err = run("replay", hostile, "--vary", "tz", "--workdir", sandbox)
    assert_refused(code, err, "pass --yes")
    assert not marker.exists() and not sandbox.exists()

    code, seen = answer_on_a_terminal(["replay", str(hostile), "--workdir", str(sandbox)], b"n\n")
    assert code == 8 and not marker.exists()
    text = seen.decode("utf-8", "replace")
    prompt = text[: text.index("Run it here?")]
    assert "Replaying runs: sh -c 'touch " in prompt
    assert "make\\r\\e[2K\\e]0;pwned\\x07" in prompt  # shown, not interpreted
    assert "environment changes from yours" in prompt
    assert not RAW_CONTROL.search(prompt.replace("\r\n", "\n").encode())

    # The genuine tape (recorded here, by this user) needs no question.
    code, _, err = run("replay", base, "--workdir", tmp_path / "own")
    assert code == 0, err


def test_tapes_recorded_through_the_api_are_remembered_and_copies_are_not(
    tmp_path: Path,
) -> None:
    """``recorder.record`` (no CLI) notes its tape as recorded here; a tape rewritten from
    it through the writer (one label added) is not, and replaying it asks."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "in.txt").write_text("x\n")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    tape = tmp_path / "api.tape"
    script = (
        "from pathlib import Path\n"
        "from recorder.options import RecordOptions\n"
        "from recorder.record import record\n"
        f"record(RecordOptions(argv=('sh', '-c', 'cat in.txt'), output=Path({str(tape)!r}),"
        f" workspace=Path({str(ws)!r}), cwd=Path({str(ws)!r}), trace='none', stacks='none'))\n"
    )
    subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True)
    listing = tmp_path / "state" / "buildtape" / "recorded-here"
    assert stat.S_IMODE(listing.stat().st_mode) == 0o600
    with TapeReader(tape) as r:
        assert listing.read_text().split() == [r.manifest_sha256]

    code, _, err = run("replay", tape, "--workdir", tmp_path / "s1", env=env)
    assert code == 0, err  # no terminal, no --yes, and no question: it was recorded here
    copy = craft(tape, tmp_path / "copy.tape", lambda m: m["labels"].update(copied="yes"))
    code, _, err = run("replay", copy, "--workdir", tmp_path / "s2", env=env)
    assert code == 8
    assert_refused(code, err, "pass --yes")
    # Under another state directory (another user, another machine) the first asks too.
    other = {**env, "XDG_STATE_HOME": str(tmp_path / "elsewhere")}
    code, _, err = run("replay", tape, "--workdir", tmp_path / "s3", env=other)
    assert code == 8, err


# --- the tape's environment -------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(SANDBOXES))
def test_the_tapes_environment_reaches_neither_host_nor_buildtape(
    base: Path, tmp_path: Path, canary: Path, kind: str
) -> None:
    user_dir = tmp_path / "user"
    (user_dir / "bin").mkdir(parents=True)
    evil = user_dir / "bin" / "strace"
    evil.write_text(f"#!/bin/sh\ntouch {canary}/inner/strace-ran\nexit 0\n")
    evil.chmod(0o755)

    def env(m: dict[str, Any]) -> None:
        v = m["environment"]["vars"]
        v.update({
            "LD_PRELOAD": "./evil.so", "LD_LIBRARY_PATH": str(canary), "BASH_ENV": "./evil.sh",
            "ENV": "./evil.sh", "PYTHONSTARTUP": "./evil.py",
            "XDG_CACHE_HOME": str(canary / "inner"), "XDG_CONFIG_HOME": str(canary),
            "PATH": "bin:" + v.get("PATH", "/usr/bin:/bin"),
            "GITHUB_TOKEN": "[REDACTED]",
        })  # fmt: skip
        m["environment"]["redacted"].append("GITHUB_TOKEN")
        m["argv"] = ["sh", "-c", "env | sort > seen-env.txt"]

    hostile = craft(base, tmp_path / "env.tape", env)
    sandbox = tmp_path / "sandbox"
    user_env = {**os.environ, **SANDBOXES[kind], "GITHUB_TOKEN": "ghp_real_token_of_the_user"}
    code, out, err = run("replay", hostile, "--yes", "--workdir", sandbox, cwd=user_dir,
                         env=user_env)  # fmt: skip
    assert code in (0, 1), err
    seen = (sandbox / "workspace" / "seen-env.txt").read_text()
    # (LD_PRELOAD may hold buildtape's own file-event shim, never the tape's library.)
    assert "evil" not in seen and str(canary) not in seen
    for name in ("LD_LIBRARY_PATH", "BASH_ENV", "ENV", "PYTHONSTARTUP", "XDG_CACHE_HOME",
                 "XDG_CONFIG_HOME", "GITHUB_TOKEN"):  # fmt: skip
        assert not re.search(rf"^{name}=", seen, re.M), name
    assert "ghp_real_token_of_the_user" not in seen
    notes = out.decode()
    assert ("(directory, no namespaces)" in err.decode()) == (kind == "directory")
    assert "LD_PRELOAD from the tape was dropped (--trust-env keeps it)" in notes
    assert "GITHUB_TOKEN was redacted in the tape; left unset" in notes
    assert not (canary / "inner" / "strace-ran").exists()

    # Asked for by name, a redacted variable comes from the user's environment.
    code, out, err = run("replay", hostile, "--yes", "--pass-env", "GITHUB_TOKEN",
                         "--workdir", tmp_path / "s2", env=user_env)  # fmt: skip
    assert (
        "GITHUB_TOKEN=ghp_real_token_of_the_user"
        in (tmp_path / "s2" / "workspace" / "seen-env.txt").read_text()
    )


# --- crashes ----------------------------------------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


def _event(**data: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(m: dict[str, Any]) -> None:
        m["events"].append({"t": 0.5, **data})

    return mutate


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(m: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = m
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value

    return mutate


def _cycle(m: dict[str, Any]) -> None:
    m["processes"].append({**m["processes"][0], "id": 2, "parent_id": 3, "pid": 2})
    m["processes"].append({**m["processes"][0], "id": 3, "parent_id": 2, "pid": 3})


CRASHES: dict[str, tuple[Callable[[dict[str, Any]], None], dict[str, str] | None]] = {
    "deep json": (_event(kind="event", name="x", data="@DEEP@"), {"@DEEP@": DEEP}),
    "event without name": (_event(kind="metric", value=1), None),
    "span with text times": (_event(kind="span", name="s", start_s="a", end_s=1), None),
    "metric NaN": (_event(kind="metric", name="m", value="@NAN@"), {"@NAN@": "NaN"}),
    "time 1e400": (_set("processes.0.start_s", "@INF@"), {"@INF@": "1e400"}),
    "duration Infinity": (_set("duration_s", "@INF@"), {"@INF@": "Infinity"}),
    "lone surrogate": (_set("argv", ["sh", "\ud800", "x\udfff"]), None),
    "surrogate label": (_set("labels", {"\udc80k": "v\ud83d"}), None),
    "5000-digit version": (_set("format_version", "1" * 5000), None),
    "non-octal umask": (_set("environment.umask", "0999"), None),
    "env name with =": (_set("environment.vars", {"A=B": "c"}), None),
    "process cycle": (_cycle, None),
    "big int": (_set("duration_s", "@BIG@"), {"@BIG@": "9" * 5000}),
    "mtime 1e30 ns": (_set("inputs.0.mtime_ns", "@BIG@"), {"@BIG@": "1" + "0" * 30}),
}


@pytest.mark.parametrize("case", sorted(CRASHES))
def test_malformed_content_is_refused_or_skipped_never_a_crash(
    base: Path, tmp_path: Path, case: str
) -> None:
    mutate, raw = CRASHES[case]
    hostile = craft(base, tmp_path / "crash.tape", mutate, raw)
    for args in (
        ["verify", hostile],
        ["show", hostile],
        ["show", "--json", hostile],
        ["ps", hostile],
        ["events", hostile],
        ["report", hostile, "-o", tmp_path / "r.html"],
        ["flame", hostile, "-o", tmp_path / "f.svg"],
        ["diff", base, hostile],
        ["diff", "--format", "html", base, hostile, "-o", tmp_path / "d.html"],
        ["extract", hostile, "--step", "1", "-o", tmp_path / "x"],
    ):
        shutil.rmtree(tmp_path / "x", ignore_errors=True)
        code, out, err = run(*args)
        assert code in DOCUMENTED, (case, args, code, err)
        if code not in (0, 1):
            assert_refused(code, err)
        assert not RAW_CONTROL.search(out), (case, args)


def _with_samples(base: Path, dst: Path, blob: bytes) -> Path:
    with TapeReader(base) as r:
        manifest = r.read_manifest()
        blobs = [r.read_blob(d) for d in r.blob_digests()]
    w = TapeWriter(dst)
    for data in blobs:
        w.add_blob(data)
    manifest["sampling"] = {**manifest["sampling"], "sampler": "py-spy", "rate": 100,
                            "count": 5, "samples_blob": w.add_blob(blob)}  # fmt: skip
    w.commit(manifest)
    return dst


def test_malformed_python_samples_are_skipped_and_unreadable_ones_refused(
    base: Path, tmp_path: Path
) -> None:
    doc = {
        "frames": [["compile", "build.py", 3], "garbage", ["g", "y.py", "not a line"]],
        "samples": [
            [1, 0, 1000, [0]],  # the one good sample
            [1, -5, 10, [0]], ["x"], [1, 0, 10, [99]], [1, 0, "10", [0]], {"a": 1},
        ],
    }  # fmt: skip
    hostile = _with_samples(base, tmp_path / "samples.tape", json.dumps(doc).encode())
    for args in (["flame", hostile, "-o", tmp_path / "f.svg"],
                 ["report", hostile, "-o", tmp_path / "r.html"], ["show", hostile]):  # fmt: skip
        code, _, err = run(*args)
        assert code == 0, (args, err)
    assert "compile (build.py:3)" in (tmp_path / "f.svg").read_text()
    for name, blob in (("text", b"not json"), ("deep", DEEP.encode()), ("list", b"[1, 2]")):
        bad = _with_samples(base, tmp_path / f"{name}.tape", blob)
        code, _, err = run("flame", bad, "-o", tmp_path / f"{name}.svg")
        assert_refused(code, err, "samples")
        assert not (tmp_path / f"{name}.svg").exists()


# --- resources --------------------------------------------------------------------------------

CAP = "--as=" + str(768 * 1024**2)


def _capped(*args: Any, env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    proc = subprocess.run(
        ["prlimit", CAP, sys.executable, "-m", "buildtape", *map(str, args)],
        capture_output=True, timeout=300, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) is missing")
def test_budgets_hold_before_anything_is_written(base: Path, tmp_path: Path, canary: Path) -> None:
    # One 300 MiB blob of zeros (a few hundred KB of tape), used by 64 entries.
    big = b"\0" * (300 * 1024**2)
    digest = hashlib.sha256(big).hexdigest()
    with TapeReader(base) as r:
        manifest = r.read_manifest()
        blobs = [r.read_blob(d) for d in r.blob_digests()]
    w = TapeWriter(tmp_path / "bomb.tape")
    for data in [*blobs, big]:
        w.add_blob(data)
    del big
    entries = [
        {"path": f"copy{i}.bin", "mode": 0o644, "size": 300 * 1024**2, "sha256": digest,
         "stored": True}
        for i in range(64)
    ]  # fmt: skip
    manifest["inputs"] += entries
    w.commit(manifest)
    bomb = tmp_path / "bomb.tape"
    assert bomb.stat().st_size < 1024**2

    # verify streams the large pack: it fits in the memory cap.
    code, _, err = _capped("verify", bomb)
    assert code == 0, err
    # 64 uses of one blob count 64 times: over the default ceiling, before any write.
    sandbox = tmp_path / "sandbox"
    code, _, err = _capped("replay", bomb, "--yes", "--workdir", sandbox)
    assert_refused(code, err, "BUILDTAPE_MAX_RESTORE_BYTES")
    assert not sandbox.exists() or not any(sandbox.rglob("*.bin"))
    # Lower ceilings apply the same way: per file, and per entry count.
    env = {**os.environ, "BUILDTAPE_MAX_BLOB_BYTES": str(1024**2)}
    code, _, err = _capped("replay", bomb, "--yes", "--workdir", tmp_path / "s2", env=env)
    assert_refused(code, err, "BUILDTAPE_MAX_BLOB_BYTES")
    env = {**os.environ, "BUILDTAPE_MAX_RESTORE_ENTRIES": "10"}
    code, _, err = _capped("replay", bomb, "--yes", "--workdir", tmp_path / "s3", env=env)
    assert_refused(code, err, "BUILDTAPE_MAX_RESTORE_ENTRIES")
    for s in ("s2", "s3"):
        assert not (tmp_path / s).exists() or not any((tmp_path / s).rglob("*.bin"))


def _small_fs_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


def _on_small_fs(
    mnt: Path, size: str, *args: Any, fill: bool = False, cwd: Path | None = None
) -> tuple[int, bytes, bytes]:
    """``buildtape ARGS`` with a fresh tmpfs of ``size`` at ``mnt`` (a private mount in a
    user namespace: no privilege, gone when the command ends); ``fill`` fills it first."""
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" || exit 99; '
    script += 'cat /dev/zero > "$2/fill" 2>/dev/null; ' if fill else ""
    script += 'shift 2; exec "$@"'
    mnt.mkdir(exist_ok=True)
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", size, str(mnt),
         sys.executable, "-m", "buildtape", *map(str, args)],
        capture_output=True, timeout=120, stdin=subprocess.DEVNULL, cwd=cwd,
    )  # fmt: skip
    assert proc.returncode != 99, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.skipif(not _small_fs_works(), reason="no user and mount namespaces for a tmpfs")
def test_a_full_disk_is_an_io_error(base: Path, tmp_path: Path) -> None:
    """On a real 16 MiB filesystem: a restore that would not fit is refused before
    anything is written, and writes that hit ENOSPC fail, all with exit 5 (IO_ERROR),
    one line, and no file under its final name."""
    mnt = tmp_path / "mnt"
    code, _, err = _on_small_fs(mnt, "16m", "replay", base, "--yes", "--workdir", mnt / "s")
    assert code == 5, err
    assert_refused(code, err, "free some space or restore elsewhere")
    code, _, err = _on_small_fs(mnt, "16m", "extract", base, "--step", "1", "-o", mnt / "x")
    assert code == 5, err
    assert_refused(code, err, "free some space or restore elsewhere")

    code, _, err = _on_small_fs(mnt, "1m", "flame", base, "-o", mnt / "f.svg", fill=True)
    assert code == 5, err
    assert_refused(
        code, err, f"could not write {mnt / 'f.svg'}: No space left on device; free some space"
    )
    # A recording whose tape cannot be written: the documented record failure.
    ws = tmp_path / "ws"
    ws.mkdir()
    code, _, err = _on_small_fs(
        mnt, "1m", "record", "-q", "--trace", "none", "--no-store", "-o", mnt / "t.tape",
        "--", "true", fill=True, cwd=ws,
    )  # fmt: skip
    assert code == 125, err
    assert "No space left on device" in err.decode() and "free some space" in err.decode()
    assert not any(mnt.iterdir())  # the mounts are gone, and nothing was written beneath


@pytest.mark.skipif(not _small_fs_works(), reason="no user and mount namespaces for a tmpfs")
def test_replay_and_extract_outputs_are_whole_or_absent(base: Path, tmp_path: Path) -> None:
    """`replay -o` writes the replay's tape from the sandbox's file system: on a full disk
    that copy fails, and nothing may be left under the name asked for; a directory that
    is not there yet is made (the build has run by then: failing would waste it)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    out = mnt / "replay.tape"
    script = (
        'm="$1"; shift; mount -t tmpfs -o size=1m tmpfs "$m" || exit 99; '
        'cat /dev/zero > "$m/fill" 2>/dev/null; "$@"; code=$?; rm "$m/fill"; '
        'echo "left:" $(ls -A "$m") >&2; exit $code'
    )
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(mnt), sys.executable, "-m",
         "buildtape", "replay", str(base), "--yes", "--workdir", str(tmp_path / "s"),
         "-o", str(out)],
        capture_output=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 5, proc.stderr
    *_, last, left = proc.stderr.decode().splitlines()
    assert left == "left:", left  # no tape, no .partial
    assert last == (
        f"buildtape: error: could not write the replay's tape {out}: No space left on device; "
        "free some space or choose another place with -o"
    )
    # extract: refused for want of space (it would restore more than may be used), and no
    # reproducer directory is left behind, not even an empty one.
    ex = mnt / "repro"
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(mnt), sys.executable, "-m",
         "buildtape", "extract", str(base), "--step", "1", "--into", str(ex)],
        capture_output=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 5, proc.stderr
    *_, last, left = proc.stderr.decode().splitlines()
    assert "free some space or restore elsewhere" in last and left == "left:", proc.stderr
    deep = tmp_path / "not" / "yet" / "replay.tape"
    done = buildtape("replay", base, "--yes", "--workdir", tmp_path / "s2", "-o", deep)
    assert done.returncode == 0, done.stderr
    assert TapeReader(deep).read_manifest()["argv"]


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) is missing")
def test_running_out_of_memory_is_its_own_exit_code_never_differ(
    base: Path, tmp_path: Path
) -> None:
    """Two 20 KB tapes whose outputs inflate to 195 MiB of text each: diff reads both
    within its content budget, which this memory cap cannot hold."""

    def bomb(name: str, fill: bytes) -> Path:
        with TapeReader(base) as r:
            manifest = r.read_manifest()
            blobs = [r.read_blob(d) for d in r.blob_digests()]
        big = (fill * 64 + b"\n") * (3 * 1024**2)
        w = TapeWriter(tmp_path / name)
        for data in blobs:
            w.add_blob(data)
        manifest["outputs"].append({
            "path": "big.txt", "mode": 0o100644, "size": len(big), "sha256": w.add_blob(big),
            "stored": True, "change": "created",
        })  # fmt: skip
        w.commit(manifest)
        return tmp_path / name

    a, b = bomb("a.tape", b"a"), bomb("b.tape", b"b")
    assert a.stat().st_size < 100_000
    proc = subprocess.run(
        ["prlimit", "--as=" + str(600 * 1024**2), sys.executable, "-m", "buildtape",
         "diff", str(a), str(b)],
        capture_output=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 9, proc.stderr
    assert_refused(proc.returncode, proc.stderr, "out of memory")


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) is missing")
def test_diff_unpacks_archive_outputs_within_its_budget(base: Path, tmp_path: Path) -> None:
    """Two builds' .tar.bz2 outputs of a few KB that inflate past the 64 MiB budget: diff
    compares what fits under the memory cap and lists what it did not unpack."""
    import tarfile

    def archive_tape(name: str, text: bytes) -> Path:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:bz2") as t:
            small = tarfile.TarInfo("a.txt")
            small.size = len(text)
            t.addfile(small, io.BytesIO(text))
            huge = tarfile.TarInfo("zeros.bin")
            huge.size = 80 * 1024**2
            t.addfile(huge, _Zeros(huge.size))
        data = buf.getvalue()
        assert len(data) < 64 * 1024
        with TapeReader(base) as r:
            manifest = r.read_manifest()
            blobs = [r.read_blob(d) for d in r.blob_digests()]
        w = TapeWriter(tmp_path / name)
        for blob in blobs:
            w.add_blob(blob)
        manifest["outputs"].append({
            "path": "out.tar.bz2", "mode": 0o100644, "size": len(data),
            "sha256": w.add_blob(data), "stored": True, "change": "created",
        })  # fmt: skip
        w.commit(manifest)
        return tmp_path / name

    a, b = archive_tape("a.tape", b"hi\n"), archive_tape("b.tape", b"ho\n")
    code, out, err = _capped("diff", a, b)
    assert code == 1, err
    text = out.decode()
    assert "not unpacked: member zeros.bin and the rest: past the" in text
    assert "a.txt" in text


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, read without holding them."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def test_declared_sizes_must_match_what_is_stored(base: Path, tmp_path: Path) -> None:
    def lie(m: dict[str, Any]) -> None:
        m["inputs"][0]["size"] = 1

    code, _, err = run("replay", craft(base, tmp_path / "lie.tape", lie), "--yes",
                       "--workdir", tmp_path / "s")  # fmt: skip
    assert_refused(code, err, "declares 1 bytes but stores")


def test_cycles_and_far_timestamps_end_promptly(base: Path, tmp_path: Path) -> None:
    code, _, err = run("show", craft(base, tmp_path / "cycle.tape", _cycle))
    assert_refused(code, err, "cycle")

    def far(m: dict[str, Any]) -> None:
        m["streams"]["chunks"] = [[1e9, c[1], c[2]] for c in m["streams"]["chunks"]]

    # A wait of 1e9 s would never end: the run's timeout fails the test if playback waits.
    code, out, err = run("replay", craft(base, tmp_path / "far.tape", far), "--playback")
    assert code == 0, err
    assert out == b"done\n"


def test_a_process_that_ends_after_the_build_still_precedes_the_outcome(
    base: Path, tmp_path: Path
) -> None:
    """Process ends come from the wall clock and the duration from the monotonic one: where
    they disagree (a clock step during the build, an older or crafted tape), the outcome
    still closes the event stream."""

    def late(m: dict[str, Any]) -> None:
        m["processes"][0]["end_s"] = m["duration_s"] + 5.0

    code, out, err = run("show", "--format", "json", craft(base, tmp_path / "late.tape", late))
    assert code == 0, err
    events = json.loads(out)["events"]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "build_started" and kinds[-1] == "build_completed", kinds
    assert events[-1]["t"] >= max(e["t"] for e in events)
    assert "process_exited" in kinds


# --- output hygiene ---------------------------------------------------------------------------


def test_no_raw_control_character_reaches_the_output(base: Path, tmp_path: Path) -> None:
    def dirty(m: dict[str, Any]) -> None:
        m["argv"] = ["sh", "-c", "echo hi", HOSTILE_TEXT]
        m["labels"] = {"ci\x1b]0;x\x07": HOSTILE_TEXT}
        m["processes"][0]["argv"] = m["argv"]
        m["processes"][0]["reads"] = _paths(m, "src.txt")
        m["environment"]["vars"]["EVIL\x1b"] = HOSTILE_TEXT
        m["environment"]["vars"]["PATH"] += (
            ":/changed"  # a changed variable, for diff --format html
        )
        m["outputs"].append({"path": "o\x1but\x9b.txt", "mode": 0o644, "size": 0,
                             "sha256": None, "change": "created"})  # fmt: skip
        m["warnings"].append({"kind": "k\x07", "message": HOSTILE_TEXT, "path": None})
        m["events"].append({"t": 0.1, "kind": "metric", "name": HOSTILE_TEXT, "value": 1})

    hostile = craft(base, tmp_path / "dirty.tape", dirty)
    for args in (
        ["show", hostile],
        ["show", "--json", hostile],
        ["ps", hostile],
        ["ps", "--json", hostile],
        ["events", hostile],
        ["diff", base, hostile],
        ["diff", "--format", "json", base, hostile],
        ["diff", "--format", "html", base, hostile, "-o", tmp_path / "d.html"],
        ["extract", hostile, "--step", "1", "-o", tmp_path / "x"],
        ["replay", hostile, "--workdir", tmp_path / "s"],  # the refusal message
    ):
        code, out, err = run(*args)
        assert code in DOCUMENTED, (args, code, err)
        assert not RAW_CONTROL.search(out), (args, out)
        assert not RAW_CONTROL.search(err), (args, err)
        if "--json" in args or "json" in args:
            json.loads(out)  # valid JSON whatever the tape holds

    code, out, err = run("flame", hostile, "-o", tmp_path / "f.svg")
    assert code == 0, err
    ET.fromstring((tmp_path / "f.svg").read_bytes())  # valid XML whatever the labels hold

    code, out, _ = run("show", hostile)
    assert b"\\e]0;pwned\\x07" in out  # made visible, not dropped

    # A build's own output, played back: the sequences are shown, not obeyed; its colour
    # (SGR, the one kind of sequence read) is dropped when stdout is not a terminal.
    ws = tmp_path / "noisy"
    ws.mkdir()
    noisy = tmp_path / "noisy.tape"
    buildtape(
        "record", "-q", "--trace", "none", "--no-store", "-o", noisy, "--",
        "printf", "\\033]52;c;ZXZpbA==\\007\\033[31mred\\r\\302\\233x\\n",
        cwd=ws, check=True,
    )  # fmt: skip
    code, out, err = run("replay", noisy, "--playback")
    assert code == 0 and not RAW_CONTROL.search(out + err)
    assert out == b"\\e]52;c;ZXZpbA==\\x07red\\r\\x9bx\n"


def test_diff_budgets_bound_archives_and_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """A small archive that inflates past the budget, and texts too large to align."""
    import bz2
    import io
    import tarfile

    from replay import diff_limits

    monkeypatch.setattr(diff_limits, "MAX_ARCHIVE_BYTES", 4 * 1024**2)

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as t:
        small = tarfile.TarInfo("a.txt")
        small.size = 3
        t.addfile(small, io.BytesIO(b"hi\n"))
        huge = tarfile.TarInfo("zeros.bin")
        huge.size = 2 * diff_limits.MAX_ARCHIVE_BYTES
        t.addfile(huge, io.BytesIO(bytes(huge.size)))
    data = buf.getvalue()
    assert len(data) < 64 * 1024 and len(bz2.decompress(data)) > diff_limits.MAX_ARCHIVE_BYTES
    members = diff_limits.archive_members(data, "out.tar.bz2")
    assert members is not None and members.files == {"a.txt": b"hi\n"}
    assert members.skipped and "zeros.bin" in members.skipped[0]

    # 300k lines that differ all over: the fallback is linear and says so.
    a = [f"line {i}" for i in range(300_000)]
    b = [f"line {i}" if i % 2 else f"LINE {i}" for i in range(300_000)]
    lines = diff_limits.unified_diff(a, b, "a/x", "b/x")
    assert "too large to align" in lines[2]
    # Small differences still get difflib's hunks, numbered for the whole file.
    c = list(a)
    c[150_000] = "changed"
    lines = diff_limits.unified_diff(a, c, "a/x", "b/x")
    assert lines[2] == "@@ -149999,5 +149999,5 @@"
    assert "-line 150000" in lines and "+changed" in lines


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) is missing")
def test_tape_sized_argv_and_spans_are_not_matched_quadratically(
    base: Path, tmp_path: Path
) -> None:
    """300,000 differing arguments for diff, 200,000 overlapping spans and a 20,000-deep
    process chain for flame: each finishes under the memory cap (and the run's timeout,
    which quadratic matching would blow) and says where it stopped matching exactly."""

    def long_argv(prefix: str) -> Callable[[dict[str, Any]], None]:
        def mutate(m: dict[str, Any]) -> None:
            m["argv"] = ["sh", "-c", "true", *(f"-D{prefix}{i}" for i in range(300_000))]
            m["processes"][0]["argv"] = m["argv"]

        return mutate

    a = craft(base, tmp_path / "a.tape", long_argv("A"))
    b = craft(base, tmp_path / "b.tape", long_argv("B"))
    code, out, err = _capped("diff", a, b)
    assert code == 1, err
    assert b"too many arguments to align: 300000 and 300000 differ" in out
    code, out, err = _capped("diff", "--format", "json", a, b)
    assert code == 1, err
    assert "too many arguments to align" in json.loads(out)["cause"]

    # One argument changed among 300,000: still aligned exactly, past the common ends.
    def one_changed(m: dict[str, Any]) -> None:
        long_argv("A")(m)
        m["argv"][9] = "-O3"  # the root process shares this list

    one = craft(base, tmp_path / "one.tape", one_changed)
    code, out, err = _capped("diff", a, one)
    assert code == 1, err
    assert b"-DA6 \xe2\x86\x92 -O3" in out and b"too many" not in out

    def spans_and_depth(m: dict[str, Any]) -> None:
        p0 = m["processes"][0]
        m["events"] += [
            {"t": i * 1e-6, "kind": "span", "name": f"s{i % 7}", "start_s": i * 1e-6,
             "end_s": 0.5 + i * 1e-6, "pid": p0["pid"]}
            for i in range(200_000)
        ]  # fmt: skip
        m["processes"] += [
            {**p0, "id": i, "parent_id": i - 1, "pid": 10_000 + i, "argv": ["sh", "-c", f"s{i}"]}
            for i in range(2, 20_000)
        ]

    hostile = craft(base, tmp_path / "spans.tape", spans_and_depth)
    code, _, err = _capped("flame", hostile, "-o", tmp_path / "f.svg")
    assert code == 0, err
    assert b"200000 spans overlap without nesting, too many to match pairwise" in err
    assert b"processes nested deeper than 256 are drawn inside their ancestor" in err
    ET.fromstring((tmp_path / "f.svg").read_bytes())
    # The report lays 20,000 processes on its timeline with heaps, its flamegraph as above.
    code, _, err = _capped("report", hostile, "-o", tmp_path / "r.html")
    assert code == 0, err
    assert b"s19999" in (tmp_path / "r.html").read_bytes()


def test_history_commands_show_tape_text_escaped(base: Path, tmp_path: Path) -> None:
    """A crafted tape indexed into a history: its command, labels, failing and slowest
    step, error line and metric names reach no terminal raw in history, stats, alerts,
    check or events."""

    def failing(m: dict[str, Any]) -> None:
        root = m["processes"][0]
        m["argv"] = root["argv"] = ["sh", "-c", "make", HOSTILE_TEXT]
        m["status"], m["exit_code"] = "failed", 2
        root["exit_code"] = 2
        m["labels"] = {"ci\x1b]0;x\x07": HOSTILE_TEXT, "branch": "main\r\x1b[2Kevil"}
        m["processes"].append({
            **root, "id": 2, "parent_id": 1, "pid": 4242, "exit_code": 1,
            "argv": ["cc", "-c", "x.c", HOSTILE_TEXT], "start_s": 0.0, "end_s": 0.5,
        })  # fmt: skip
        m["events"].append({"t": 0.1, "kind": "metric", "name": HOSTILE_TEXT, "value": 1})

    tapes = tmp_path / "tapes"
    tapes.mkdir()
    for i in range(3):  # a few builds, so stats and alerts have something to say
        craft(base, tapes / f"hostile{i}.tape", failing)
    home = tmp_path / "home"
    code, _, err = run("history", "--home", home, "--reindex", "--scan", tapes)
    assert code == 0, err
    outputs = {}
    for args in (
        ["history"],
        ["stats"],
        ["stats", "--by", "command"],
        ["stats", "--by", "label:branch"],
        ["alerts"],
        ["alerts", "--history"],
        ["check"],
        ["events"],
    ):
        code, out, err = run(*args, "--home", home)
        assert code in DOCUMENTED, (args, code, err)
        assert not RAW_CONTROL.search(out), (args, out)
        assert not RAW_CONTROL.search(err), (args, err)
        outputs[" ".join(args)] = out.decode()
    listing = outputs["history"].splitlines()
    assert len(listing) == 4  # the header and one row per build: no row forged by a newline
    assert "\\e]0;pwned\\x07" in listing[1]  # made visible, not dropped
    assert "cc -c x.c" in outputs["stats"] and "\\e[8mhidden" in outputs["stats"]
