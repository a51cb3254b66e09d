"""Timed Python stacks of the build's Python processes: py-spy, or pyinstrument without ptrace.

Both samplers produce ``Segment``s: a process, a stack of Python frames (outermost
first), when it started and how long it lasted, in microseconds since the build started.

* **py-spy** is started for every Python process the tracer sees exec, with
  ``--nonblocking``: it reads the process's memory without attaching, so it works while
  strace is the process's tracer. Its chrometrace output keeps each sample's time.
* **pyinstrument** needs no privilege: a ``sitecustomize`` put first on ``PYTHONPATH``
  starts a profiler in every Python process of the build and saves its session at exit,
  then runs the build's own ``sitecustomize``, if it has one.
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

SAMPLERS = ("auto", "py-spy", "pyinstrument", "none")
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


_SITECUSTOMIZE = '''\
"""buildtape: profile this Python process with pyinstrument, then run the build's own
sitecustomize. Installed only for the duration of a `buildtape record`."""
import os as _os
import sys as _sys


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
    import atexit
    import json

    interval = float(_os.environ.get("{interval_var}", "0.01"))
    profiler = Profiler(interval=interval, async_mode="disabled")
    pid = _os.getpid()
    profiler.start()

    def save():
        try:
            session = profiler.stop()
            path = _os.path.join(out_dir, "%d.json" % pid)
            with open(path + ".partial", "w") as f:
                json.dump(dict(pid=pid, session=session.to_json()), f)
            _os.replace(path + ".partial", path)
        except Exception:
            pass

    atexit.register(save)


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


try:
    _buildtape_profile()
except Exception:
    pass
_buildtape_chain()
'''


class PyinstrumentSampler:
    """Profiles every Python process of the build from the inside; no ptrace needed."""

    name = "pyinstrument"

    def __init__(self, workdir: Path, rate: int, wall0: float) -> None:
        self._site = workdir / "site"
        self._site.mkdir()
        self._out = workdir / "pyinstrument"
        self._out.mkdir()
        self._rate = rate
        self._wall0 = wall0
        (self._site / "sitecustomize.py").write_text(
            _SITECUSTOMIZE.format(
                dir_var=DIR_VAR, path_var=FALLBACK_PATH_VAR, interval_var=INTERVAL_VAR
            )
        )

    def child_env(self, env: dict[str, str]) -> dict[str, str]:
        # Where pyinstrument is installed, for the build's Python processes to find it;
        # found without importing it here.
        spec = importlib.util.find_spec("pyinstrument")
        origin = spec.origin if spec is not None else None
        if origin is None:
            raise SamplerUnavailable("pyinstrument is not installed")
        out = dict(env)
        existing = env.get("PYTHONPATH")
        out["PYTHONPATH"] = str(self._site) + (os.pathsep + existing if existing else "")
        out[DIR_VAR] = str(self._out)
        out[INTERVAL_VAR] = f"{1.0 / self._rate:.6f}"
        out[FALLBACK_PATH_VAR] = str(Path(origin).resolve().parent.parent)
        return out

    def process_started(self, pid: int, exe: str) -> None:
        pass

    def finish(self) -> list[Segment]:
        segments: list[Segment] = []
        for path in sorted(self._out.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                pid = int(data["pid"])
                session = data["session"]
                t = float(session["start_time"])
                records = session["frame_records"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            for identifiers, delta in records:
                stack = tuple(_pyinstrument_frame(i) for i in identifiers[1:])  # [0]: the thread
                start_us = round((t - self._wall0) * 1e6)
                dur_us = round(float(delta) * 1e6)
                t += float(delta)
                if stack and dur_us > 0:
                    segments.append(Segment(pid, stack, start_us, dur_us))
        return segments


def _pyinstrument_frame(identifier: str) -> tuple[str, str, int]:
    head = identifier.split("\x01", 1)[0]
    parts = head.split("\x00")
    func = parts[0] if parts else "?"
    file = parts[1] if len(parts) > 1 else ""
    line = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 0
    return func, file, line


Sampler = PySpySampler | PyinstrumentSampler


def choose_sampler(
    requested: str, ptrace_ok: bool, env: Mapping[str, str], workdir: Path, rate: int, wall0: float
) -> tuple[Sampler | None, str | None]:
    """The sampler to use and, when ``auto`` had to settle for less, why."""
    if requested == "none":
        return None, None
    py_spy = shutil.which("py-spy", path=env.get("PATH")) or shutil.which("py-spy")
    if requested == "py-spy" or (requested == "auto" and ptrace_ok and py_spy):
        if py_spy is None:
            raise SamplerUnavailable("--stacks py-spy was asked for, but py-spy is not installed")
        return PySpySampler(py_spy, workdir, rate, wall0), None
    # Whether it is installed, without importing it into the recorder (25 ms of start-up):
    # it runs inside the build's Python processes, not here.
    if importlib.util.find_spec("pyinstrument") is None:
        if requested == "pyinstrument":
            raise SamplerUnavailable(
                "--stacks pyinstrument was asked for, but pyinstrument is not installed"
            ) from None
        return None, "neither py-spy (with ptrace) nor pyinstrument is available"
    reason = None if requested == "pyinstrument" else "ptrace is not permitted: using pyinstrument"
    return PyinstrumentSampler(workdir, rate, wall0), reason


class SamplerUnavailable(Exception):
    """The sampler asked for by name cannot run here."""
