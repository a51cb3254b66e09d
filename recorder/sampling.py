"""Timed Python stacks of the build's Python processes: py-spy, else a sampling thread.

Every sampler produces ``Segment``s: a process, a stack of Python frames (outermost
first), when it started and how long it lasted, in microseconds since the build started.

* **py-spy** is started for every Python process the tracer sees exec, with
  ``--nonblocking``: it reads the process's memory without attaching, so it works while
  strace is the process's tracer. Its chrometrace output keeps each sample's time.
* **thread** (what ``auto`` falls back to where py-spy cannot run) and **pyinstrument**
  (only when asked for by name: it costs call-heavy code ~2x) need no privilege: a
  ``sitecustomize`` put first on ``PYTHONPATH`` starts a sampling thread or a profiler in
  every Python process of the build and saves its profile at exit, then runs the build's
  own ``sitecustomize``, if it has one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recorder.errors import SamplerUnavailable

SAMPLERS = ("auto", "py-spy", "pyinstrument", "thread", "none")
DIR_VAR = "BUILDTAPE_PYSTACKS"
INTERVAL_VAR = "BUILDTAPE_PYSTACKS_INTERVAL"
FALLBACK_PATH_VAR = "BUILDTAPE_PYINSTRUMENT_PATH"
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")


@dataclass(frozen=True)
class Segment:
    pid: int
    stack: tuple[tuple[str, str, int], ...]  # (function, file, line), outermost first
    start_us: int
    dur_us: int


def is_python(exe: str) -> bool:
    return bool(_PYTHON.match(os.path.basename(exe)))


class PySpySampler:
    """One ``py-spy record --nonblocking`` per Python process, started as it appears."""

    name = "py-spy"

    def __init__(self, py_spy: str, workdir: Path, rate: int, wall0: float) -> None:
        self._py_spy = py_spy
        self._dir = workdir / "py-spy"
        self._dir.mkdir()
        self._rate = rate
        self._wall0 = wall0
        # (pid, sampler process, output file, wall time it started), in start order.
        self._runs: list[tuple[int, subprocess.Popen[bytes], Path, float]] = []
        self._active: dict[int, subprocess.Popen[bytes]] = {}

    def child_env(self, env: dict[str, str]) -> dict[str, str]:
        return env

    def process_started(self, pid: int, exe: str) -> None:
        if not is_python(exe):
            return
        current = self._active.get(pid)
        if current is not None and current.poll() is None:
            return
        # A launcher named python (a pyenv or virtualenv shim) may exec the real interpreter
        # later under the same pid; a py-spy that found no Python there has exited by now.
        out = self._dir / f"{pid}-{len(self._runs)}.json"
        argv = [
            self._py_spy, "record", "--pid", str(pid), "--nonblocking", "--rate",
            str(self._rate), "--format", "chrometrace", "--output", str(out),
        ]  # fmt: skip
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError:
            return
        self._runs.append((pid, proc, out, time.time()))
        self._active[pid] = proc

    def finish(self) -> list[Segment]:
        segments: list[Segment] = []
        deadline = time.monotonic() + 10
        for pid, proc, out, started in self._runs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                # The target outlived the build (a daemon): py-spy writes what it has on SIGINT.
                proc.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            segments += _chrometrace_segments(pid, out, round((started - self._wall0) * 1e6))
        return segments


def _chrometrace_segments(pid: int, path: Path, offset_us: int) -> list[Segment]:
    """Turn py-spy's begin/end events into timed stacks (threads folded into the process)."""
    try:
        events = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if isinstance(events, dict):
        events = events.get("traceEvents", [])
    stacks: dict[Any, list[tuple[str, str, int]]] = {}
    last: dict[Any, int] = {}
    out = []
    for ev in events:
        if not isinstance(ev, dict) or ev.get("ph") not in ("B", "E"):
            continue
        tid, ts = ev.get("tid"), int(ev.get("ts", 0))
        stack = stacks.setdefault(tid, [])
        if stack and ts > last.get(tid, ts):
            out.append(Segment(pid, tuple(stack), offset_us + last[tid], ts - last[tid]))
        last[tid] = ts
        if ev["ph"] == "B":
            args = ev.get("args") or {}
            stack.append(
                (
                    str(ev.get("name", "?")),
                    str(args.get("filename", "")),
                    int(args.get("line") or 0),
                )
            )
        elif stack:
            stack.pop()
    return out


