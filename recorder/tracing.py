"""Ways to observe a build's processes: the interposer, strace, polling /proc, or not at all.

``choose_tracer`` picks one for ``--trace auto|preload|strace|proc|none`` and says, in one
sentence, what fidelity a fallback loses and how to get it back. ``auto`` takes the
LD_PRELOAD interposer (no ptrace stops), then strace, then /proc.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from recorder.errors import TracerUnavailable
from recorder.interposer import InterposerLog
from recorder.strace_parser import PROCESS_SYSCALLS, TRACED_SYSCALLS, StraceParser, TracedProcess
from recorder.tail import LineTail

TRACE_MODES = ("auto", "preload", "strace", "proc", "none")
FILE_EVENT_SOURCES = ("auto", "preload", "strace")


class Tracer(Protocol):
    mode: str

    def wrap(self, argv: list[str]) -> list[str]: ...

    def started(self, pid: int) -> None: ...

    def tick(self) -> None: ...

    def drain_execs(self) -> list[tuple[int, str]]:
        """(pid, executable) of the programs started since the last call."""
        ...

    def finish(self) -> list[TracedProcess]: ...


# A build that starts a pid namespace of its own (``unshare --pid``, bwrap ``--unshare-pid``)
# gets clone results in that namespace's pids, while strace prefixes its lines with the pids
# it knows: with this flag it prints both, and the parser joins children to their parents.
PIDNS_TRANSLATION = "--pidns-translation"


def _strace_works(strace: str, env: Mapping[str, str], flags: tuple[str, ...] = ()) -> str | None:
    """None when strace can trace here (with ``flags``), else the reason it cannot."""
    try:
        out = subprocess.run(
            [strace, "-f", "-qq", *flags, "-e", "trace=none", "--", "true"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env=dict(env),
            cwd="/",
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"strace could not start ({exc})"
    if out.returncode != 0:
        first = (out.stderr.strip().splitlines() or ["unknown error"])[0]
        return f"strace cannot trace here ({first})"
    return None


class StraceTracer:
    """Runs the build under strace and parses its output as it is written.

    ``-DD`` makes the build's root process buildtape's own child (so waiting for it is
    waiting for the build) and puts strace in a process group of its own, out of reach
    of the signals forwarded to the build. ``-I 2`` lets the SIGTERM that detaches
    strace from processes the build left behind (daemons) work; by default strace
    ignores it when it started the command itself.
    """

    mode = "strace"

    def __init__(
        self,
        strace: str,
        workdir: Path,
        cwd: str,
        trace_files: bool = True,
        flags: tuple[str, ...] = (),
        shim: Path | None = None,
    ) -> None:
        self._strace = strace
        self._flags = flags
        self._syscalls = TRACED_SYSCALLS if trace_files else PROCESS_SYSCALLS
        self._log = workdir / "strace.log"
        self._log.touch()
        # The recording's own files (the interposer's log and saves are in ``workdir``).
        own = (f"{workdir}/",) + ((str(shim),) if shim is not None else ())
        self._parser = StraceParser(cwd, own)
        self._tail = LineTail(self._log)
        self._tracer_pid: int | None = None

    def wrap(self, argv: list[str]) -> list[str]:
        return [
            self._strace,
            "-DD",
            "-I",
            "2",
            "-f",
            "--seccomp-bpf",
            "-q",
            "-ttt",
            "-s",
            "65535",
            *self._flags,
            "-e",
            f"trace={self._syscalls}",
            "-o",
            str(self._log),
            "--",
            *argv,
        ]

    def started(self, pid: int) -> None:
        # strace -D attaches before the command execs, and Popen returns after the exec.
        self._tracer_pid = _tracer_of(pid)

    def tick(self) -> None:
        for line in self._tail.lines():
            self._parser.feed(line)

    def drain_execs(self) -> list[tuple[int, str]]:
        execs, self._parser.execs = self._parser.execs, []
        return execs

    def finish(self, grace_s: float = 0.5) -> list[TracedProcess]:
        tracer = self._tracer_pid
        if tracer is not None and not wait_gone(tracer, grace_s):
            # Only processes the build left behind keep strace going: detach from them.
            with contextlib.suppress(ProcessLookupError):
                os.kill(tracer, signal.SIGTERM)
            wait_gone(tracer, 10.0)
        for line in self._tail.close():
            self._parser.feed(line)
        return list(self._parser.processes.values())


def _tracer_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    tracer = int(line.split()[1])
                    return tracer or None
    except (OSError, ValueError):
        pass
    return None


def wait_gone(pid: int, timeout_s: float) -> bool:
    """Wait until ``pid`` has exited (a zombie counts: init may be slow to reap it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            if stat[stat.rindex(")") + 2 :].startswith(("Z", "X")):
                return True
        except OSError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


class ProcTracer:
    """Polls /proc for the build's descendants: no privileges, lower fidelity.

    Processes shorter than the poll interval can be missed, only the root's exit code
    is known, and no per-process file accesses are seen.
    """

    mode = "proc"

    def __init__(self, cwd: str, interval_s: float = 0.01) -> None:
        self._cwd = cwd
        self._interval = interval_s
        self._procs: dict[int, TracedProcess] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._root: int | None = None
        self._execs: list[tuple[int, str]] = []

    def wrap(self, argv: list[str]) -> list[str]:
        return argv

    def started(self, pid: int) -> None:
        self._root = pid
        self._procs[pid] = TracedProcess(pid=pid, parent_pid=None, start=time.time(), cwd=self._cwd)
        self._thread = threading.Thread(target=self._poll, name="buildtape-proc", daemon=True)
        self._thread.start()

    def tick(self) -> None:
        pass

    @staticmethod
    def _read(pid: int) -> tuple[int, list[str], str | None, str | None] | None:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                raw = f.read()
        except (OSError, ValueError):
            return None
        argv = [a.decode(errors="surrogateescape") for a in raw.split(b"\0")[:-1]]
        exe = cwd = None
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            pass
        return ppid, argv, exe, cwd

    def _poll(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            alive: set[int] = set()
            for name in os.listdir("/proc"):
                if not name.isdigit():
                    continue
                pid = int(name)
                known = self._procs.get(pid)
                if known is not None and known.end is None:
                    alive.add(pid)
                    if not known.argv:
                        self._update(known, self._read(pid))
                    continue
                info = self._read(pid)
                if info is None or info[0] not in self._procs:
                    continue
                parent = self._procs[info[0]]
                if parent.end is not None:
                    continue
                proc = TracedProcess(pid=pid, parent_pid=info[0], start=now, cwd=parent.cwd)
                self._update(proc, info)
                self._procs[pid] = proc
                alive.add(pid)
            for pid, proc in self._procs.items():
                if proc.end is None and pid not in alive:
                    proc.end = now
            self._stop.wait(self._interval)

    def _update(
        self, proc: TracedProcess, info: tuple[int, list[str], str | None, str | None] | None
    ) -> None:
        if info is None or not info[1]:
            return
        _, argv, exe, cwd = info
        proc.argv, proc.exe = argv, exe or argv[0]
        self._execs.append((proc.pid, proc.exe))
        if cwd:
            proc.cwd = proc.exec_cwd = cwd

    def drain_execs(self) -> list[tuple[int, str]]:
        execs, self._execs = self._execs, []
        return execs

    def finish(self) -> list[TracedProcess]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        end = time.time()
        for proc in self._procs.values():
            if proc.end is None:
                proc.end = end
        return list(self._procs.values())


class NoTracer:
    """Records only the root process."""

    mode = "none"

    def __init__(self, cwd: str) -> None:
        self._cwd = cwd
        self._root: TracedProcess | None = None

    def wrap(self, argv: list[str]) -> list[str]:
        return argv

    def started(self, pid: int) -> None:
        self._root = TracedProcess(pid=pid, parent_pid=None, start=time.time(), cwd=self._cwd)
        try:
            self._execs = [(pid, os.readlink(f"/proc/{pid}/exe"))]
        except OSError:
            self._execs = []

    def drain_execs(self) -> list[tuple[int, str]]:
        execs, self._execs = self._execs, []
        return execs

    def tick(self) -> None:
        pass

    def finish(self) -> list[TracedProcess]:
        if self._root is None:
            return []
        self._root.end = time.time()
        return [self._root]


_PR_SET_CHILD_SUBREAPER = 36


def set_subreaper(on: bool) -> bool:
    """Make orphans of the build our children (Linux), so their exits can be collected."""
    try:
        # The process's own symbols, which include libc's: ctypes.util.find_library would
        # run ldconfig (10-20 ms) before every build.
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


class PreloadTracer:
    """The process tree from the interposer's records: no ptrace, nothing stops.

    The recorder is the build's subreaper while it runs, so a process whose parent
    exited first is reparented to it; ``tick`` collects those, and their statuses fill
    in what no parent's ``wait`` reported.
    """

    mode = "preload"

    def __init__(self, log: InterposerLog, cwd: str, argv: list[str]) -> None:
        self.log = log
        self._cwd = cwd
        self._argv = argv
        self._root: int | None = None
        self._reaper = False
        self.reaped: dict[int, tuple[int, float]] = {}

    def wrap(self, argv: list[str]) -> list[str]:
        self._reaper = set_subreaper(True)
        return argv

    def started(self, pid: int) -> None:
        self._root = pid
        if pid not in self.log.processes:
            self.log.processes[pid] = TracedProcess(
                pid=pid, parent_pid=None, start=time.time(), cwd=self._cwd
            )

    def tick(self) -> None:
        self.log.tick()
        if self._reaper:
            self._reap()

    def _reap(self) -> None:
        """Collect the build's orphans that have ended, and nobody else's children.

        Only processes no parent's ``wait`` has reported are asked about (the log keeps
        that set as it reads), so the cost follows what is running, not the whole build;
        a sampler's ended child stays for its own owner to collect.
        """
        for pid in list(self.log.uncollected):
            if pid == self._root:
                continue
            try:
                got, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue  # not (yet) ours: its parent is alive
            if got == pid:
                self.reaped[pid] = (status, time.time())
                self.log.uncollected.discard(pid)

    def drain_execs(self) -> list[tuple[int, str]]:
        return self.log.drain_execs()

    def finish(self) -> list[TracedProcess]:
        self.log.close()
        if self._reaper:
            self._reap()
            set_subreaper(False)
        root = self.log.processes.get(self._root) if self._root is not None else None
        if root is not None:
            root.parent_pid = None
            if root.argv is None:
                root.argv = list(self._argv)
        return list(self.log.processes.values())


@dataclass(frozen=True)
class TracerChoice:
    mode: str
    # Why strace is not used, when ``auto`` fell back to ``proc``.
    fallback_reason: str | None
    strace: str | None = None
    # What strace is given on top of buildtape's flags (``PIDNS_TRANSLATION`` where it has it).
    strace_flags: tuple[str, ...] = ()


def choose_tracer(
    requested: str, env: Mapping[str, str], shim_reason: str | None = None
) -> TracerChoice:
    """Pick a tracer; ``TracerUnavailable`` when one was asked for by name and cannot run.

    ``shim_reason`` is None when the interposer library is ready, else why it is not.
    """
    if requested in ("proc", "none"):
        return TracerChoice(requested, None)
    if requested in ("auto", "preload") and shim_reason is None:
        return TracerChoice("preload", None)
    if requested == "preload":
        raise TracerUnavailable(
            f"--trace preload was asked for, but {shim_reason}; install a C compiler "
            "(apt-get install gcc), or use --trace strace"
        )
    strace = shutil.which("strace", path=env.get("PATH"))
    flags: tuple[str, ...] = (PIDNS_TRANSLATION,)
    reason = "strace is not installed" if strace is None else _strace_works(strace, env, flags)
    if strace is not None and reason is not None and _strace_works(strace, env) is None:
        reason, flags = None, ()  # a strace older than 5.9, without the flag
    if reason is None:
        return TracerChoice("strace", None, strace, flags)
    if requested == "strace":
        raise TracerUnavailable(
            f"--trace strace was asked for, but {reason}; install strace (apt-get install strace) "
            "and allow ptrace (CAP_SYS_PTRACE), or use --trace proc"
        )
    return TracerChoice("proc", reason)


def fallback_notice(reason: str, files: str) -> str:
    """The one line that says what fidelity the /proc fallback lost and how to get it back."""
    lost = "short processes may be missed and only the root's exit code is known"
    if files == "none":
        lost += "; per-process file reads are not recorded (outputs still are)"
    return (
        f"{reason}: recording the process tree by polling /proc, so {lost}; "
        "install strace and allow ptrace for full fidelity"
    )
