"""``record``: run a build command and write everything it did into one tape."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

from recorder import __version__
from recorder.background import Background
from recorder.events import parse_event_line
from recorder.git import git_toplevel
from recorder.hashcache import HashCache
from recorder.host import current_umask, host_info, locale_settings, ulimits
from recorder.host import timezone as tz_name
from recorder.model import (
    BuildWarning,
    Chunk,
    Environment,
    Event,
    ExternalFile,
    Manifest,
    Process,
    Sampling,
    Streams,
    Tracing,
)
from recorder.preload import LOG_VAR, FileLog, build_shim, preload_env
from recorder.sampling import Segment, choose_sampler
from recorder.secrets import Redaction, Scrubber, SecretPolicy, redact_environment
from recorder.strace_parser import TracedProcess
from recorder.streams import Captured, StreamPump
from recorder.tail import LineTail
from recorder.tape import FORMAT_VERSION, TapeError, TapeWriter
from recorder.toolchain import fingerprint
from recorder.tracing import (
    NoTracer,
    ProcTracer,
    StraceTracer,
    Tracer,
    TracerChoice,
    choose_tracer,
    fallback_notice,
)
from recorder.workspace import git_state, rescan, scan

EVENTS_VAR = "BUILDTAPE_EVENTS"
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_OUR_VARS = (EVENTS_VAR, LOG_VAR)


class RecordError(Exception):
    """Recording could not start or could not be written."""


class CommandNotFound(RecordError):
    pass


class CommandNotExecutable(RecordError):
    pass


class TapeWriteFailed(RecordError):
    """The build ran but its tape could not be written; ``build_status`` is how it ended."""

    def __init__(self, message: str, build_status: int | None) -> None:
        super().__init__(message)
        self.build_status = build_status


@dataclass(frozen=True)
class RecordOptions:
    """What to record and how. Defaults here are the CLI's defaults."""

    argv: tuple[str, ...]
    # Tape path; None: <tapes_dir>/<UTC time>-<command>-<pid>.tape.
    output: Path | None = None
    # Where default tape names go; None: .buildtape/tapes in the workspace.
    tapes_dir: Path | None = None
    # Root whose files are snapshotted; None: the git top level of cwd, else cwd.
    workspace: Path | None = None
    # Where the build runs; None: the current directory.
    cwd: Path | None = None
    # auto | strace | proc | none
    trace: str = "auto"
    # auto | preload | strace: where per-process file events come from. auto: the
    # LD_PRELOAD shim when it can be built (no ptrace stops), else strace's openat.
    file_events: str = "auto"
    # Globs (on the relative path or the file name) left out of the snapshots.
    excludes: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    secrets: SecretPolicy = field(default_factory=SecretPolicy)
    # Files larger than this are hashed but their content is not stored.
    max_store_bytes: int = 64 * 1024 * 1024
    # auto | py-spy | pyinstrument | none: how Python processes are sampled.
    stacks: str = "auto"
    # Samples per second of each Python process.
    rate: int = 100
    # zstd level of the content packs (3: fast; the manifest is always compressed at 9).
    # Give the build a pty for each of our streams that is a terminal.
    use_tty: bool = True
    compression_level: int = 3
    # The build's environment; None: this process's environment.
    env: Mapping[str, str] | None = None


@dataclass(frozen=True)
class RecordResult:
    tape: Path
    manifest: Manifest
    # What a transparent wrapper exits with: the build's code, or 128+N for signal N.
    exit_status: int
    # The build's stderr as stored in the tape (secrets scrubbed), for the history's
    # error lines without reading the tape back.
    stderr: bytes = b""


def _resolve_command(argv0: str, env: Mapping[str, str], cwd: Path) -> str:
    if "/" in argv0:
        path = (cwd / argv0) if not argv0.startswith("/") else Path(argv0)
        if not path.exists():
            raise CommandNotFound(f"command not found: {argv0}")
        if path.is_dir() or not os.access(path, os.X_OK):
            raise CommandNotExecutable(f"command is not executable: {argv0}")
        return str(path)
    found = shutil.which(argv0, path=env.get("PATH", os.defpath))
    if found is None:
        raise CommandNotFound(f"command not found: {argv0} (not on PATH)")
    return found


