"""Phase 3 of a recording: run the build under observation and pass its I/O through.

The build gets exactly what it would get without buildtape: every descriptor the
caller let it inherit (a make jobserver's pipe, a descriptor a configure script
probes), the caller's process group and terminal. Its stdout/stderr go through a pump
(a pty when ours is a terminal) that timestamps each chunk.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from recorder.background import Background
from recorder.environments import EnvironmentFiles
from recorder.errors import RecordError
from recorder.interposer import InterposerLog, InterposerRecords, read_environment
from recorder.preload import build_shim, preload_env
from recorder.prepare import EVENTS_VAR, Plan
from recorder.sampling import Segment, choose_sampler
from recorder.strace_parser import TracedProcess, add_file_events, align_keys
from recorder.straced import StracedSubtrees
from recorder.streams import Captured, StreamPump
from recorder.tail import LineTail
from recorder.tracing import (
    NoTracer,
    PreloadTracer,
    ProcTracer,
    StraceTracer,
    Tracer,
    TracerChoice,
    choose_tracer,
    fallback_notice,
)

if TYPE_CHECKING:
    from recorder.model import Event

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# Signals a terminal sends to its whole foreground process group, the build included.
_TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGQUIT)


@dataclass(frozen=True)
class Observer:
    """How the build is watched: the process tracer, and the interposer when it is loaded."""

    choice: TracerChoice
    # The interposer library, preloaded in every mode but ``none``: file events, pre-build
    # content, intermediates and per-process environments come from it.
    shim: Path | None
    # Where file events come from: preload | strace | none.
    files: str
    notice: str | None
    # strace for the subtrees of static and Go programs (``--trace auto``), when it may run.
    strace_unseen: str | None = None


def choose_observer(plan: Plan) -> Observer:
    # buildtape's own helpers (shim compiler, strace probe) get buildtape's environment,
    # never the build's: a replayed tape's PATH, LD_PRELOAD or XDG_CACHE_HOME must not reach them.
    options, env = plan.options, os.environ
    shim = shim_reason = None
    if options.trace != "none":
        built = build_shim(env)
        shim, shim_reason = built.library, built.reason
        if shim is None and options.file_events == "preload":
            raise RecordError(f"--file-events preload was asked for, but {shim_reason}")
    requested = options.trace
    if requested == "auto" and options.file_events == "strace":
        requested = "strace"
    choice = choose_tracer(requested, env, shim_reason if options.trace != "none" else "off")
    if choice.mode == "strace":
        files = "preload" if options.file_events == "preload" and shim else "strace"
    else:
        files = "preload" if shim is not None and choice.mode != "none" else "none"
    notice = None
    if choice.fallback_reason:
        notice = fallback_notice(choice.fallback_reason, files)
    elif choice.mode == "strace" and options.trace == "auto" and shim_reason:
        notice = f"{shim_reason}: tracing with strace instead (slower on process-heavy builds)"
    strace_unseen = None
    if choice.mode == "preload" and options.trace == "auto" and ptrace_allowed():
        strace_unseen = shutil.which("strace", path=env.get("PATH"))
    return Observer(choice, shim, files, notice, strace_unseen)


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
        if not lines:
            return
        # The model is imported once the build runs (see recorder.record), and only by a
        # build that writes events.
        from recorder.events import parse_event_line

        for line in lines:
            self._lineno += 1
            if line.strip():
                arrived = time.monotonic() - self._t0
                self.events.append(parse_event_line(line, self._lineno, arrived, self._wall0))


@dataclass
class BuildRun:
    """What running the build gave: its status, processes, streams and events."""

    returncode: int
    interrupted_by: str | None
    traced: list[TracedProcess]
    captured: Captured
    events: list[Event]
    wall0: float
    duration: float
    # The interposer's records (pre-build copies, intermediates, environments), when loaded.
    records: InterposerRecords | None = None
    save_dir: Path | None = None
    # What the recorder added to the build's environment (its own variables, samplers).
    added_env: dict[str, str] = field(default_factory=dict)
    sampler: str = "none"
    sampler_notice: str | None = None
    segments: list[Segment] = field(default_factory=list)
    # Every process ran the interposer, so every change to the workspace went through it
    # (see ``recorder.workspace.resurvey``); False sends the recorder back to a full walk.
    every_change_seen: bool = False
    # The saved environments, read while the build ran (``recorder.environments``).
    environments: EnvironmentFiles | None = None


def inherited_fds() -> tuple[int, ...]:
    """Descriptors above 2 that the caller let us inherit (not close-on-exec).

    Python opens its own descriptors close-on-exec (PEP 446), so these are the ones a
    shell, a CI runner or a parent make (its jobserver) handed down.
    """
    fds = []
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return ()
    for name in names:
        fd = int(name)
        if fd <= 2:
            continue
        try:
            if not fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC:
                fds.append(fd)
        except OSError:
            continue
    return tuple(sorted(fds))


def ptrace_allowed() -> bool:
    """Whether a sampler that is not the build's ancestor may attach to its processes.

    strace proves it by tracing; without strace in the loop, Yama's scope says it: 0
    allows any same-user process, 1 and 2 need CAP_SYS_PTRACE (root), 3 forbids it.
    """
    try:
        scope = int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text())
    except (OSError, ValueError):
        scope = 0
    if scope >= 3:
        return False
    return scope == 0 or os.geteuid() == 0


def _in_terminal_foreground() -> bool:
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def _tracer(plan: Plan, observer: Observer, workdir: Path, log: InterposerLog | None) -> Tracer:
    cwd = str(plan.cwd)
    mode = observer.choice.mode
    if mode == "preload":
        assert log is not None
        return PreloadTracer(log, cwd, plan.argv)
    if mode == "strace":
        assert observer.choice.strace is not None
        return StraceTracer(
            observer.choice.strace,
            workdir,
            cwd,
            trace_files=observer.files == "strace",
            flags=observer.choice.strace_flags,
            shim=observer.shim,
        )
    if mode == "proc":
        return ProcTracer(cwd)
    return NoTracer(cwd)


def run_build(
    plan: Plan,
    observer: Observer,
    workdir: Path,
    while_building: Callable[[], object] | None = None,
) -> BuildRun:
    events_path = workdir / "events.jsonl"
    events_path.touch()
    env = {**plan.env, EVENTS_VAR: str(events_path)}
    log = save_dir = None
    if observer.shim is not None:
        save_dir = workdir / "saved"
        (save_dir / "env").mkdir(parents=True)
        (workdir / "files.log").touch()
        log = InterposerLog(workdir / "files.log")
        env = preload_env(env, observer.shim, workdir / "files.log")
        env["BUILDTAPE_SAVEDIR"] = str(save_dir)
        env["BUILDTAPE_WORKSPACE"] = str(plan.workspace)
    tracer = _tracer(plan, observer, workdir, log)
    envs = EnvironmentFiles(save_dir, str(observer.shim)) if save_dir is not None else None
    argv = plan.argv
    straced = None
    if observer.strace_unseen is not None and save_dir is not None:
        straced = StracedSubtrees(observer.strace_unseen, save_dir)
        env.update(straced.env())
        argv, env = straced.wrap_root(argv, _which_exe(argv[0], plan), env, os.environ)
    options = plan.options
    t0, wall0 = time.monotonic(), time.time()
    if save_dir is not None:
        env["BUILDTAPE_T0"] = str(time.time_ns())
    # --trace proc is how a user says ptrace is not allowed here; strace proved it is.
    mode = observer.choice.mode
    ptrace_ok = mode == "strace" or (mode == "preload" and ptrace_allowed())
    sampler, sampler_notice = choose_sampler(
        options.stacks, ptrace_ok, env, workdir, options.rate, wall0
    )
    if sampler is not None:
        env = sampler.child_env(env)
    added = {k: v for k, v in env.items() if plan.env.get(k) != v}
    pump = StreamPump(sys.stdout.fileno(), sys.stderr.fileno(), options.use_tty, t0)
    tail = _EventsTail(events_path, t0, wall0)
    interrupted: list[str] = []
    terminal_fg = _in_terminal_foreground()
    proc = subprocess.Popen(
        tracer.wrap(argv),
        cwd=plan.cwd,
        env=env,
        stdout=pump.child_fds()[0],
        stderr=pump.child_fds()[1],
        pass_fds=inherited_fds(),
    )
    pump.close_child_fds()
    tracer.started(proc.pid)
    meanwhile = Background(while_building, "meanwhile") if while_building else None

    def forward(signum: int, frame: FrameType | None) -> None:
        interrupted.append(signal.Signals(signum).name)
        if terminal_fg and signum in _TERMINAL_SIGNALS:
            return  # the terminal sent it to the build as well: once is what it expects
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signum)

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
    extra_log = log if observer.choice.mode != "preload" else None

    def tick() -> None:
        tracer.tick()
        if extra_log is not None:
            extra_log.tick()
        tail.tick()
        if envs is not None and log is not None:
            envs.prefetch(log.env_tags)
        if sampler is not None:
            for pid, exe in tracer.drain_execs():
                sampler.process_started(pid, exe)

    try:
        pump.run(done.is_set, tick)
        while not done.wait(0.05):
            tick()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    duration = time.monotonic() - t0
    if straced is not None:
        straced.settle()
    traced = tracer.finish()
    records = None
    if log is not None:
        reaped = tracer.reaped if isinstance(tracer, PreloadTracer) else {}
        paths: dict[str, str | None] = {}
        records = log.finish(lambda pid: _path_of(log, save_dir, pid, paths), reaped)
        if straced is not None:
            straced.merge(records, str(plan.cwd))
            traced = list(records.processes.values())
        if observer.choice.mode == "strace":
            align_keys(traced, records.processes)  # one key for one process, in both
        if observer.choice.mode != "preload" and observer.files == "preload":
            _merge_file_events(traced, records.processes)
    tail.close()
    segments = sampler.finish() if sampler is not None else []
    if meanwhile is not None:
        # Only the caller's preparation: the caller meets any failure again when it does the
        # real work, and the tape must not be lost to it.
        with contextlib.suppress(Exception):
            meanwhile.result()
    return BuildRun(
        returncode=proc.returncode,
        interrupted_by=interrupted[0] if interrupted else None,
        traced=traced,
        captured=pump.captured,
        events=tail.events,
        wall0=wall0,
        duration=duration,
        records=records,
        save_dir=save_dir,
        added_env=added,
        sampler=sampler.name if sampler is not None else "none",
        sampler_notice=sampler_notice,
        segments=segments,
        environments=envs,
        every_change_seen=(
            observer.choice.mode == "preload"
            and records is not None
            and not records.unobserved
            and not records.straced
        ),
    )


def _which_exe(name: str, plan: Plan) -> str | None:
    """The file the command resolves to, as its exec would find it."""
    if "/" in name:
        path = name if os.path.isabs(name) else os.path.join(str(plan.cwd), name)
        return path if os.access(path, os.X_OK) else None
    return shutil.which(name, path=plan.env.get("PATH"))


def _merge_file_events(traced: list[TracedProcess], seen: dict[int, TracedProcess]) -> None:
    """Give the tracer's processes the interposer's file events (``--trace proc``).

    Events of processes the tracer missed (too short for /proc polling) go to the root,
    so their files are still captured.
    """
    by_pid = {p.pid: p for p in traced}
    root = next((p for p in traced if p.parent_pid is None), traced[0] if traced else None)
    for pid, proc in seen.items():
        target = by_pid.get(pid, root)
        if target is not None:
            add_file_events(target, proc)


def _path_of(
    log: InterposerLog, save_dir: Path | None, pid: int, paths: dict[str, str | None]
) -> str | None:
    """The PATH a process ran with, walking up to the nearest ancestor the shim saw."""
    seen: set[int] = set()
    node: int | None = pid
    while node is not None and node not in seen and save_dir is not None:
        seen.add(node)
        tag = log.env_tags.get(node)
        if tag is not None:
            if tag not in paths:
                env = read_environment(save_dir, tag, None)
                paths[tag] = None if env is None else env.get("PATH")
            return paths[tag]
        proc = log.processes.get(node)
        node = proc.parent_pid if proc is not None else None
    return None
