"""Building and preloading the LD_PRELOAD interposer in ``shim/btshim.c``.

Its records are read by ``recorder.interposer``.

The shim is compiled once per source version with the machine's C compiler and cached
under ``$XDG_CACHE_HOME/buildtape`` (default ``~/.cache/buildtape``). It cannot see what
libc does not do: statically linked programs, programs started with an emptied
environment (``env -i``) and setuid programs bypass it; strace's openat tracing remains
the fallback where the shim cannot be built.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).with_name("shim") / "btshim.c"
LOG_VAR = "BUILDTAPE_FILELOG"


# Every process of the build maps the shim: two segments instead of four (one read-only
# and executable, one writable, no RELRO split to mprotect) save it about four page faults
# and mappings (benchmarks/shim_cost.py). RELRO would guard the shim's own GOT against a
# memory bug in the build process, which already runs the build's code as the user.
_FLAGS = ("-shared", "-fPIC", "-O2", "-Wl,-z,noseparate-code", "-Wl,-z,norelro")


@dataclass(frozen=True)
class Shim:
    library: Path | None
    reason: str | None = None


def cache_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "buildtape"


# Seconds a compile of the shim may take (``BUILDTAPE_SHIM_TIMEOUT`` changes it): cc on an
# idle machine needs well under one; a stuck compiler must not hold the recording forever.
_TIMEOUT_S = 120.0
TIMEOUT_VAR = "BUILDTAPE_SHIM_TIMEOUT"
# A compile's private directory is removed by a later recorder once no process holds its
# lock and it has not changed for this long (its recorder was killed).
_ABANDONED_S = 60.0


def build_shim(env: Mapping[str, str]) -> Shim:
    """The compiled shim, compiling it on first use; ``library`` is None with the reason.

    Each compile runs in a private ``*.partial`` directory beside the cache (the compiler's
    temporary files too: ``TMPDIR`` points there), in a process group of its own; whatever
    ends it (an error, the timeout, a signal, a Ctrl-C) the group is killed and the directory
    removed, and only a complete library is renamed to its final name. A directory that a
    killed recorder could not remove is removed by the next one.
    """
    try:
        source = SOURCE.read_bytes()
    except OSError as exc:
        return Shim(None, f"the shim source is missing ({exc.strerror})")
    tag = hashlib.sha256(source + " ".join(_FLAGS).encode()).hexdigest()[:16]
    target = cache_dir(env) / f"btshim-{tag}-{os.uname().machine}.so"
    if target.exists():
        return Shim(target)
    cc = shutil.which(env.get("CC", "cc"), path=env.get("PATH")) or shutil.which("cc")
    if cc is None:
        return Shim(None, "no C compiler to build the file-event shim")
    try:
        timeout = float(env.get(TIMEOUT_VAR) or _TIMEOUT_S)
    except ValueError:
        return Shim(None, f"{TIMEOUT_VAR}={env[TIMEOUT_VAR]!r} is not a number of seconds")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(target.parent)
        work = Path(
            tempfile.mkdtemp(dir=target.parent, prefix=f"{target.stem}.", suffix=".partial")
        )
    except OSError as exc:
        return Shim(
            None, f"the file-event shim could not be built ({exc.strerror}: {target.parent})"
        )
    try:
        with open(work / "lock", "wb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            built = work / "btshim.so"
            reason = _compile(cc, built, work, env, timeout)
            if reason is not None:
                return Shim(None, reason)
            os.replace(built, target)
    except OSError as exc:
        return Shim(None, f"the file-event shim could not be built ({exc.strerror})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Shim(target)


def _compile(cc: str, out: Path, work: Path, env: Mapping[str, str], timeout: float) -> str | None:
    """Compile the shim into ``out``; None when it worked, else why not."""
    # Its messages go to a file, not a pipe: a helper it leaves running would hold a pipe
    # open, and waiting for the pipe's end would be waiting for the helper.
    with open(work / "stderr", "w+b") as errors:
        proc = subprocess.Popen(
            [cc, *_FLAGS, "-o", str(out), str(SOURCE), "-ldl"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            cwd="/",
            env={**env, "TMPDIR": str(work)},
            start_new_session=True,  # its own group: killing it reaches cc1, as and ld too
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return (
                f"the file-event shim did not compile within {timeout:g} s ({cc} was stopped; "
                f"{TIMEOUT_VAR} sets a longer limit)"
            )
        finally:
            # The whole group, gone: none of it may write into the directory later.
            with contextlib.suppress(OSError):  # the group is empty: all of it ended
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        errors.seek(0)
        stderr = errors.read(4096).decode(errors="replace")
    if proc.returncode < 0:
        killed = _signal_name(-proc.returncode)
        return f"the file-event shim did not compile ({cc} was killed by {killed})"
    if proc.returncode != 0 or not out.exists():
        first = (stderr.strip().splitlines() or ["unknown error"])[0]
        return f"the file-event shim did not compile ({first})"
    return None


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _remove_abandoned(cache: Path) -> None:
    """Remove what compiles whose recorder was killed left behind."""
    now = time.time()
    for entry in cache.glob("*.partial"):
        try:
            age = now - entry.lstat().st_mtime
            if entry.name.startswith("btshim-") and entry.is_dir():
                if age < _ABANDONED_S:
                    continue  # just made: its compile may not hold its lock yet
                with open(entry / "lock", "rb") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    shutil.rmtree(entry)
            elif entry.name.endswith(".so.partial") and age > 10 * _TIMEOUT_S:
                entry.unlink()  # an earlier version compiled to tmp*.so.partial, not a directory
        except OSError:
            continue  # a compile holds it, or another recorder removed it first


def preload_env(env: Mapping[str, str], library: Path, log: Path) -> dict[str, str]:
    """The build's environment with the shim preloaded ahead of any LD_PRELOAD it had."""
    out = dict(env)
    existing = env.get("LD_PRELOAD", "")
    out["LD_PRELOAD"] = f"{library} {existing}".strip()
    out[LOG_VAR] = str(log)
    return out