_SITE_HEAD = '''\
"""buildtape: profile this Python process ({kind}), then run the build's own
sitecustomize. Installed only for the duration of a `buildtape record`."""
import os as _os
import sys as _sys


'''
_PYINSTRUMENT_PROFILE = """\
def _buildtape_profile():
    out_dir = _os.environ.get("{dir_var}")
    if not out_dir:
        return
    try:
        from pyinstrument import Profiler
    except ImportError:
        extra = _os.environ.get("{path_var}")
        if not extra:
            return
        _sys.path.append(extra)
        try:
            from pyinstrument import Profiler
        except ImportError:
            return

    interval = float(_os.environ.get("{interval_var}", "0.01"))
    profiler = Profiler(interval=interval, async_mode="disabled")
    profiler.start()

    def collect():
        return dict(session=profiler.stop().to_json())

    return collect


"""
_THREAD_PROFILE = """\
def _buildtape_profile():
    out_dir = _os.environ.get("{dir_var}")
    if not out_dir:
        return
    import threading
    import time

    interval = float(_os.environ.get("{interval_var}", "0.01"))
    main = threading.main_thread().ident
    index = dict()
    frames = []
    samples = []
    stop = threading.Event()

    def sample():
        last = time.time()
        while not stop.wait(interval):
            frame = _sys._current_frames().get(main)
            now = time.time()
            stack = []
            while frame is not None:
                code = frame.f_code
                key = (code.co_name, code.co_filename, frame.f_lineno)
                i = index.get(key)
                if i is None:
                    i = index[key] = len(frames)
                    frames.append(key)
                stack.append(i)
                frame = frame.f_back
            stack.reverse()
            if stack:
                samples.append((last, now - last, stack))
            last = now

    thread = threading.Thread(target=sample, name="buildtape-sampler", daemon=True)
    thread.start()

    def collect():
        stop.set()
        thread.join(1.0)
        return dict(frames=frames, samples=samples)

    return collect


"""
_SITE_CHAIN = """\
def _buildtape_chain():
    import importlib.machinery
    import importlib.util

    here = _os.path.dirname(_os.path.abspath(__file__))
    path = [p for p in _sys.path if _os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    _sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


def _buildtape_keep(collect):
    # Write the samples at exit, and before an exec replaces this process (os.execl*,
    # execvp* and the spawn helpers all end in execv or execve).
    import atexit
    import json

    pid = _os.getpid()
    out_dir = _os.environ["{dir_var}"]

    def save():
        if _os.getpid() != pid:
            return  # a forked child inherited this handler; its parent writes the file
        try:
            data = collect()
            data["pid"] = pid
            path = _os.path.join(out_dir, "%d.json" % pid)
            with open(path + ".partial", "w") as f:
                json.dump(data, f)
            _os.replace(path + ".partial", path)
        except Exception:
            pass

    atexit.register(save)

    def wrap(real):
        def exec_keeping_samples(*args, **kwargs):
            save()
            return real(*args, **kwargs)

        return exec_keeping_samples

    for name in ("execv", "execve"):
        real = getattr(_os, name, None)
        if real is not None:
            setattr(_os, name, wrap(real))


try:
    _collect = _buildtape_profile()
    if _collect is not None:
        _buildtape_keep(_collect)
except Exception:
    pass
_buildtape_chain()
"""


def sitecustomize(kind: str, profile: str) -> str:
    """The sitecustomize.py put first on the build's PYTHONPATH: start sampling in this
    Python process, then run the build's own sitecustomize, if any."""
    text = _SITE_HEAD.replace("{kind}", kind) + profile + _SITE_CHAIN
    return text.format(dir_var=DIR_VAR, path_var=FALLBACK_PATH_VAR, interval_var=INTERVAL_VAR)


