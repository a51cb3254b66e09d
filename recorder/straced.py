"""Static and Go programs under the interposer: their subtrees run under strace.

A static executable or a Go program makes its system calls without libc, so the
LD_PRELOAD interposer sees neither its files nor its children. With ``--trace auto`` the
shim therefore runs the exec of such a program as ``strace -DD -f`` (see the shim's
header): the rest of the build pays nothing, and that subtree is seen as fully as with
``--trace strace``. This module gives the shim what it needs, proves strace works here
while the build starts, wraps the command itself when it is such a program, and folds
the strace logs back into the interposer's records.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from recorder.interposer import InterposerRecords, elf_kind
from recorder.strace_parser import (
    TRACED_SYSCALLS,
    StraceParser,
    TracedProcess,
    add_file_events,
    align_keys,
)
from recorder.tracing import wait_gone

# What strace is told on top of the syscall set: the shim's own argv mirrors this.
_FLAGS = ("-DD", "-I", "2", "-f", "--seccomp-bpf", "-q", "-ttt", "-s", "65535")
UNSEEN_KINDS = ("static", "go")


@dataclass
class StracedSubtrees:
    """One recording's strace for the programs the interposer cannot see into."""

    strace: str
    save_dir: Path
    _probe: threading.Thread | None = field(default=None, init=False)

    @property
    def ok_marker(self) -> Path:
        return self.save_dir / "strace-ok"

    def env(self) -> dict[str, str]:
        """What the build's environment carries for the shim."""
        return {
            "BUILDTAPE_STRACE": self.strace,
            "BUILDTAPE_STRACE_OK": str(self.ok_marker),
            "BUILDTAPE_STRACE_SET": f"trace={TRACED_SYSCALLS}",
        }

    def _run_probe(self, env: Mapping[str, str]) -> bool:
        try:
            probe = [self.strace, "-DD", "-f", "-q", "-e", "trace=none", "-o", os.devnull]
            out = subprocess.run(
                [*probe, "--", "true"],
                capture_output=True,
                timeout=20,
                check=False,
                env=dict(env),
                cwd="/",
            )
            works = out.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            works = False
        marker = self.ok_marker if works else self.ok_marker.with_name("strace-ok.no")
        marker.touch()
        return works

    def start_probe(self, env: Mapping[str, str]) -> None:
        """Prove strace works while the build starts; the shim waits for the answer."""
        self._probe = threading.Thread(
            target=self._run_probe, args=(dict(env),), name="buildtape-strace-probe", daemon=True
        )
        self._probe.start()

    def wrap_root(
        self, argv: list[str], exe: str | None, env: Mapping[str, str], own_env: Mapping[str, str]
    ) -> tuple[list[str], dict[str, str]]:
        """The command and its environment; under strace when it is a static or Go program."""
        if exe is None or elf_kind(exe) not in UNSEEN_KINDS or not self._run_probe(own_env):
            if self._probe is None:
                self.start_probe(own_env)
            return argv, dict(env)
        log = self.save_dir / "strace-root.log"
        wrapped = [self.strace, *_FLAGS, "-e", f"trace={TRACED_SYSCALLS}", "-o", str(log)]
        wrapped += ["-E", "BUILDTAPE_IN_STRACE", "--", *argv]
        return wrapped, {**env, "BUILDTAPE_IN_STRACE": "1", "BUILDTAPE_STRACED": "1"}

    def settle(self, grace_s: float = 2.0) -> None:
        """Wait for the tracers to write their last lines; detach from daemons left behind."""
        if self._probe is not None:
            self._probe.join()
        if not any(self.save_dir.glob("strace-*.log")):
            return
        tracers = _tracers_writing_to(self.save_dir)
        deadline = time.monotonic() + grace_s
        for pid in tracers:
            if not wait_gone(pid, max(0.0, deadline - time.monotonic())):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                wait_gone(pid, 10.0)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # ours as the subreaper: collect the zombie

    def merge(self, records: InterposerRecords, cwd: str) -> None:
        """Fold each strace log's processes into the interposer's records."""
        for log in sorted(self.save_dir.glob("strace-*.log")):
            try:
                lines = log.read_text(errors="surrogateescape").splitlines()
            except OSError:
                continue
            if not lines or not lines[0].split(maxsplit=1)[0].isdigit():
                continue
            first = _holder(records, lines[0])
            # The recording's own files (the interposer's log and saves) are not the build's.
            own = (f"{self.save_dir.parent}/",)
            parser = StraceParser((first.exec_cwd or first.cwd) if first else cwd, own)
            for line in lines:
                parser.feed(line)
            traced = list(parser.processes.values())
            align_keys(traced, records.processes)
            for seen in traced:
                _fold(records, seen.pid, seen)
                records.straced.add(seen.pid)
                records.unobserved.pop(seen.pid, None)


def _holder(records: InterposerRecords, line: str) -> TracedProcess | None:
    """The interposer's process that had the pid of a log's first line when it was written:
    the pid may have named an earlier process too, or a later one."""
    head = line.split(maxsplit=2)
    try:
        pid, t = int(head[0]), float(head[1])
    except (IndexError, ValueError):
        return None
    holders = [p for p in records.processes.values() if p.real_pid == pid and p.start <= t]
    return max(holders, key=lambda p: p.start, default=records.processes.get(pid))


def _fold(records: InterposerRecords, pid: int, seen: TracedProcess) -> None:
    mine = records.processes.get(pid)
    if mine is None:
        records.processes[pid] = seen
        return
    add_file_events(mine, seen)
    if mine.argv is None:
        mine.argv, mine.exe = seen.argv, seen.exe
    if mine.parent_pid is None:
        mine.parent_pid = seen.parent_pid
    if mine.exit_code is None and mine.signal is None:
        mine.exit_code, mine.signal = seen.exit_code, seen.signal
    if mine.end is None:
        mine.end = seen.end
    if not mine.cwd:
        mine.cwd, mine.exec_cwd = seen.cwd, seen.exec_cwd


def _tracers_writing_to(save_dir: Path) -> list[int]:
    """The strace processes whose command line names this recording's save directory."""
    needle = str(save_dir).encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if needle in cmdline and b"-DD\0" in cmdline:
            found.append(int(name))
    return sorted(found)
