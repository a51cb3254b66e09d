"""Turns ``strace -f -ttt`` output, line by line, into a process tree with file accesses.

Only what the recorder asks strace to trace is understood: exec, open, rename, unlink,
link, symlink, mkdir, chdir and the clone family, plus the ``+++ exited/killed +++``
lines. Threads (clones with ``CLONE_THREAD``) are folded into their process. Anything else
is ignored, so an unexpected line costs a missed detail, never a crash.
"""

from __future__ import annotations

import dataclasses
import os.path
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

TRACED_SYSCALLS = (
    "execve,execveat,open,openat,creat,rename,renameat,renameat2,"
    "unlink,unlinkat,link,linkat,symlink,symlinkat,mkdir,mkdirat,chdir,clone,clone3,fork,vfork"
)
# With the LD_PRELOAD shim reporting file events, strace only needs to see processes.
PROCESS_SYSCALLS = "execve,execveat,chdir,clone,clone3,fork,vfork"
_SKIP_PREFIXES = ("/proc/", "/sys/", "/dev/")
_LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$")
_EXIT = re.compile(r"^\+\+\+ (?:exited with (\d+)|killed by (SIG\w+)[^+]*) \+\+\+")
_SUPERSEDED = re.compile(r"^\+\+\+ superseded by execve in pid (\d+)")
_RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")
# With --pidns-translation, a pid returned into another pid namespace is followed by the
# pid strace itself knows it by (which its lines are prefixed with): ``= 2 /* 3062 in
# strace's PID NS */``.
_RET = re.compile(r"^\s*=\s*(-?\d+|\?)(?:\s*/\*\s*(\d+) in strace's PID NS\s*\*/)?")
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
    # Directories it made (mkdir, mkdirat).
    made_dirs: dict[str, float] = field(default_factory=dict)
    # A fork that never exec'd: it ran its parent's program (argv and exe are the parent's).
    forked: bool = False
    # The kernel's pid, when ``pid`` is a key of the recorder's own: the pid was reused by a
    # later process of the same build (``recorder.interposer``, ``StraceParser``), which
    # keeps the pid itself.
    recorded_pid: int | None = None

    @property
    def real_pid(self) -> int:
        return self.pid if self.recorded_pid is None else self.recorded_pid


def add_file_events(target: TracedProcess, source: TracedProcess) -> None:
    """Give ``target`` the files ``source`` read, wrote and deleted, and the directories it
    made (first times kept)."""
    for path, t in source.reads.items():
        target.reads.setdefault(path, t)
    for path, t in source.writes.items():
        target.writes.setdefault(path, t)
    for path, t in source.deleted.items():
        target.deleted.setdefault(path, t)
    for path, t in source.made_dirs.items():
        target.made_dirs.setdefault(path, t)


def align_keys(traced: list[TracedProcess], known: Mapping[int, TracedProcess]) -> None:
    """Rename ``traced``'s processes (in place) to the keys ``known`` names them by.

    strace's parser and the interposer's reader each give an earlier process whose pid a
    later one reused a key of their own, and each numbers those keys in the order it met
    them, so the same key can name two processes, and one process two keys. Everything
    the recording joins by key (environments, exec attempts, the versions and
    intermediates a process wrote) needs one. Processes with one pid never overlap in
    time, so each traced process takes the key of the known one with that pid whose
    lifetime overlaps its own most; one ``known`` never saw gets a key nobody has.
    """
    by_pid: dict[int, list[TracedProcess]] = {}
    for proc in known.values():
        by_pid.setdefault(proc.real_pid, []).append(proc)
    ours: dict[int, list[TracedProcess]] = {}
    for proc in traced:
        ours.setdefault(proc.real_pid, []).append(proc)
    taken = set(known)
    fresh = min([-1, *known, *(p.pid for p in traced)]) - 1
    renamed: dict[int, int] = {}
    unmatched: list[TracedProcess] = []
    for pid, mine in ours.items():
        theirs = by_pid.get(pid, [])
        if len(mine) == 1 and mine[0].pid == pid and not theirs:
            continue  # a process only strace saw
        if (
            len(mine) == 1
            and len(theirs) == 1
            and mine[0].pid == theirs[0].pid == pid
            and _common(_overlap(mine[0], mine), _overlap(theirs[0], theirs)) >= 0
        ):
            continue  # the common case: one process with this pid, on either side, at once
        pairs = sorted(
            ((_overlap(a, mine), _overlap(b, theirs), a, b) for a in mine for b in theirs),
            key=lambda x: -_common(x[0], x[1]),
        )
        used: set[int] = set()
        for a_span, b_span, a, b in pairs:
            if a.pid in renamed or b.pid in used or _common(a_span, b_span) < 0:
                continue
            renamed[a.pid] = b.pid
            used.add(b.pid)
        unmatched += [a for a in mine if a.pid not in renamed]
    targets = set(renamed.values())
    for proc in unmatched:
        if proc.pid in taken or proc.pid in targets or proc.pid < 0:
            renamed[proc.pid], fresh = fresh, fresh - 1
    if not renamed:
        return
    for proc in traced:
        key = renamed.get(proc.pid, proc.pid)
        if key != proc.pid:
            real = proc.real_pid
            proc.pid, proc.recorded_pid = key, None if key == real else real
        if proc.parent_pid is not None:
            proc.parent_pid = renamed.get(proc.parent_pid, proc.parent_pid)


