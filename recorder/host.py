"""Facts about the machine and the process environment a build ran in."""

from __future__ import annotations

import locale
import os
import resource
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recorder.model import Host

_LIMITS = {
    "core": resource.RLIMIT_CORE,
    "cpu": resource.RLIMIT_CPU,
    "data": resource.RLIMIT_DATA,
    "fsize": resource.RLIMIT_FSIZE,
    "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC,
    "stack": resource.RLIMIT_STACK,
    "as": resource.RLIMIT_AS,
}
_LOCALE_VARS = (
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_COLLATE",
    "LC_CTYPE",
    "LC_MESSAGES",
    "LC_NUMERIC",
    "LC_TIME",
)


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def host_info() -> Host:
    from recorder.model import Host  # a recording asks this after its build

    # os.uname() is what platform.uname() and socket.gethostname() read on POSIX; using it
    # directly keeps two modules out of record's start-up.
    uname = os.uname()
    return Host(
        os=uname.sysname,
        kernel=uname.release,
        arch=uname.machine,
        cpus=os.cpu_count() or 1,
        memory_bytes=_memory_bytes(),
        hostname=uname.nodename,
        python=sys.version.split()[0],
    )


def current_umask() -> str:
    mask = os.umask(0)
    os.umask(mask)
    return f"{mask:04o}"


def ulimits() -> dict[str, str]:
    def fmt(v: int) -> str:
        return "unlimited" if v == resource.RLIM_INFINITY else str(v)

    out = {}
    for name, which in _LIMITS.items():
        soft, hard = resource.getrlimit(which)
        out[name] = f"{fmt(soft)}/{fmt(hard)}"
    return out


def locale_settings(env: Mapping[str, str]) -> dict[str, str]:
    out = {name: env[name] for name in _LOCALE_VARS if name in env}
    out["preferred_encoding"] = locale.getpreferredencoding(False)
    return out


def timezone(env: Mapping[str, str]) -> str:
    if "TZ" in env:
        return env["TZ"]
    return f"localtime ({time.tzname[0]})"
