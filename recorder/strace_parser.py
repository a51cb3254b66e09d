"""Turns ``strace -f -ttt`` output, line by line, into a process tree with file accesses.

Only what the recorder asks strace to trace is understood: exec, open, rename, unlink,
chdir and the clone family, plus the ``+++ exited/killed +++`` lines. Threads (clones
with ``CLONE_THREAD``) are folded into their process. Anything else is ignored, so an
unexpected line costs a missed detail, never a crash.
"""

from __future__ import annotations

import dataclasses
import os.path
import re
from dataclasses import dataclass, field

TRACED_SYSCALLS = (
    "execve,execveat,open,openat,creat,rename,renameat,renameat2,"
    "unlink,unlinkat,chdir,clone,clone3,fork,vfork"
)
# With the LD_PRELOAD shim reporting file events, strace only needs to see processes.
PROCESS_SYSCALLS = "execve,execveat,chdir,clone,clone3,fork,vfork"
_SKIP_PREFIXES = ("/proc/", "/sys/", "/dev/")
_LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$")
_EXIT = re.compile(r"^\+\+\+ (?:exited with (\d+)|killed by (SIG\w+)[^+]*) \+\+\+")
_RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")
_RET = re.compile(r"^\s*=\s*(-?\d+|\?)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "f": "\f", '"': '"', "\\": "\\"}


@dataclass
class TracedProcess:
    pid: int
    parent_pid: int | None
    start: float
    cwd: str
    argv: list[str] | None = None
    exe: str | None = None
    exec_cwd: str | None = None
    end: float | None = None
    exit_code: int | None = None
    signal: str | None = None
    # path -> time of first access; dicts keep first-seen order.
    reads: dict[str, float] = field(default_factory=dict)
    writes: dict[str, float] = field(default_factory=dict)
    deleted: dict[str, float] = field(default_factory=dict)
    # The kernel's pid, when ``pid`` is a key of the recorder's own: the pid was reused by a
    # later process of the same build (``recorder.interposer``), which keeps the pid itself.
    recorded_pid: int | None = None


def add_file_events(target: TracedProcess, source: TracedProcess) -> None:
    """Give ``target`` the files ``source`` read, wrote and deleted (first times kept)."""
    for path, t in source.reads.items():
        target.reads.setdefault(path, t)
    for path, t in source.writes.items():
        target.writes.setdefault(path, t)
    for path, t in source.deleted.items():
        target.deleted.setdefault(path, t)


def _unescape(body: str) -> str:
    """Decode strace's C-style string escapes (octal and hex bytes are UTF-8 bytes)."""
    if "\\" not in body:
        return body
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\" or i + 1 >= len(body):
            out += c.encode("utf-8", "surrogateescape")
            i += 1
            continue
        n = body[i + 1]
        if n in _ESCAPES:
            out += _ESCAPES[n].encode()
            i += 2
        elif n == "x":
            out.append(int(body[i + 2 : i + 4], 16))
            i += 4
        elif n.isdigit():
            j = i + 1
            while j < len(body) and j < i + 4 and body[j] in "01234567":
                j += 1
            out.append(int(body[i + 1 : j], 8) & 0xFF)
            i = j
        else:
            out += n.encode()
            i += 2
    return out.decode("utf-8", "surrogateescape")


Arg = str | list[str] | None


def parse_call(text: str) -> tuple[str, list[Arg], str] | None:
    """Split ``name(args) = ret ...`` into the name, its arguments and what follows.

    Strings become ``str``, arrays of strings ``list[str]``, anything else ``None``
    (flags and numbers keep their raw text in ``raw_args``' place via ``None``).
    """
    paren = text.find("(")
    if paren <= 0:
        return None
    name = text[:paren]
    args: list[Arg] = []
    i = paren + 1
    n = len(text)
    current: Arg = None
    depth_list: list[str] | None = None
    bracket = 0
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            s = _unescape(text[i + 1 : j])
            i = j + 1
            if text.startswith("...", i):
                i += 3
            if depth_list is not None:
                depth_list.append(s)
            elif bracket == 0:
                current = s
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if c in "[{":
            if c == "[" and bracket == 0:
                depth_list = []
            bracket += 1
        elif c in "]}":
            bracket -= 1
            if bracket == 0 and depth_list is not None:
                current = depth_list
                depth_list = None
        elif bracket == 0 and c == ",":
            args.append(current)
            current = None
        elif bracket == 0 and c == ")":
            args.append(current)
            return name, args, text[i + 1 :]
        elif bracket == 0 and current is None and not c.isspace():
            # A bare token (AT_FDCWD, a number, flags): keep its text for flag checks.
            j = i
            while j < n and text[j] not in ",)":
                j += 1
            current = f"\0{text[i:j].strip()}"
            i = j
            continue
        i += 1
    return None


def _arg(args: list[Arg], i: int) -> Arg:
    return args[i] if i < len(args) else None


def _token(arg: Arg) -> str:
    return arg[1:] if isinstance(arg, str) and arg.startswith("\0") else ""


def _string(arg: Arg) -> str | None:
    return arg if isinstance(arg, str) and not arg.startswith("\0") else None


class StraceParser:
    """Feed it lines as strace writes them; read ``processes`` when the build ends."""

    def __init__(self, root_cwd: str) -> None:
        self.root_cwd = root_cwd
        self._procs: dict[int, TracedProcess] = {}
        self.root_pid: int | None = None
        self._leader: dict[int, int] = {}
        self._pending: dict[int, str] = {}
        # A child's lines can come before its parent's clone result (strace -f prints each
        # process's calls as they finish). Until that result says whose child it is, its
        # cwd is "." and every path it resolved is relative to that unknown start; the
        # clone result places them under the parent's cwd of that moment (``_place``).
        self._unplaced: set[int] = set()
        # parent pid -> unplaced processes whose paths wait for that parent's placing.
        self._waiting: dict[int, list[int]] = {}
        self.unparsed = 0
        # (pid, exe) of every successful exec, for samplers to pick up; drained by the tracer.
        self.execs: list[tuple[int, str]] = []

    @property
    def processes(self) -> dict[int, TracedProcess]:
        """The processes seen so far; one never placed under a parent starts at the root's cwd."""
        if not self._unplaced:
            return self._procs
        return {
            pid: _placed(proc, self.root_cwd) if pid in self._unplaced else proc
            for pid, proc in self._procs.items()
        }

    def _proc(self, pid: int, t: float) -> TracedProcess:
        pid = self._leader.get(pid, pid)
        proc = self._procs.get(pid)
        if proc is None:
            if self.root_pid is None:
                self.root_pid = pid
                proc = TracedProcess(pid=pid, parent_pid=None, start=t, cwd=self.root_cwd)
            else:
                proc = TracedProcess(pid=pid, parent_pid=None, start=t, cwd=".")
                self._unplaced.add(pid)
            self._procs[pid] = proc
        return proc

    def _place(self, proc: TracedProcess, parent: TracedProcess) -> None:
        """Join an early process's relative paths (and its waiting children's) onto the parent's."""
        group = [proc.pid]
        i = 0
        while i < len(group):
            group.extend(self._waiting.pop(group[i], ()))
            i += 1
        for pid in group:
            _rebase(self._procs[pid], parent.cwd)
        if parent.pid in self._unplaced:  # the parent's own start is not known yet either
            self._waiting.setdefault(parent.pid, []).extend(group)
        else:
            self._unplaced.difference_update(group)

    def feed(self, line: str) -> None:
        m = _LINE.match(line)
        if not m:
            if line.strip():
                self.unparsed += 1
            return
        pid, t, rest = int(m.group(1)), float(m.group(2)), m.group(3)
        if rest.startswith("---"):
            return
        if rest.startswith("+++"):
            self._exit(pid, t, rest)
            return
        if rest.endswith("<unfinished ...>"):
            self._pending[pid] = rest[: -len("<unfinished ...>")].rstrip()
            self._proc(pid, t)
            return
        resumed = _RESUMED.match(rest)
        if resumed:
            head = self._pending.pop(pid, None)
            if head is None:
                return
            rest = head + resumed.group(2)
        self._call(pid, t, rest)

    def _exit(self, pid: int, t: float, rest: str) -> None:
        m = _EXIT.match(rest)
        if not m or pid in self._leader:
            return
        proc = self._proc(pid, t)
        proc.end = t
        if m.group(1) is not None:
            proc.exit_code = int(m.group(1))
        else:
            proc.signal = m.group(2)

    def _resolve(self, proc: TracedProcess, dirfd: Arg, path: str) -> str | None:
        if path.startswith("/"):
            return os.path.normpath(path)
        if dirfd is not None and _token(dirfd) != "AT_FDCWD":
            return None
        return os.path.normpath(os.path.join(proc.cwd, path))

    def _call(self, pid: int, t: float, rest: str) -> None:
        parsed = parse_call(rest)
        if parsed is None:
            self.unparsed += 1
            return
        name, args, tail = parsed
        ret_m = _RET.match(tail)
        if not ret_m or ret_m.group(1) == "?":
            return
        ret = int(ret_m.group(1))
        proc = self._proc(pid, t)
        if name in ("clone", "clone3", "fork", "vfork"):
            if ret > 0:
                self._spawned(proc, ret, t, "CLONE_THREAD" in rest)
            return
        if ret < 0:
            return
        if name in ("execve", "execveat"):
            self._exec(proc, name, args)
        elif name in ("openat", "open", "creat"):
            self._open(proc, t, name, args)
        elif name in ("rename", "renameat", "renameat2"):
            # rename(old, new) or renameat(olddirfd, old, newdirfd, new, ...)
            at = name != "rename"
            src = self._path_arg(proc, args, 0 if at else None, 1 if at else 0)
            dst = self._path_arg(proc, args, 2 if at else None, 3 if at else 1)
            if src:
                proc.deleted.setdefault(src, t)
            if dst:
                proc.writes.setdefault(dst, t)
        elif name in ("unlink", "unlinkat"):
            at = name == "unlinkat"
            if at and "AT_REMOVEDIR" in _token(_arg(args, 2)):
                return
            path = self._path_arg(proc, args, 0 if at else None, 1 if at else 0)
            if path:
                proc.deleted.setdefault(path, t)
        elif name == "chdir":
            path = self._path_arg(proc, args, None, 0)
            if path:
                proc.cwd = path

    def _path_arg(
        self, proc: TracedProcess, args: list[Arg], dirfd_i: int | None, path_i: int
    ) -> str | None:
        raw = _string(_arg(args, path_i))
        if not raw:
            return None
        return self._resolve(proc, None if dirfd_i is None else _arg(args, dirfd_i), raw)

    def _spawned(self, parent: TracedProcess, child_pid: int, t: float, thread: bool) -> None:
        if thread:
            self._leader[child_pid] = parent.pid
            early = self._procs.get(child_pid)
            if early is not None:
                if child_pid in self._unplaced:  # a thread shares its process's cwd
                    self._place(early, parent)
                    self._unplaced.discard(child_pid)
                    waiting = self._waiting.get(parent.pid, [])
                    if child_pid in waiting:
                        waiting.remove(child_pid)
                del self._procs[child_pid]
                # The thread ran before its clone returned in the parent: fold it in.
                for src, dst in (
                    (early.reads, parent.reads),
                    (early.writes, parent.writes),
                    (early.deleted, parent.deleted),
                ):
                    for path, when in src.items():
                        dst.setdefault(path, when)
            return
        child = self._procs.get(child_pid)
        if child is None:
            # A fork runs its parent's program until it execs another.
            child = TracedProcess(
                pid=child_pid,
                parent_pid=parent.pid,
                start=t,
                cwd=parent.cwd,
                argv=parent.argv,
                exe=parent.exe,
                exec_cwd=parent.exec_cwd,
            )
            self._procs[child_pid] = child
            if parent.pid in self._unplaced:
                self._unplaced.add(child_pid)
                self._waiting.setdefault(parent.pid, []).append(child_pid)
            return
        # The child's own lines came first; it started at the latest then. Its cwd
        # began as the parent's at the clone, which is the parent's cwd now: the parent
        # made no other call while its clone was running.
        child.parent_pid = parent.pid
        child.start = min(child.start, t)
        if child_pid in self._unplaced:
            self._place(child, parent)
        if child.argv is None:
            child.argv, child.exe, child.exec_cwd = parent.argv, parent.exe, parent.exec_cwd

    def _exec(self, proc: TracedProcess, name: str, args: list[Arg]) -> None:
        path_i, argv_i = (0, 1) if name == "execve" else (1, 2)
        path = _string(args[path_i]) if len(args) > path_i else None
        argv = args[argv_i] if len(args) > argv_i else None
        if path is None:
            return
        proc.exe = self._resolve(proc, None, path) or path
        proc.argv = list(argv) if isinstance(argv, list) else [path]
        proc.exec_cwd = proc.cwd
        self.execs.append((proc.pid, proc.exe))

    def _open(self, proc: TracedProcess, t: float, name: str, args: list[Arg]) -> None:
        if name == "openat":
            path, flags = self._path_arg(proc, args, 0, 1), _token(_arg(args, 2))
        elif name == "open":
            path, flags = self._path_arg(proc, args, None, 0), _token(_arg(args, 1))
        else:  # creat
            path, flags = self._path_arg(proc, args, None, 0), "O_WRONLY|O_CREAT"
        if path is None or "O_DIRECTORY" in flags:
            return
        if path.startswith(_SKIP_PREFIXES) or path in ("/proc", "/dev", "/sys"):
            return
        writes = "O_WRONLY" in flags or "O_CREAT" in flags or "O_TRUNC" in flags
        if "O_RDWR" in flags:
            if not ("O_CREAT" in flags or "O_TRUNC" in flags):
                proc.reads.setdefault(path, t)
            writes = True
        if writes:
            proc.writes.setdefault(path, t)
        else:
            proc.reads.setdefault(path, t)


def _rebase(proc: TracedProcess, base: str) -> None:
    """Join ``proc``'s relative cwd and paths onto ``base``."""

    def join(path: str) -> str:
        return path if path.startswith("/") else os.path.normpath(os.path.join(base, path))

    def paths(d: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for path, when in d.items():
            out.setdefault(join(path), when)
        return out

    proc.cwd = join(proc.cwd)
    proc.exe = None if proc.exe is None else join(proc.exe)
    proc.exec_cwd = None if proc.exec_cwd is None else join(proc.exec_cwd)
    proc.reads = paths(proc.reads)
    proc.writes = paths(proc.writes)
    proc.deleted = paths(proc.deleted)


def _placed(proc: TracedProcess, base: str) -> TracedProcess:
    """A copy of ``proc`` rebased onto ``base``; ``proc`` itself is left as it is."""
    copy = dataclasses.replace(proc)
    _rebase(copy, base)
    return copy
