"""Building and preloading the LD_PRELOAD interposer in ``shim/btshim.c``.

Its records are read by ``recorder.interposer``.

The shim is compiled once per source version with the machine's C compiler and cached
under ``$XDG_CACHE_HOME/buildtape`` (default ``~/.cache/buildtape``). It cannot see what
libc does not do: statically linked programs, programs started with an emptied
environment (``env -i``) and setuid programs bypass it; strace's openat tracing remains
the fallback where the shim cannot be built.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
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


def build_shim(env: Mapping[str, str]) -> Shim:
    """The compiled shim, compiling it on first use; ``library`` is None with the reason."""
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
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".so.partial")
        os.close(fd)
        out = subprocess.run(
            [cc, *_FLAGS, "-o", tmp, str(SOURCE), "-ldl"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd="/",
        )
        if out.returncode != 0:
            os.unlink(tmp)
            first = (out.stderr.strip().splitlines() or ["unknown error"])[0]
            return Shim(None, f"the file-event shim did not compile ({first})")
        os.replace(tmp, target)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Shim(None, f"the file-event shim could not be built ({exc})")
    return Shim(target)


def preload_env(env: Mapping[str, str], library: Path, log: Path) -> dict[str, str]:
    """The build's environment with the shim preloaded ahead of any LD_PRELOAD it had."""
    out = dict(env)
    existing = env.get("LD_PRELOAD", "")
    out["LD_PRELOAD"] = f"{library} {existing}".strip()
    out[LOG_VAR] = str(log)
    return out
