"""``replay``: re-run a tape in a sandbox and say what did and did not reproduce."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from recorder.hashcache import HashCache
from recorder.model import REDACTED, FileEntry, Manifest, Process
from recorder.reading import Tape, open_tape
from recorder.record import RecordOptions, record
from recorder.toolchain import version_line
from replay.diff import DiffOptions, diff
from replay.errors import ReplayError
from replay.extract import step_inputs, step_outputs, subtree
from replay.restore import restore


@dataclass(frozen=True)
class ReplayOptions:
    # Sandbox directory; None: a temporary directory, removed afterwards unless ``keep``.
    workdir: Path | None = None
    keep: bool = False
    # Re-run only this step (a process id from ``buildtape ps``).
    step: int | None = None
    # Keep the replay's own tape here.
    output: Path | None = None
    # Use strace for the replay as the recording did (auto), or as asked.
    trace: str = "auto"


@dataclass(frozen=True)
class Drift:
    """An external input or tool that differs from the recording."""

    path: str
    recorded: str
    here: str


@dataclass(frozen=True)
class OutputCheck:
    path: str
    status: str  # same | different | missing | extra
    recorded: str | None
    replayed: str | None


@dataclass
class ReplayResult:
    reproduced: bool
    sandbox: Path
    drift: list[Drift]
    env_notes: list[str]
    checks: list[OutputCheck]
    replay_exit: int
    recorded_exit: int
    first_divergent_step: Process | None = None
    replay_tape: Path | None = None
    missing_inputs: list[str] = field(default_factory=list)
    # The diff engine's account of the recording against the replay, when it diverged.
    diff_cause: str | None = None


def shell_status(exit_code: int | None, signal_name: str | None) -> int:
    """How a shell reports an outcome: the exit code, or 128+N for death by signal N."""
    if exit_code is not None:
        return exit_code
    try:
        return 128 + int(signal.Signals[signal_name or ""])
    except KeyError:
        return 128


def make_sandbox(workdir: Path | None, prefix: str) -> tuple[Path, bool]:
    """The directory a replay runs in, and whether it is a temporary one to remove after.

    A ``--workdir`` must be new or empty: a replay never writes over what is there.
    """
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix=prefix)), True
    if workdir.exists() and any(workdir.iterdir()):
        raise ReplayError(f"{workdir} is not empty; give --workdir a new or empty directory")
    return workdir, False


def check_drift(m: Manifest, env: Mapping[str, str]) -> list[Drift]:
    """External inputs whose sha256 changed (or vanished), and tools whose version changed."""
    cache = HashCache.for_env(env)
    out = []
    for ext in m.external:
        found = cache.sha256(ext.path)
        if found is None:
            out.append(Drift(ext.path, (ext.sha256 or "?")[:12], "missing"))
        elif ext.sha256 and found[0] != ext.sha256:
            out.append(Drift(ext.path, ext.sha256[:12], (found[0] or "?")[:12]))
    for tool in m.toolchain:
        if tool.version is None or not os.path.exists(tool.path):
            continue
        here = version_line(tool.path, tool.name)
        if here and here != tool.version:
            out.append(Drift(tool.path, tool.version, here))
    return out


def replay_env(m: Manifest, current: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The recorded environment; redacted values taken from here when present, else unset."""
    env, notes = {}, []
    for name, value in sorted(m.environment.vars.items()):
        if value == REDACTED or REDACTED in value:
            if name in current:
                env[name] = current[name]
                notes.append(f"{name} was redacted in the tape; using this environment's value")
            else:
                notes.append(f"{name} was redacted in the tape and is not set here; left unset")
            continue
        env[name] = value
    return env, notes


def compare_outputs(
    expected: list[FileEntry], got: list[FileEntry], only_expected: bool
) -> list[OutputCheck]:
    want = {e.path: e for e in expected if e.change != "deleted"}
    have = {e.path: e for e in got if e.change != "deleted"}
    checks = []
    for path in sorted(set(want) | (set() if only_expected else set(have))):
        w, h = want.get(path), have.get(path)
        if w is None:
            checks.append(OutputCheck(path, "extra", None, h.sha256 if h else None))
        elif h is None:
            checks.append(OutputCheck(path, "missing", w.sha256, None))
        else:
            status = "same" if w.sha256 == h.sha256 else "different"
            checks.append(OutputCheck(path, status, w.sha256, h.sha256))
    return checks