def _overlap(proc: TracedProcess, same_pid: list[TracedProcess]) -> tuple[float, float]:
    """The span a process held its pid: an unknown end is the next holder's start."""
    if proc.end is not None:
        return proc.start, proc.end
    later = [p.start for p in same_pid if p.start > proc.start]
    return proc.start, min(later, default=float("inf"))


def _common(a: tuple[float, float], b: tuple[float, float]) -> float:
    return min(a[1], b[1]) - max(a[0], b[0])


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

    def __init__(self, root_cwd: str, own: tuple[str, ...] = ()) -> None:
        """``own``: paths (a file, or a directory ending in ``/``) of the recorder's own
        files that its interposer reads and writes inside every process (its library, its
        log, the environments it saves): not the build's."""
        self.root_cwd = root_cwd
        self._skip = _SKIP_PREFIXES + own
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
        # Keys for processes whose pid a later process reused (``_retire``): negative, so
        # they never meet a real pid.
        self._next_key = -1
        # parent -> children forked before anything said which program the parent runs (its
        # own lines came before its clone result, and it never exec'd): they run that program
        # too, and learn it when the parent does (``_inherit_image``).
        self._blind: dict[int, list[int]] = {}
        # key -> fd -> (path, opened with O_CLOEXEC), for paths relative to a directory fd
        # (``openat(3, "x", ...)``: cp, install and mv into a directory, fts walks). Only
        # opens are traced, not close or dup, so an entry lives until an open reuses its fd;
        # a directory fd only ever comes from an open, which then replaced a stale entry.
        self._fds: dict[int, dict[int, tuple[str, bool]]] = {}

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

    def _claimed(self, proc: TracedProcess) -> bool:
        """Whether a clone result already named this process (or it is the command itself)."""
        return proc.parent_pid is not None or proc.pid == self.root_pid

    def _retire(self, pid: int) -> None:
        """Give the process known as ``pid`` a key of its own: a new process has that pid.

        A pid is reused only once the process that had it was reaped, which is after its
        ``+++ exited`` line and after the clone result that made it (its parent printed that
        before it could wait). So a line of a pid whose process has exited starts a new
        process, and so does a clone result naming a process that one already named. What
        named the old process by its pid (its children, its place in the wait for a parent's
        clone result) follows it to the new key; ``recorded_pid`` keeps the pid for the tape.
        """
        old = self._procs.pop(pid)
        key = self._next_key
        self._next_key -= 1
        old.recorded_pid, old.pid = pid, key
        self._procs[key] = old
        if self.root_pid == pid:
            self.root_pid = key
        for proc in self._procs.values():
            if proc.parent_pid == pid:
                proc.parent_pid = key
        self._pending.pop(pid, None)
        # Its threads ended before it did (the kernel reports a thread group leader last).
        for tid in [tid for tid, leader in self._leader.items() if leader == pid]:
            del self._leader[tid]
        if pid in self._unplaced:
            self._unplaced.discard(pid)
            self._unplaced.add(key)
        if pid in self._fds:
            self._fds[key] = self._fds.pop(pid)
        for table in (self._waiting, self._blind):
            if pid in table:
                table[key] = table.pop(pid)
            for group in table.values():
                group[:] = [key if member == pid else member for member in group]

    def _place(self, proc: TracedProcess, parent: TracedProcess) -> None:
        """Join an early process's relative paths (and its waiting children's) onto the parent's."""
        group = [proc.pid]
        i = 0
        while i < len(group):
            group.extend(self._waiting.pop(group[i], ()))
            i += 1
        for pid in group:
            _rebase(self._procs[pid], parent.cwd)
            fds = self._fds.get(pid)
            if fds:
                self._fds[pid] = {
                    fd: (os.path.normpath(os.path.join(parent.cwd, path)), cloexec)
                    for fd, (path, cloexec) in fds.items()
                }
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
        if pid not in self._leader:
            known = self._procs.get(pid)
            if known is not None and known.end is not None:
                self._retire(pid)  # nothing of a process comes after its exit: a reused pid
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
        superseded = _SUPERSEDED.match(rest)
        if superseded:
            # A thread's exec took over its process's pid: its own id is free again.
            self._leader.pop(int(superseded.group(1)), None)
        if pid in self._leader:
            if m or superseded:
                del self._leader[pid]  # the thread is gone: its id may name a process next
            return
        if not m:
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
        at = _token(dirfd) if dirfd is not None else "AT_FDCWD"
        if at == "AT_FDCWD":
            return os.path.normpath(os.path.join(proc.cwd, path))
        opened = self._fds.get(proc.pid, {}).get(int(at)) if at.isdigit() else None
        return None if opened is None else os.path.normpath(os.path.join(opened[0], path))

    def _call(self, pid: int, t: float, rest: str) -> None:
        parsed = parse_call(rest)
        if parsed is None:
            self.unparsed += 1
            return
        name, args, tail = parsed
        ret_m = _RET.match(tail)
        if not ret_m or ret_m.group(1) == "?":
            return
        ret = int(ret_m.group(2) or ret_m.group(1))
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
            self._open(proc, t, name, args, ret)
        elif name in ("rename", "renameat", "renameat2"):
            # rename(old, new) or renameat(olddirfd, old, newdirfd, new, ...)
            src, dst = self._two_paths(proc, args, at=name != "rename")
            if src and not src.startswith(self._skip):
                proc.deleted.setdefault(src, t)
            if dst and not dst.startswith(self._skip):
                proc.writes.setdefault(dst, t)
        elif name in ("link", "linkat"):
            # link(old, new) or linkat(olddirfd, old, newdirfd, new, flags): the new name is
            # a write, the file it names (the old one's bytes) a read; /proc/self/fd/N (an
            # O_TMPFILE made visible) is skipped as any /proc path is.
            src, dst = self._two_paths(proc, args, at=name == "linkat")
            if src and not src.startswith(self._skip):
                proc.reads.setdefault(src, t)
            if dst and not dst.startswith(self._skip):
                proc.writes.setdefault(dst, t)
        elif name in ("symlink", "symlinkat"):
            # symlink(target, new) or symlinkat(target, newdirfd, new): the target is text.
            at = name == "symlinkat"
            dst = self._path_arg(proc, args, 1 if at else None, 2 if at else 1)
            if dst and not dst.startswith(self._skip):
                proc.writes.setdefault(dst, t)
        elif name in ("unlink", "unlinkat"):
            at = name == "unlinkat"
            if at and "AT_REMOVEDIR" in _token(_arg(args, 2)):
                return
            path = self._path_arg(proc, args, 0 if at else None, 1 if at else 0)
            if path and not path.startswith(self._skip):
                proc.deleted.setdefault(path, t)
        elif name in ("mkdir", "mkdirat"):
            at = name == "mkdirat"
            path = self._path_arg(proc, args, 0 if at else None, 1 if at else 0)
            if path and not path.startswith(self._skip):
                proc.made_dirs.setdefault(path, t)
        elif name == "chdir":
            path = self._path_arg(proc, args, None, 0)
            if path:
                proc.cwd = path

    def _two_paths(
        self, proc: TracedProcess, args: list[Arg], at: bool
    ) -> tuple[str | None, str | None]:
        """The old and new names of rename(old, new) and link(old, new), or of their ``at``
        forms (olddirfd, old, newdirfd, new, ...)."""
        src = self._path_arg(proc, args, 0 if at else None, 1 if at else 0)
        dst = self._path_arg(proc, args, 2 if at else None, 3 if at else 1)
        return src, dst

    def _path_arg(
        self, proc: TracedProcess, args: list[Arg], dirfd_i: int | None, path_i: int
    ) -> str | None:
        raw = _string(_arg(args, path_i))
        if not raw:
            return None
        return self._resolve(proc, None if dirfd_i is None else _arg(args, dirfd_i), raw)

    def _spawned(self, parent: TracedProcess, child_pid: int, t: float, thread: bool) -> None:
        known = self._procs.get(child_pid)
        if known is not None and self._claimed(known):
            # An earlier process with this pid (its parent's wait reaped it); the new one's own
            # lines, had they come first, would have retired it already.
            self._retire(child_pid)
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
                add_file_events(parent, early)
            return
        inherited = self._fds.get(parent.pid)
        if inherited:  # a fork's descriptors are copies of its parent's at the clone
            own = self._fds.get(child_pid, {})
            self._fds[child_pid] = {**inherited, **own}
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
                forked=True,
            )
            self._procs[child_pid] = child
            if parent.argv is None:
                self._blind.setdefault(parent.pid, []).append(child_pid)
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
            child.forked = True
            if parent.argv is None:
                self._blind.setdefault(parent.pid, []).append(child_pid)
            else:
                self._inherit_image(child)

    def _inherit_image(self, proc: TracedProcess) -> None:
        """Give the program ``proc`` now runs to the children it forked before that was known."""
        stack = [proc]
        while stack:
            parent = stack.pop()
            for pid in self._blind.pop(parent.pid, ()):
                child = self._procs.get(pid)
                if child is not None and child.argv is None:
                    child.argv, child.exe, child.exec_cwd = parent.argv, parent.exe, parent.exec_cwd
                    stack.append(child)

    def _exec(self, proc: TracedProcess, name: str, args: list[Arg]) -> None:
        path_i, argv_i = (0, 1) if name == "execve" else (1, 2)
        path = _string(args[path_i]) if len(args) > path_i else None
        argv = args[argv_i] if len(args) > argv_i else None
        if path is None:
            return
        proc.exe = self._resolve(proc, None, path) or path
        proc.argv = list(argv) if isinstance(argv, list) else [path]
        proc.exec_cwd = proc.cwd
        proc.forked = False
        self.execs.append((proc.pid, proc.exe))
        fds = self._fds.get(proc.pid)
        if fds:  # the exec closed those opened close-on-exec
            self._fds[proc.pid] = {fd: kept for fd, kept in fds.items() if not kept[1]}

    def _open(self, proc: TracedProcess, t: float, name: str, args: list[Arg], fd: int) -> None:
        if name == "openat":
            path, flags = self._path_arg(proc, args, 0, 1), _token(_arg(args, 2))
        elif name == "open":
            path, flags = self._path_arg(proc, args, None, 0), _token(_arg(args, 1))
        else:  # creat
            path, flags = self._path_arg(proc, args, None, 0), "O_WRONLY|O_CREAT"
        if path is None:
            return
        self._fds.setdefault(proc.pid, {})[fd] = (path, "O_CLOEXEC" in flags)
        if "O_DIRECTORY" in flags or "O_PATH" in flags:
            return  # a handle on a directory (or a path): not a read of anything
        if path.startswith(self._skip) or path in ("/proc", "/dev", "/sys"):
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
    proc.made_dirs = paths(proc.made_dirs)


def _placed(proc: TracedProcess, base: str) -> TracedProcess:
    """A copy of ``proc`` rebased onto ``base``; ``proc`` itself is left as it is."""
    copy = dataclasses.replace(proc)
    _rebase(copy, base)
    return copy
