"""Process and file events from the LD_PRELOAD interposer (``shim/btshim.c``), no ptrace.

The shim appends one line per event to a log that this module tails while the build
runs (see the shim's header for the record kinds). What the records cannot show is
said, not guessed: an exec attempt that no constructor record follows is an image the
shim never ran in — a static executable, checked here by its ELF header — and the
tape marks it ``static``, with the remedy (``--trace strace``) in a warning.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, TypeVar

from recorder.strace_parser import TracedProcess
from recorder.tail import LineTail

# Variables the recorder adds for the shim; a process's recorded environment leaves them out.
SHIM_VARS = (
    "BUILDTAPE_FILELOG",
    "BUILDTAPE_SAVEDIR",
    "BUILDTAPE_WORKSPACE",
    "BUILDTAPE_T0",
    "BUILDTAPE_STRACE",
    "BUILDTAPE_STRACE_OK",
    "BUILDTAPE_STRACE_SET",
    "BUILDTAPE_STRACED",
    "BUILDTAPE_IN_STRACE",
)


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append("\t" if nxt == "t" else "\n" if nxt == "n" else nxt)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def elf_kind(path: str) -> str | None:
    """``static`` (no ``PT_INTERP``), ``go`` (a Go program: it makes its own system calls,
    so even when dynamically linked libc never sees its files or children), ``dynamic``,
    or None for what is not an ELF executable."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] not in (1, 2):
                return None
            order: Literal["little", "big"] = "little" if head[5] == 1 else "big"
            wide = head[4] == 2

            def field(lo: int, hi: int) -> int:
                return int.from_bytes(head[lo:hi], order)

            if wide:
                phoff, phentsize, phnum = field(32, 40), field(54, 56), field(56, 58)
                shoff, shentsize, shnum, shstrndx = (
                    field(40, 48),
                    field(58, 60),
                    field(60, 62),
                    field(62, 64),
                )
            else:
                phoff, phentsize, phnum = field(28, 32), field(42, 44), field(44, 46)
                shoff, shentsize, shnum, shstrndx = (
                    field(32, 36),
                    field(46, 48),
                    field(48, 50),
                    field(50, 52),
                )
            if not 0 < phnum <= 256 or phentsize < 4:
                return None
            f.seek(phoff)
            table = f.read(phentsize * phnum)
            interp = any(
                int.from_bytes(table[i * phentsize : i * phentsize + 4], order) == 3
                for i in range(phnum)
            )
            if _has_go_section(f, order, wide, shoff, shentsize, shnum, shstrndx):
                return "go"
    except OSError:
        return None
    return "dynamic" if interp else "static"


def _has_go_section(
    f: BinaryIO, order: Literal["little", "big"], wide: bool, shoff: int, shentsize: int,
    shnum: int, shstrndx: int,
) -> bool:  # fmt: skip
    if not (0 < shnum <= 4096 and 0 <= shstrndx < shnum and shentsize >= (64 if wide else 40)):
        return False
    f.seek(shoff + shstrndx * shentsize)
    sh = f.read(shentsize)
    if wide:
        offset, size = int.from_bytes(sh[24:32], order), int.from_bytes(sh[32:40], order)
    else:
        offset, size = int.from_bytes(sh[16:20], order), int.from_bytes(sh[20:24], order)
    if size > 1 << 20:
        return False
    f.seek(offset)
    names = f.read(size)
    return b".go.buildinfo\0" in names or b".note.go.buildid\0" in names


@dataclass
class _Pending:
    """An exec or spawn the shim saw being attempted, not yet followed by its image."""

    t: float
    file: str
    argv: list[str]