def _default_tape_path(tapes_dir: Path, argv0: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = os.path.basename(argv0) or "build"
    return tapes_dir / f"{stamp}-{name}-{os.getpid()}.tape"


def _iso(ts: float) -> str:
    return (
        datetime.fromtimestamp(ts, timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class _EventsTail:
    """Parses lines appended to the events file while the build runs, timing each arrival."""

    def __init__(self, path: Path, t0: float, wall0: float) -> None:
        self._tail = LineTail(path, errors="replace")
        self._t0, self._wall0 = t0, wall0
        self._lineno = 0
        self.events: list[Event] = []

    def tick(self) -> None:
        self._add(self._tail.lines())

    def close(self) -> None:
        self._add(self._tail.close())

    def _add(self, lines: list[str]) -> None:
        for line in lines:
            self._lineno += 1
            if line.strip():
                arrived = time.monotonic() - self._t0
                self.events.append(parse_event_line(line, self._lineno, arrived, self._wall0))


@dataclass
class _Run:
    returncode: int
    interrupted_by: str | None
    traced: list[TracedProcess]
    captured: Captured
    events: list[Event]
    wall0: float
    duration: float
    sampler: str = "none"
    sampler_notice: str | None = None
    segments: list[Segment] = field(default_factory=list)


def _spawn(
    argv: list[str], cwd: Path, env: dict[str, str], fds: tuple[int, int]
) -> subprocess.Popen[bytes]:
    # Its own process group, so forwarded signals reach the whole build at once.
    kwargs: dict[str, Any] = {}
    if sys.version_info >= (3, 11):
        kwargs["process_group"] = 0
    else:  # pragma: no cover - Python 3.10
        kwargs["preexec_fn"] = os.setpgrp
    return subprocess.Popen(argv, cwd=cwd, env=env, stdout=fds[0], stderr=fds[1], **kwargs)


def _run_build(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    tracer: Tracer,
    use_tty: bool,
    workdir: Path,
    shim: Path | None,
    stacks: str,
    rate: int,
    ptrace_ok: bool,
    while_building: Callable[[], object] | None = None,
) -> _Run:
    events_path = workdir / "events.jsonl"
    events_path.touch()
    env = {**env, EVENTS_VAR: str(events_path)}
    file_log = None
    if shim is not None:
        file_log = FileLog(workdir / "files.log")
        env = preload_env(env, shim, workdir / "files.log")
    t0, wall0 = time.monotonic(), time.time()
    sampler, sampler_notice = choose_sampler(stacks, ptrace_ok, env, workdir, rate, wall0)
    if sampler is not None:
        env = sampler.child_env(env)
    pump = StreamPump(sys.stdout.fileno(), sys.stderr.fileno(), use_tty, t0)
    tail = _EventsTail(events_path, t0, wall0)
    interrupted: list[str] = []
    proc = _spawn(tracer.wrap(argv), cwd, env, pump.child_fds())
    pump.close_child_fds()
    tracer.started(proc.pid)
    meanwhile = Background(while_building, "meanwhile") if while_building else None

    def forward(signum: int, frame: FrameType | None) -> None:
        interrupted.append(signal.Signals(signum).name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in FORWARDED_SIGNALS:
            previous[sig] = signal.signal(sig, forward)
    done = threading.Event()

    def wait_build() -> None:
        proc.wait()
        done.set()

    waiter = threading.Thread(target=wait_build, daemon=True)
    waiter.start()

    def tick() -> None:
        tracer.tick()
        tail.tick()
        if sampler is not None:
            for pid, exe in tracer.drain_execs():
                sampler.process_started(pid, exe)
        if file_log is not None:
            file_log.tick()

    try:
        pump.run(done.is_set, tick)
        while not done.wait(0.05):
            tick()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    duration = time.monotonic() - t0
    traced = tracer.finish()
    if file_log is not None:
        file_log.attach(traced)
    tail.close()
    segments = sampler.finish() if sampler is not None else []
    if meanwhile is not None:
        # Only the caller's preparation: the caller meets any failure again when it does the
        # real work, and the tape must not be lost to it.
        with contextlib.suppress(Exception):
            meanwhile.result()
    return _Run(
        returncode=proc.returncode,
        interrupted_by=interrupted[0] if interrupted else None,
        traced=traced,
        captured=pump.captured,
        events=tail.events,
        wall0=wall0,
        duration=duration,
        sampler=sampler.name if sampler is not None else "none",
        sampler_notice=sampler_notice,
        segments=segments,
    )


def _relative(path: str, workspace: str) -> str:
    """Workspace paths become relative; others stay absolute."""
    if path == workspace:
        return "."
    if path.startswith(workspace + "/"):
        return path[len(workspace) + 1 :]
    return path


def _processes(run: _Run, argv: list[str], workspace: str, cwd: str) -> list[Process]:
    traced = sorted(run.traced, key=lambda p: (p.start, p.pid))
    ids = {p.pid: i for i, p in enumerate(traced, start=1)}
    out = []
    for i, tp in enumerate(traced, start=1):
        root = tp.parent_pid is None or tp.parent_pid not in ids
        exit_code, sig = tp.exit_code, tp.signal
        if root and exit_code is None and sig is None:
            exit_code, sig = _split_returncode(run.returncode)
        out.append(
            Process(
                id=i,
                pid=tp.pid,
                parent_id=None if root else ids[tp.parent_pid] if tp.parent_pid else None,
                argv=tp.argv or (argv if root else []),
                exe=tp.exe or (argv[0] if root else ""),
                cwd=tp.exec_cwd or tp.cwd or cwd,
                start_s=max(0.0, tp.start - run.wall0),
                end_s=None if tp.end is None else max(0.0, tp.end - run.wall0),
                exit_code=exit_code,
                signal=sig,
                reads=[_relative(p, workspace) for p in tp.reads],
                writes=[_relative(p, workspace) for p in tp.writes],
                deleted=[_relative(p, workspace) for p in tp.deleted],
            )
        )
    return out


def _split_returncode(rc: int) -> tuple[int | None, str | None]:
    if rc < 0:
        try:
            return None, signal.Signals(-rc).name
        except ValueError:
            return None, f"SIG{-rc}"
    return rc, None


def _external_files(processes: list[Process], cache: HashCache) -> list[ExternalFile]:
    written = {p for proc in processes for p in (*proc.writes, *proc.deleted)}
    candidates = {p for proc in processes for p in proc.reads if p.startswith("/")}
    candidates |= {proc.exe for proc in processes if proc.exe.startswith("/")}
    out = []
    for path in sorted(candidates - written):
        found = cache.sha256(path)
        if found is not None:
            out.append(ExternalFile(path, found[0], found[1]))
    return out


def _streams(captured: Captured, scrubber: Scrubber, writer: TapeWriter) -> tuple[Streams, bytes]:
    """The streams' record in the manifest, and the scrubbed stderr stored for it."""
    blobs: dict[str, str | None] = {}
    sizes: dict[str, list[int]] = {}
    stored: dict[str, bytes] = {}
    for name in ("stdout", "stderr"):
        data, new_sizes = scrubber.stream(
            captured.joined(name), [len(d) for _, s, d in captured.chunks if s == name]
        )
        blobs[name] = writer.add_blob(data) if data else None
        sizes[name] = new_sizes
        stored[name] = data
    chunks = []
    cursor = {"stdout": 0, "stderr": 0}
    for t, name, _ in captured.chunks:
        chunks.append(Chunk(t, name, sizes[name][cursor[name]]))
        cursor[name] += 1
    return Streams(blobs["stdout"], blobs["stderr"], chunks), stored["stderr"]


def _sampling(
    run: _Run, processes: list[Process], rate: int, scrubber: Scrubber, writer: TapeWriter
) -> Sampling:
    """Store the Python samples, attributed to recorded processes, as one JSON blob."""
    if run.sampler == "none":
        return Sampling(notice=run.sampler_notice)
    ids = {p.pid: p.id for p in processes}
    frames: dict[tuple[str, str, int], int] = {}
    samples = []
    for seg in sorted(run.segments, key=lambda s: (s.start_us, s.pid)):
        if seg.pid not in ids:
            continue
        stack = [frames.setdefault(f, len(frames)) for f in seg.stack]
        samples.append([ids[seg.pid], seg.start_us, seg.dur_us, stack])
    blob = None
    if samples:
        doc = {"frames": [list(f) for f in frames], "samples": samples}
        text = scrubber.text(json.dumps(doc, separators=(",", ":")))
        blob = writer.add_blob(text.encode())
    return Sampling(run.sampler, rate, run.sampler_notice, blob, len(samples))


def _file_events(requested: str, mode: str, env: Mapping[str, str]) -> Path | None:
    """The shim library to preload, or None when strace (or nothing) reports file events."""
    if mode == "none" or requested == "strace":
        return None
    shim = build_shim(env)
    if shim.library is None and requested == "preload":
        raise RecordError(f"--file-events preload was asked for, but {shim.reason}")
    return shim.library


def _tracing(options: RecordOptions, env: Mapping[str, str]) -> tuple[TracerChoice, Path | None]:
    """The tracer that can run here, and the file-event shim to preload with it."""
    choice = choose_tracer(options.trace, env)
    return choice, _file_events(options.file_events, choice.mode, env)


def record(
    options: RecordOptions,
    notify: Callable[[str], None] = lambda _: None,
    while_building: Callable[[], object] | None = None,
) -> RecordResult:
    """Run ``options.argv``, pass its output through, and write its tape.

    ``notify`` receives one-line notices (tracing fallback, secrets found in outputs)
    at the moment they apply; the caller decides how to show them. ``while_building``
    runs in a thread once the build has started, for the caller's own preparations
    (imports for what it does with the tape), so they are not added to the build's time.
    """
    if not options.argv:
        raise RecordError("no command given; put the build command after --")
    env = dict(os.environ if options.env is None else options.env)
    for var in _OUR_VARS:
        env.pop(var, None)
    cwd = (options.cwd or Path.cwd()).resolve()
    _resolve_command(options.argv[0], env, cwd)
    workspace = (options.workspace or git_toplevel(cwd) or cwd).resolve()
    if not workspace.is_dir():
        raise RecordError(f"workspace {workspace} is not a directory")
    tapes_dir = options.tapes_dir or workspace / ".buildtape" / "tapes"
    tape_path = (options.output or _default_tape_path(tapes_dir, options.argv[0])).absolute()
    # Probing strace and asking git wait on other programs: let them overlap the scan.
    # buildtape's own helpers (strace probe, shim compiler) get buildtape's environment,
    # never the build's: a replayed tape's PATH, LD_PRELOAD or XDG_CACHE_HOME must not reach them.
    tracing = Background(lambda: _tracing(options, os.environ), "probe")
    git_later = Background(lambda: git_state(workspace), "git")
    redaction: Redaction = redact_environment(env, options.secrets)
    scrubber = redaction.scrubber()
    warnings: list[BuildWarning] = []
    writer = TapeWriter(tape_path, level=options.compression_level)
    excludes = options.excludes
    for own in (tape_path, writer.temporary_path):
        rel = _relative(str(own), str(workspace))
        if not rel.startswith("/"):
            excludes += (rel,)

    def storer(kind: str) -> Callable[[str, bytes, str], str | None]:
        def store(rel: str, data: bytes, sha256: str) -> str | None:
            if scrubber.found_in(data):
                msg = f"a secret value appears in {kind} file {rel}; its content was not stored"
                warnings.append(BuildWarning(f"secret_in_{kind}", msg, rel))
                notify(msg)
                return None
            return writer.add_blob(data, sha256)

        return store

    build_status: int | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="buildtape-") as tmp:
            workdir = Path(tmp)
            umask = current_umask()
            before = scan(workspace, excludes, storer("input"), options.max_store_bytes)
            writer.flush()  # the inputs compress while the build runs
            git = git_later.result()
            choice, shim = tracing.result()
            files = "preload" if shim else "strace" if choice.mode == "strace" else "none"
            notice = None
            if choice.fallback_reason:
                notice = fallback_notice(choice.fallback_reason, files)
                notify(notice)
            tracer: Tracer
            if choice.mode == "strace":
                assert choice.strace is not None
                tracer = StraceTracer(choice.strace, workdir, str(cwd), trace_files=shim is None)
            elif choice.mode == "proc":
                tracer = ProcTracer(str(cwd))
            else:
                tracer = NoTracer(str(cwd))
            run = _run_build(
                list(options.argv), cwd, env, tracer, options.use_tty, workdir, shim,
                options.stacks, options.rate, choice.mode == "strace", while_building,
            )  # fmt: skip
            code, killed_by = _split_returncode(run.returncode)
            build_status = code if code is not None else 128 + _signum(killed_by)
            changes = rescan(workspace, excludes, before, storer("output"), options.max_store_bytes)
            writer.flush()  # the outputs compress while the manifest is put together
        processes = _processes(run, list(options.argv), str(workspace), str(cwd))
        cache = HashCache.for_env(os.environ)
        exit_code, sig = _split_returncode(run.returncode)
        if processes and processes[0].parent_id is None and choice.mode == "strace":
            exit_code, sig = processes[0].exit_code, processes[0].signal
        if run.interrupted_by:
            status = "interrupted"
        elif exit_code == 0 and sig is None:
            status = "succeeded"
        else:
            status = "failed"
        for ev in run.events:
            if ev.kind == "invalid_event":
                warnings.append(
                    BuildWarning("invalid_event", f"line {ev.data['line']}: {ev.data['reason']}")
                )
        outputs = changes.entries()
        streams, stderr = _streams(run.captured, scrubber, writer)
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            buildtape_version=__version__,
            argv=list(options.argv),
            cwd=str(cwd),
            workspace=str(workspace),
            status=status,
            exit_code=exit_code,
            signal=sig,
            started_at=_iso(run.wall0),
            ended_at=_iso(run.wall0 + run.duration),
            duration_s=run.duration,
            host=host_info(),
            git=git,
            labels=dict(options.labels),
            environment=Environment(
                vars=redaction.env,
                redacted=redaction.redacted_names,
                umask=umask,
                locale=locale_settings(env),
                tz=tz_name(env),
                ulimits=ulimits(),
                redacted_digests=redaction.digests,
            ),
            tracing=Tracing(choice.mode, notice, files),
            toolchain=fingerprint((p.exe for p in processes if p.exe.startswith("/")), cache),
            processes=processes,
            inputs=[s.entry() for s in before.values()],
            outputs=outputs,
            external=_external_files(processes, cache),
            streams=streams,
            events=run.events,
            warnings=warnings,
            sampling=_sampling(run, processes, options.rate, scrubber, writer),
        )
        raw = manifest.to_dict()
        scrubbed = scrubber.tree(raw, keep=_DIGEST_KEYS)
        writer.commit(scrubbed)
        if scrubbed is not raw:  # a secret was scrubbed: the caller gets the tape's text
            manifest = Manifest.from_dict(scrubbed)
        cache.save()
    except TapeError as exc:
        writer.abort()
        raise TapeWriteFailed(str(exc), build_status) from exc
    except BaseException:
        writer.abort()
        raise
    exit_status = exit_code if exit_code is not None else 128 + _signum(sig)
    return RecordResult(tape_path, manifest, exit_status, stderr)


_DIGEST_KEYS = frozenset({"sha256", "stdout_blob", "stderr_blob", "redacted_digests"})


def _signum(name: str | None) -> int:
    if name is None:
        return 0
    try:
        return int(signal.Signals[name])
    except KeyError:
        return int(name[3:]) if name[3:].isdigit() else 0
