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

from recorder import trust
from recorder.hashcache import HashCache
from recorder.model import REDACTED, FileEntry, Manifest, Process
from recorder.reading import Tape, open_tape
from recorder.record import RecordOptions, record
from recorder.toolchain import tool_name, version_line
from replay.diff import DiffOptions, diff
from replay.extract import step_inputs, step_outputs, subtree
from replay.restore import make_dirs_inside, restore


class ReplayError(Exception):
    """The replay could not run; the message says why."""


class ConsentRequired(ReplayError):
    """The tape was not recorded here and nobody could be asked (no terminal, no --yes)."""


# Variables that make programs load code or read configuration from where they point:
# a tape never sets them for a replay unless the user passes --trust-env.
UNTRUSTED_ENV = frozenset(
    {
        "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "GCONV_PATH", "BASH_ENV", "ENV",
        "PROMPT_COMMAND", "SHELLOPTS", "BASHOPTS", "PS4", "PYTHONSTARTUP", "PYTHONHOME",
        "PYTHONUSERBASE", "PERL5OPT", "RUBYOPT", "NODE_OPTIONS", "JAVA_TOOL_OPTIONS",
        "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_EXEC_PATH",
    }
)  # fmt: skip
UNTRUSTED_ENV_PREFIXES = ("LD_", "XDG_", "GIT_CONFIG_", "BUILDTAPE_")


def untrusted_env_name(name: str) -> bool:
    return name in UNTRUSTED_ENV or name.startswith(UNTRUSTED_ENV_PREFIXES)


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
    # Keep variables a tape must not set (``UNTRUSTED_ENV``) instead of dropping them.
    trust_env: bool = False
    # Variables taken from the replaying user's environment (redacted ones included).
    pass_env: tuple[str, ...] = ()


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
        if tool.version is None or not _system_tool(tool.path, tool.name):
            continue
        here = version_line(tool.path, tool.name)
        if here and here != tool.version:
            out.append(Drift(tool.path, tool.version, here))
    return out


# Directories whose programs check_drift may run (with --version) on the tape's word.
_SYSTEM_DIRS = ("/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/", "/opt/")


def _system_tool(path: str, name: str) -> bool:
    """A tool the tape names is asked its version only if it is a known tool installed in a
    system directory: a tape must not make the host run a program of its choosing."""
    if not path.startswith("/") or tool_name(path) != name:
        return False
    real = os.path.realpath(path)
    return real.startswith(_SYSTEM_DIRS) and os.path.isfile(real) and os.access(real, os.X_OK)


def replay_env(
    m: Manifest,
    current: Mapping[str, str],
    trust_env: bool = False,
    pass_env: tuple[str, ...] = (),
) -> tuple[dict[str, str], list[str]]:
    """The recorded environment, minus what a tape must never set, and the notes on it.

    Variables of ``UNTRUSTED_ENV`` are dropped unless ``trust_env``; a redacted variable
    is left unset unless the user names it in ``pass_env`` (then this environment's value
    is used, as for any variable named there).
    """
    env, notes = {}, []
    for name, value in sorted(m.environment.vars.items()):
        shown = trust.printable(name)
        if name in pass_env:
            if name in current:
                env[name] = current[name]
                notes.append(f"{shown}: using this environment's value (--pass-env)")
            else:
                notes.append(f"{shown} was named by --pass-env but is not set here; left unset")
            continue
        if value == REDACTED or REDACTED in value:
            notes.append(
                f"{shown} was redacted in the tape; left unset "
                f"(--pass-env {shown} uses this environment's value)"
            )
            continue
        if not trust_env and untrusted_env_name(name):
            notes.append(f"{shown} from the tape was dropped (--trust-env keeps it)")
            continue
        env[name] = value
    for name in pass_env:
        if name not in m.environment.vars and name in current:
            env[name] = current[name]
            notes.append(f"{trust.printable(name)}: using this environment's value (--pass-env)")
    return env, notes


def environment_changes(
    env: Mapping[str, str], current: Mapping[str, str]
) -> list[tuple[str, str, str | None]]:
    """How a replay's environment differs from ``current``: (sign, name, value).

    ``+`` set by the tape, ``~`` changed from this environment's value, ``-`` unset.
    """
    out: list[tuple[str, str, str | None]] = []
    for name in sorted(set(env) | set(current)):
        if name not in current:
            out.append(("+", name, env[name]))
        elif name not in env:
            out.append(("-", name, None))
        elif env[name] != current[name]:
            out.append(("~", name, env[name]))
    return out


def needs_consent(tape: Tape, recorded_here: Callable[[str], bool]) -> bool:
    """Whether to ask before running ``tape``: unless this user recorded it on this machine.

    The answer comes from ``recorded_here`` (a local record of the manifests this user's
    recordings wrote, keyed by the manifest's sha256), never from what the tape says, such
    as its hostname.
    """
    return not recorded_here(tape.reader.manifest_sha256)


def step_cwd(m: Manifest, step: Process) -> str:
    """A step's cwd relative to the workspace, refused when it lies outside it."""
    rel = trust.relative_to_workspace(step.cwd, m.workspace)
    if rel is None:
        raise ReplayError(
            f"step {step.id} ran outside the workspace ({trust.printable(step.cwd)}); "
            "it cannot be replayed in the sandbox"
        )
    return rel


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
        argv, rel_cwd = chosen.argv, step_cwd(m, chosen)
        expected_status = shell_status(chosen.exit_code, chosen.signal)
    restored = restore(tape, entries, workspace)
    root = workspace.resolve()
    for e in expected:  # the step may expect its output directories to exist
        make_dirs_inside(root, os.path.dirname(e.path))
    cwd = make_dirs_inside(root, rel_cwd)
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
    env, env_notes = replay_env(m, current_env, options.trust_env, options.pass_env)
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