class _InjectedSampler:
    """Samples every Python process of the build from the inside, through a
    sitecustomize first on PYTHONPATH; no ptrace needed."""

    name = "?"
    _kind = ""
    _profile = ""

    def __init__(self, workdir: Path, rate: int, wall0: float) -> None:
        self._site = workdir / "site"
        self._site.mkdir()
        self._out = workdir / self.name
        self._out.mkdir()
        self._rate = rate
        self._wall0 = wall0
        (self._site / "sitecustomize.py").write_text(sitecustomize(self._kind, self._profile))

    def child_env(self, env: dict[str, str]) -> dict[str, str]:
        out = dict(env)
        existing = env.get("PYTHONPATH")
        out["PYTHONPATH"] = str(self._site) + (os.pathsep + existing if existing else "")
        out[DIR_VAR] = str(self._out)
        out[INTERVAL_VAR] = f"{1.0 / self._rate:.6f}"
        return out

    def process_started(self, pid: int, exe: str) -> None:
        pass

    def finish(self) -> list[Segment]:
        """The segments of every profile the build's processes wrote; a profile that is
        unreadable or malformed (a process killed while writing it) is skipped whole."""
        segments: list[Segment] = []
        for path in sorted(self._out.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                segments += self._segments(int(data["pid"]), data)
            except (OSError, ValueError, KeyError, TypeError, IndexError):
                continue
        return segments

    def _segments(self, pid: int, data: dict[str, Any]) -> list[Segment]:
        raise NotImplementedError


class ThreadSampler(_InjectedSampler):
    """A thread in each Python process reads the main thread's stack ``rate`` times a
    second (``sys._current_frames``). Nothing runs on calls and returns, so call-heavy
    code pays only for the samples; threads end with ``exec`` and do not survive ``fork``,
    so nothing leaks into the programs a build runs."""

    name = "thread"
    _kind = "with a sampling thread"
    _profile = _THREAD_PROFILE

    def _segments(self, pid: int, data: dict[str, Any]) -> list[Segment]:
        frames = [(str(f), str(file), int(line)) for f, file, line in data["frames"]]
        out = []
        for t, dur, stack in data["samples"]:
            dur_us = round(float(dur) * 1e6)
            if stack and dur_us > 0:
                start_us = round((float(t) - self._wall0) * 1e6)
                out.append(Segment(pid, tuple(frames[i] for i in stack), start_us, dur_us))
        return out


class PyinstrumentSampler(_InjectedSampler):
    """pyinstrument in every Python process of the build; no ptrace needed."""

    name = "pyinstrument"
    _kind = "with pyinstrument"
    _profile = _PYINSTRUMENT_PROFILE

    def child_env(self, env: dict[str, str]) -> dict[str, str]:
        # Where pyinstrument is installed, for the build's Python processes to find it;
        # found without importing it here.
        spec = importlib.util.find_spec("pyinstrument")
        origin = spec.origin if spec is not None else None
        if origin is None:
            raise SamplerUnavailable("pyinstrument is not installed")
        out = super().child_env(env)
        out[FALLBACK_PATH_VAR] = str(Path(origin).resolve().parent.parent)
        return out

    def _segments(self, pid: int, data: dict[str, Any]) -> list[Segment]:
        session = data["session"]
        t = float(session["start_time"])
        out = []
        for identifiers, delta in session["frame_records"]:
            stack = tuple(_pyinstrument_frame(i) for i in identifiers[1:])  # [0]: the thread
            start_us = round((t - self._wall0) * 1e6)
            dur_us = round(float(delta) * 1e6)
            t += float(delta)
            if stack and dur_us > 0:
                out.append(Segment(pid, stack, start_us, dur_us))
        return out


def _pyinstrument_frame(identifier: str) -> tuple[str, str, int]:
    head = identifier.split("\x01", 1)[0]
    parts = head.split("\x00")
    func = parts[0] if parts else "?"
    file = parts[1] if len(parts) > 1 else ""
    line = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 0
    return func, file, line


Sampler = PySpySampler | PyinstrumentSampler | ThreadSampler


def choose_sampler(
    requested: str, ptrace_ok: bool, env: Mapping[str, str], workdir: Path, rate: int, wall0: float
) -> tuple[Sampler | None, str | None]:
    """The sampler to use and, when ``auto`` had to settle for less, why."""
    if requested == "none":
        return None, None
    if requested == "thread":
        return ThreadSampler(workdir, rate, wall0), None
    py_spy = shutil.which("py-spy", path=env.get("PATH")) or shutil.which("py-spy")
    if requested == "py-spy" or (requested == "auto" and ptrace_ok and py_spy):
        if py_spy is None:
            raise SamplerUnavailable("--stacks py-spy was asked for, but py-spy is not installed")
        return PySpySampler(py_spy, workdir, rate, wall0), None
    if requested == "auto":
        # The sampling thread needs no privilege and nothing installed, and costs the
        # build only its samples; pyinstrument (a callback on every call) must be named.
        why = "py-spy cannot use ptrace here" if not ptrace_ok else "py-spy is not installed"
        return ThreadSampler(workdir, rate, wall0), f"{why}: using the sampling thread"
    # Whether it is installed, without importing it into the recorder (25 ms of start-up):
    # it runs inside the build's Python processes, not here.
    if importlib.util.find_spec("pyinstrument") is None:
        raise SamplerUnavailable(
            "--stacks pyinstrument was asked for, but pyinstrument is not installed"
        )
    return PyinstrumentSampler(workdir, rate, wall0), None
