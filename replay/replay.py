"""``replay``: re-run a tape in a sandbox and say what did and did not reproduce."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from recorder import trust
from recorder.hashcache import HashCache
from recorder.model import REDACTED, FileEntry, Manifest, Process
from recorder.tape import Tape, open_tape
from recorder.toolchain import tool_name, version_line
from replay.errors import ReplayError, RunError, SandboxError
from replay.run import Run, RunStart, run_in_sandbox
from replay.sandbox import Isolation, choose_isolation
from replay.verdict import Finding, explain, file_content

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
    # auto | bwrap | directory (see replay.sandbox); auto follows $BUILDTAPE_SANDBOX.
    sandbox: str = "auto"
    # Keep variables a tape must not set (``UNTRUSTED_ENV``) instead of dropping them.
    trust_env: bool = False
    # Variables taken from the replaying user's environment (redacted ones included).
    pass_env: tuple[str, ...] = ()
    # The tape's name as the banner shows it.
    tape_name: str = ""
    # Send the build's stdout to stderr (keeps stdout for a JSON verdict).
    build_output_to_stderr: bool = False


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
    # Why each output that is not "same" differs; expected ones do not count.
    findings: list[Finding] = field(default_factory=list)
    # bwrap (workspace at the recorded path) or directory (restored elsewhere).
    isolation: str = "directory"
    # Where the build saw its workspace, and where the recording had it.
    place: str = ""
    recorded_place: str = ""
    # One sentence when the replay could not run at the recorded path.
    isolation_note: str | None = None
    step: int | None = None
    # What the run could not put back as recorded (intermediates, listed-only files).
    notes: list[str] = field(default_factory=list)


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
        # Keyed by content and by the name the tool was run as (``cc`` and ``gcc`` may
        # print different version lines): the same sha256 is the same tool.
        if not os.path.exists(tool.path):
            recorded = _tool_text(tool.name, tool.sha256, tool.version)
            out.append(Drift(tool.path, recorded, "missing"))
            continue
        found = cache.sha256(tool.path)
        sha_here = found[0] if found else None
        if tool.sha256 and sha_here == tool.sha256:
            continue
        here = version_line(tool.path, tool.name) if _system_tool(tool.path, tool.name) else None
        if (tool.sha256 and sha_here and sha_here != tool.sha256) or (
            here and tool.version and here != tool.version
        ):
            out.append(
                Drift(
                    tool.path,
                    _tool_text(tool.name, tool.sha256, tool.version),
                    _tool_text(tool.name, sha_here, here),
                )
            )
    return out


def _tool_text(name: str, sha256: str | None, version: str | None) -> str:
    return f"{name} {(sha256 or '?')[:12]} ({version or 'no version line'})"


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
            # A symlink has no content digest: its target is what it holds.
            status = "same" if (w.sha256, w.link) == (h.sha256, h.link) else "different"
            checks.append(OutputCheck(path, status, w.sha256, h.sha256))
    return checks


def replay(
    tape: Tape,
    options: ReplayOptions,
    current_env: Mapping[str, str],
    notify: Callable[[str], None] = lambda _: None,
    started: Callable[[RunStart], None] = lambda _: None,
) -> ReplayResult:
    m = tape.manifest
    drift = check_drift(m, current_env)
    env, env_notes = replay_env(m, current_env, options.trust_env, options.pass_env)
    try:
        isolation = choose_isolation(options.sandbox, current_env)
    except SandboxError as exc:
        raise ReplayError(str(exc)) from exc
    sandbox, temp = make_sandbox(options.workdir, "buildtape-replay-")
    try:
        try:
            run = run_in_sandbox(
                tape, sandbox, env, options.step, m.environment.umask, _trace(m, options),
                options.output, notify, isolation, started=started, tape_name=options.tape_name,
                build_stdout=2 if options.build_output_to_stderr else 1,
            )  # fmt: skip
        except RunError as exc:
            raise ReplayError(str(exc)) from exc
        checks = compare_outputs(run.expected, run.outputs, only_expected=options.step is not None)
        findings = judge(tape, run, checks, drift, sandbox)
        if run.missing_inputs:
            # Without all of its inputs a step says nothing of its determinism.
            findings = [
                Finding(
                    f.path, "incomplete",
                    "the replay lacked inputs the tape does not hold (listed as not in the "
                    "tape): this says nothing of determinism",
                ) if f.reason == "nondeterministic" else f
                for f in findings
            ]  # fmt: skip
        expected = {f.path for f in findings if f.expected}
        reproduced = all(c.status == "same" or c.path in expected for c in checks)
        first = None
        cause = None
        if not reproduced:
            bad = {c.path for c in checks if c.status != "same" and c.path not in expected}
            writers = [p for p in m.processes if bad & set(p.writes)]
            first = min(writers, key=lambda p: (p.start_s, p.id)) if writers else None
            if options.step is None:
                cause = _diff_cause(tape, options, env, isolation, sandbox, run, notify)
        return ReplayResult(
            reproduced=reproduced and run.exit_status == run.expected_status,
            sandbox=sandbox,
            drift=drift,
            env_notes=env_notes,
            notes=run.notes,
            checks=checks,
            replay_exit=run.exit_status,
            recorded_exit=run.expected_status,
            first_divergent_step=first,
            replay_tape=run.tape if (options.output or options.keep or not temp) else None,
            missing_inputs=run.missing_inputs,
            diff_cause=cause,
            findings=findings,
            isolation=run.isolation,
            place=run.place,
            recorded_place=m.workspace,
            isolation_note=isolation_note(isolation, m.workspace, run.place),
            step=options.step,
        )
    finally:
        if temp and not options.keep:
            shutil.rmtree(sandbox, ignore_errors=True)


def _trace(m: Manifest, options: ReplayOptions) -> str:
    """The tracer of the replay's own recording: the tape's, unless one was asked for.
    Tracers see different things (strace, the dynamic loader's opens of libc): the diff
    of a tape recorded with --trace strace against a replay under the interposer named
    `reads /lib/x86_64-linux-gnu/libc.so.6 only in A` as the cause."""
    recorded = m.tracing.mode
    return (
        recorded if options.trace == "auto" and recorded in ("strace", "preload") else options.trace
    )


def _diff_cause(
    tape: Tape,
    options: ReplayOptions,
    env: Mapping[str, str],
    isolation: Isolation,
    sandbox: Path,
    run: Run,
    notify: Callable[[str], None],
) -> str | None:
    """The ``diff`` engine's account of the recording against the replay's own tape.

    A run without the recorder has no tape: then a second run, under the recorder, gives
    the account (only a diverged whole-build replay pays for it).
    """
    from replay.diff import DiffOptions, diff  # only when it diverged

    replayed = run.tape
    if replayed is None:
        notify("the replay diverged; running it again under the recorder for diff's account")
        again = run_in_sandbox(
            tape, sandbox / "recorded", env, None, tape.manifest.environment.umask,
            _trace(tape.manifest, options), None, notify, isolation, traced=True,
            build_stdout=2 if options.build_output_to_stderr else 1,
        )  # fmt: skip
        replayed = again.tape
    if replayed is None:
        return None
    with open_tape(replayed) as t:
        return diff(tape, t, DiffOptions()).cause


def isolation_note(isolation: Isolation, recorded: str, place: str) -> str | None:
    """The one sentence a replay outside the recorded path owes its reader."""
    if isolation.kind == "bwrap":
        return None
    return (
        f"{isolation.reason}, so the workspace was restored at {place} instead of {recorded}: "
        "outputs that embed the build directory (debug info from -g, files CMake or "
        "configure generate, Go binaries built without -trimpath) may differ for that reason"
    )


def judge(
    recorded: Tape,
    run: Run,
    checks: list[OutputCheck],
    drift: list[Drift],
    sandbox: Path,
    path_varied_on_purpose: bool = False,
) -> list[Finding]:
    """A reason for every output that is not the same (see ``replay.verdict``); the
    replayed contents are read from the sandbox's workspace."""
    want = {e.path: e for e in run.expected}
    drifted = {d.path: f"{d.recorded} in the tape, {d.here} here" for d in drift}
    workspace = sandbox / "workspace"
    out = []
    for c in checks:
        if c.status == "same":
            continue
        out.append(
            explain(
                c.path,
                c.status,
                (recorded, want.get(c.path)),
                functools.partial(file_content, workspace / c.path),
                recorded.manifest.workspace,
                run.place,
                drifted,
                path_varied_on_purpose,
            )
        )
    return out