@contextlib.contextmanager
def _umask(mask: str) -> Iterator[None]:
    old = os.umask(int(mask, 8))
    try:
        yield
    finally:
        os.umask(old)


@dataclass
class Run:
    """One run of a tape's command (or of one step) in a sandbox."""

    exit_status: int
    expected_status: int
    expected: list[FileEntry]
    outputs: list[FileEntry]
    missing_inputs: list[str]
    tape: Path


def run_in_sandbox(
    tape: Tape,
    sandbox: Path,
    env: Mapping[str, str],
    step: int | None,
    umask: str,
    trace: str = "auto",
    output: Path | None = None,
    notify: Callable[[str], None] = lambda _: None,
) -> Run:
    """Restore the workspace under ``sandbox``, run the command (or step) under ``record``."""
    m = tape.manifest
    workspace = sandbox / "workspace"
    if step is None:
        entries, expected = m.inputs, m.outputs
        argv, rel_cwd = m.argv, m.cwd_in_workspace
        expected_status = shell_status(m.exit_code, m.signal)
    else:
        chosen = next(p for p in subtree(m, step) if p.id == step)
        entries, expected = step_inputs(m, chosen.id), step_outputs(m, chosen.id)
        argv, rel_cwd = chosen.argv, os.path.relpath(chosen.cwd, m.workspace)
        expected_status = shell_status(chosen.exit_code, chosen.signal)
        for e in expected:
            (workspace / e.path).parent.mkdir(parents=True, exist_ok=True)
    restored = restore(tape, entries, workspace)
    cwd = workspace / rel_cwd
    cwd.mkdir(parents=True, exist_ok=True)
    with _umask(umask):
        result = record(
            RecordOptions(
                argv=tuple(argv),
                output=output or sandbox / "replay.tape",
                workspace=workspace,
                cwd=cwd,
                trace=trace,
                env=env,
                use_tty=False,
                stacks="none",
            ),
            notify,
        )
    with open_tape(result.tape) as replayed:
        outputs = replayed.manifest.outputs
    return Run(
        result.exit_status, expected_status, expected, outputs, restored.missing, result.tape
    )


def replay(
    tape: Tape,
    options: ReplayOptions,
    current_env: Mapping[str, str],
    notify: Callable[[str], None] = lambda _: None,
) -> ReplayResult:
    m = tape.manifest
    drift = check_drift(m, current_env)
    env, env_notes = replay_env(m, current_env)
    sandbox, temp = make_sandbox(options.workdir, "buildtape-replay-")
    try:
        run = run_in_sandbox(
            tape, sandbox, env, options.step, m.environment.umask, options.trace,
            options.output, notify,
        )  # fmt: skip
        checks = compare_outputs(run.expected, run.outputs, only_expected=options.step is not None)
        reproduced = all(c.status == "same" for c in checks)
        first = None
        cause = None
        if not reproduced:
            bad = {c.path for c in checks if c.status != "same"}
            writers = [p for p in m.processes if bad & set(p.writes)]
            first = min(writers, key=lambda p: (p.start_s, p.id)) if writers else None
            if options.step is None:
                # The same engine as `buildtape diff`, recording against replay.
                with open_tape(run.tape) as replayed:
                    cause = diff(tape, replayed, DiffOptions()).cause
        return ReplayResult(
            reproduced=reproduced and run.exit_status == run.expected_status,
            sandbox=sandbox,
            drift=drift,
            env_notes=env_notes,
            checks=checks,
            replay_exit=run.exit_status,
            recorded_exit=run.expected_status,
            first_divergent_step=first,
            replay_tape=run.tape if (options.output or options.keep or not temp) else None,
            missing_inputs=run.missing_inputs,
            diff_cause=cause,
        )
    finally:
        if temp and not options.keep:
            shutil.rmtree(sandbox, ignore_errors=True)