@dataclass
class InterposerRecords:
    """What the log held, once the build is over."""

    processes: dict[int, TracedProcess]
    # pid -> the tag of the environment its (last) image started with.
    env_tags: dict[int, str]
    # Pids whose last image never ran the shim, with the executable's resolved path.
    unobserved: dict[int, str]
    # Absolute workspace path -> name of its pre-build copy in the save directory.
    saves: dict[str, str]
    # (absolute path, save name, pid that deleted it), in log order.
    intermediates: list[tuple[str, str, int]] = field(default_factory=list)
    # pids that ended without anyone collecting their status (reaped by the recorder).
    reaped: dict[int, tuple[int, float]] = field(default_factory=dict)
    # pids strace traced (a static or Go program's subtree): their file events are complete.
    straced: set[int] = field(default_factory=set)
    # Absolute paths whose mode or times a process changed (chmod, utimensat, ...).
    attrs: set[str] = field(default_factory=set)
    # A workspace file as one process of the build left it before another replaced it, in
    # log order: (absolute path, save name, or the size it had when another process
    # appended to it, pid that wrote it, pid that replaced or appended).
    versions: list[tuple[str, str | int, int, int]] = field(default_factory=list)


class InterposerLog:
    """Tails the shim's log, turning each record into process-tree and file facts."""

    def __init__(self, path: Path) -> None:
        self._tail = LineTail(path, errors="surrogateescape")
        self.processes: dict[int, TracedProcess] = {}
        self.env_tags: dict[int, str] = {}
        self.saves: dict[str, str] = {}
        self.intermediates: list[tuple[str, str, int]] = []
        self.attrs: set[str] = set()
        self.versions: list[tuple[str, str | int, int, int]] = []
        # path -> the last process seen opening it for writing (or renaming onto it).
        self._writer: dict[str, int] = {}
        self._pending: dict[int, _Pending] = {}
        self._exited: dict[int, float] = {}
        self.execs: list[tuple[int, str]] = []
        self._closed = False
        # Processes whose status no parent's wait has reported yet (orphan candidates).
        self.uncollected: set[int] = set()
        # pid -> the name its image was executed as (``cc``, ``./configure``), when seen.
        self._run_as: dict[int, str] = {}
        # A fork child -> its parent, and the program the parent ran when it forked (argv,
        # executable), in case the parent execs another before the build ends.
        self._forked_image: dict[int, tuple[TracedProcess, list[str], str | None]] = {}
        # Keys for processes whose pid a later process reused (see _retire): negative, so
        # they never meet a real pid.
        self._next_key = -1

    def tick(self) -> None:
        for line in self._tail.lines():
            self.feed(line)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for line in self._tail.close():
            self.feed(line)

    def _proc(self, pid: int, ppid: int | None, t: float, cwd: str | None) -> TracedProcess:
        proc = self.processes.get(pid)
        if proc is None:
            parent = self.processes.get(ppid) if ppid is not None else None
            inherited = cwd or (parent.exec_cwd or parent.cwd if parent else "") or ""
            proc = TracedProcess(pid=pid, parent_pid=ppid, start=t, cwd=inherited)
            self.processes[pid] = proc
            self.uncollected.add(pid)
        return proc

    def _ended(self, pid: int) -> bool:
        proc = self.processes.get(pid)
        return proc is not None and (proc.end is not None or pid in self._exited)

    def _reaped(self, pid: int) -> bool:
        return pid in self.processes and pid not in self.uncollected

    def _retire(self, pid: int) -> None:
        """Give the process known as ``pid`` a key of its own: a new process has that pid.

        On a busy machine pids wrap (Linux's default pid_max is 32,768) and a long build
        meets one of its own ended processes' pids again. Keyed by pid alone, the two became
        one process with the later one's argv and the earlier one's files. Everything that
        named the old process by its pid (its children, its environment, the versions and
        intermediates it wrote) follows it to the new key; the tape keeps its real pid.
        """
        old = self.processes.pop(pid)
        key = self._next_key
        self._next_key -= 1
        old.recorded_pid, old.pid = pid, key
        self.processes[key] = old
        for proc in self.processes.values():
            if proc.parent_pid == pid:
                proc.parent_pid = key
        _rekey(self.env_tags, pid, key)
        _rekey(self._run_as, pid, key)
        _rekey(self._forked_image, pid, key)
        _rekey(self._exited, pid, key)
        _rekey(self._pending, pid, key)
        self.uncollected.discard(pid)  # collected: a pid is reused only once reaped
        for path, writer in self._writer.items():
            if writer == pid:
                self._writer[path] = key
        self.versions = [
            (path, kept, key if w == pid else w, key if r == pid else r)
            for path, kept, w, r in self.versions
        ]
        self.intermediates = [
            (path, name, key if who == pid else who) for path, name, who in self.intermediates
        ]

    def feed(self, line: str) -> None:
        parts = line.split("\t")
        kind = parts[0]
        try:
            if kind.isdigit():
                self._file(int(kind), parts)
            elif kind == "E" and len(parts) >= 8:
                pid, ppid, t = int(parts[1]), int(parts[2]), int(parts[3]) / 1e9
                exe, cwd, tag = _unescape(parts[4]), _unescape(parts[5]), parts[6]
                argv = [_unescape(a) for a in parts[8 : 8 + int(parts[7])]]
                if self._ended(pid):
                    self._retire(pid)
                proc = self._proc(pid, ppid, t, cwd)
                if proc.parent_pid is None:  # first seen by its exec attempt (a vfork child)
                    proc.parent_pid = ppid
                if proc.argv is None and t < proc.start:
                    # A placeholder (the root, added when Popen returned): its own clock wins.
                    proc.start = t
                proc.argv, proc.exe, proc.exec_cwd, proc.cwd = argv, exe, cwd, cwd
                self.env_tags[pid] = tag
                attempt = self._pending.pop(pid, None)
                if attempt is not None:
                    self._run_as[pid] = attempt.file
                    _as_asked(proc, attempt.argv)
                else:
                    self._run_as.pop(pid, None)
                self.execs.append((pid, exe))
            elif kind == "F" and len(parts) >= 4:
                pid, ppid = int(parts[1]), int(parts[2])
                known = self.processes.get(pid)
                # A fork child's first record: a process known by this pid is an earlier one,
                # unless all that named it was a file record of this child (an atfork handler).
                if known is not None and (known.argv is not None or self._ended(pid)):
                    self._retire(pid)
                proc = self._proc(pid, ppid, int(parts[3]) / 1e9, None)
                if proc.parent_pid is None:
                    proc.parent_pid = ppid
                forker = self.processes.get(ppid)
                if forker is not None and forker.argv is not None:
                    self._forked_image[pid] = (forker, forker.argv, forker.exe)
            elif kind == "W" and len(parts) >= 5:
                self._collected(int(parts[2]), int(parts[3]), int(parts[4]) / 1e9)
            elif kind == "Q" and len(parts) >= 3:
                self._exited.setdefault(int(parts[1]), int(parts[2]) / 1e9)
            elif kind == "X" and len(parts) >= 5:
                pid, t = int(parts[1]), int(parts[2]) / 1e9
                argv = [_unescape(a) for a in parts[5 : 5 + int(parts[4])]]
                if self._ended(pid):
                    self._retire(pid)
                self._proc(pid, None, t, None)
                self._pending[pid] = _Pending(t, _unescape(parts[3]), argv)
            elif kind == "Y" and len(parts) >= 2:
                self._pending.pop(int(parts[1]), None)
            elif kind == "S" and len(parts) >= 6:
                parent, child, t = int(parts[1]), int(parts[2]), int(parts[3]) / 1e9
                argv = [_unescape(a) for a in parts[6 : 6 + int(parts[5])]]
                known = self.processes.get(child)
                # A known process is an earlier one with this pid only once a wait reaped it
                # (or another parent made it): the child itself may have run, and even
                # exited, before posix_spawn returned to write this record.
                if known is not None and (
                    self._reaped(child) or known.parent_pid not in (None, parent)
                ):
                    self._retire(child)
                proc = self._proc(child, parent, t, None)
                if proc.argv is None:
                    self._pending[child] = _Pending(t, _unescape(parts[4]), argv)
                elif child not in self._run_as:
                    # The child's own record came first (it raced its parent's return).
                    self._run_as[child] = _unescape(parts[4])
                    _as_asked(proc, argv)
            elif kind == "P" and len(parts) >= 4:
                self.saves.setdefault(os.path.normpath(_unescape(parts[3])), parts[2])
            elif kind in ("V", "G") and len(parts) >= 4:
                pid, path = int(parts[1]), os.path.normpath(_unescape(parts[3]))
                kept: str | int = parts[2] if kind == "V" else int(parts[2])
                writer = self._writer.get(path)
                if writer is not None and writer != pid:
                    self.versions.append((path, kept, writer, pid))
            elif kind == "I" and len(parts) >= 4:
                path = os.path.normpath(_unescape(parts[3]))
                self.intermediates.append((path, parts[2], int(parts[1])))
        except (ValueError, IndexError):
            return  # a torn or foreign line costs one detail, never the recording

    def _file(self, pid: int, parts: list[str]) -> None:
        if len(parts) < 3:
            return
        proc = self.processes.get(pid)
        if proc is None:
            proc = self._proc(pid, None, 0.0, None)
        t = proc.start
        op, path = parts[1], os.path.normpath(parts[2])
        if op in ("r", "u"):
            proc.reads.setdefault(path, t)
        if op in ("w", "u"):
            proc.writes.setdefault(path, t)
            self._writer[path] = pid
        if op == "d":
            proc.deleted.setdefault(path, t)
        if op == "k":
            proc.made_dirs.setdefault(path, t)
        if op == "a":
            self.attrs.add(path)
        if op == "m" and len(parts) > 3:
            proc.deleted.setdefault(path, t)
            target = os.path.normpath(parts[3])
            proc.writes.setdefault(target, t)
            self._writer[target] = pid

    def _collected(self, pid: int, status: int, t: float) -> None:
        self.uncollected.discard(pid)
        proc = self.processes.get(pid)
        if proc is None:
            return
        exit_code, sig = decode_status(status)
        proc.exit_code, proc.signal = exit_code, sig
        if proc.end is None:
            proc.end = t

    def drain_execs(self) -> list[tuple[int, str]]:
        execs, self.execs = self.execs, []
        return execs

    def _inherit_images(self) -> None:
        """A fork child that never execs runs its parent's program: it gets the argv and
        executable its parent had when it forked (a subshell is ``sh -c ...``), or, where
        the parent's image was not known yet, the parent's own, as strace's parser does."""

        def image(proc: TracedProcess, seen: set[int]) -> tuple[list[str], str | None] | None:
            if proc.argv is not None:
                return proc.argv, proc.exe
            if proc.pid in self._forked_image:
                forker, argv, exe = self._forked_image[proc.pid]
                # The same image still: its executable as resolved above (the name it ran as).
                return (argv, forker.exe) if forker.argv is argv else (argv, exe)
            parent = self.processes.get(proc.parent_pid) if proc.parent_pid is not None else None
            if parent is None or parent.pid in seen:
                return None
            seen.add(parent.pid)
            return image(parent, seen)

        for proc in self.processes.values():
            if proc.argv is None and proc.parent_pid is not None:
                found = image(proc, {proc.pid})
                if found is not None:
                    proc.argv, proc.exe, proc.forked = list(found[0]), found[1], True

    def finish(
        self, path_of: Callable[[int], str | None], reaped: Mapping[int, tuple[int, float]]
    ) -> InterposerRecords:
        """Settle what the log could not say on its own.

        ``path_of`` gives a pid's PATH (to resolve an unobserved ``execvp``); ``reaped``
        holds the statuses the recorder collected as the build's subreaper.
        """
        self.close()
        for pid, t in self._exited.items():
            proc = self.processes.get(pid)
            if proc is not None and (proc.end is None or t < proc.end):
                proc.end = t
        for pid, (status, t) in reaped.items():
            proc = self.processes.get(pid)
            if proc is not None and proc.exit_code is None and proc.signal is None:
                proc.exit_code, proc.signal = decode_status(status)
                if proc.end is None:
                    proc.end = t
        resolved: dict[tuple[str, str, str | None], str] = {}
        for pid, file in self._run_as.items():
            # The name it was run as (/usr/bin/cc), not the file it resolved to
            # (x86_64-linux-gnu-gcc-12): tools answer --version by the name they are called.
            proc = self.processes[pid]
            key = (file, proc.exec_cwd or proc.cwd if "/" in file else "", path_of(pid))
            if key not in resolved:
                found = _resolve(file, proc.exec_cwd or proc.cwd, key[2])
                resolved[key] = found if found.startswith("/") and os.path.exists(found) else ""
            if resolved[key]:
                proc.exe = resolved[key]
        unobserved: dict[int, str] = {}
        for pid, pending in self._pending.items():
            proc = self.processes[pid]
            exe = _resolve(pending.file, proc.exec_cwd or proc.cwd, path_of(pid))
            proc.argv, proc.exe = pending.argv, exe
            unobserved[pid] = exe
        self._inherit_images()
        return InterposerRecords(
            self.processes,
            self.env_tags,
            unobserved,
            self.saves,
            self.intermediates,
            dict(reaped),
            attrs=self.attrs,
            versions=self.versions,
        )


_V = TypeVar("_V")


def _rekey(table: dict[int, _V], old: int, new: int) -> None:
    if old in table:
        table[new] = table.pop(old)


def _as_asked(proc: TracedProcess, asked: list[str]) -> None:
    """The argv the caller asked for, where only argv[0] differs from what the image got:
    strace, running a static or Go program for us, passes the resolved path as argv[0]."""
    if proc.argv is not None and proc.argv[1:] == asked[1:]:
        proc.argv = asked


def decode_status(status: int) -> tuple[int | None, str | None]:
    """A wait status as (exit code, signal name)."""
    if os.WIFSIGNALED(status):
        num = os.WTERMSIG(status)
        try:
            import signal

            return None, signal.Signals(num).name
        except ValueError:
            return None, f"SIG{num}"
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status), None
    return None, None


def _resolve(file: str, cwd: str, path: str | None) -> str:
    if "/" in file:
        return os.path.normpath(os.path.join(cwd, file))
    found = shutil.which(file, path=path if path is not None else os.defpath)
    return found or file


def read_environment(save_dir: Path, tag: str, shim: str | None) -> dict[str, str] | None:
    """The environment the shim saved under ``tag``, without the recorder's own variables."""
    try:
        raw = (save_dir / "env" / tag).read_bytes()
    except OSError:
        return None
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        name, sep, value = item.decode("utf-8", "surrogateescape").partition("=")
        if sep and name:
            env[name] = value
    for var in SHIM_VARS:
        env.pop(var, None)
    preload = env.get("LD_PRELOAD")
    if preload is not None and shim is not None:
        kept = [p for p in preload.split() if p != shim]
        if kept:
            env["LD_PRELOAD"] = " ".join(kept)
        else:
            del env["LD_PRELOAD"]
    return env


def env_delta(parent: Mapping[str, str], child: Mapping[str, str]) -> dict[str, str | None]:
    """What ``child`` sets or unsets relative to ``parent`` (None: unset)."""
    delta: dict[str, str | None] = {k: v for k, v in child.items() if parent.get(k) != v}
    delta.update({k: None for k in parent if k not in child})
    return dict(sorted(delta.items()))
