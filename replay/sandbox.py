"""Where a replay runs: a bubblewrap sandbox at the recorded path, or a plain directory.

With user and mount namespaces (``bwrap``), the restored workspace is bind-mounted at the
**recorded absolute path**, ``/tmp`` is a directory of the sandbox, the rest of the host is
mounted read-only, and the hostname is the recorded one: a build that embeds its directory
rebuilds byte for byte, and nothing it does reaches the user's checkout or the host. A
recorded path that no longer exists (the checkout was moved) is created inside the sandbox
only: its nearest existing ancestor is shadowed by a tmpfs that re-binds that ancestor's
entries read-only, so nothing appears at the old path on the host.

Without namespaces (some containers), the workspace is restored into a directory elsewhere
(``directory``); the caller says which outputs may differ because they embed the path, and
refuses steps that name the recorded workspace (they would run against the user's copy).

``BUILDTAPE_SANDBOX=directory`` (or ``bwrap``) forces the choice that ``auto`` makes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replay.errors import SandboxError
from replay.overlay import Overlay, enter

MODES = ("auto", "bwrap", "directory")
MODE_VAR = "BUILDTAPE_SANDBOX"
# Mounted apart from the read-only host view.
_OWN_MOUNTS = ("/proc", "/dev", "/tmp")


@dataclass(frozen=True)
class Isolation:
    """How the runs of one replay are isolated."""

    # "bwrap": namespaces, workspace at the recorded path; "directory": restored elsewhere.
    kind: str
    # Why namespaces are not used (None with bwrap).
    reason: str | None = None
    bwrap: str | None = None


@functools.cache
def _probe(bwrap: str) -> str | None:
    """None when ``bwrap`` can create user and mount namespaces here, else why not."""
    try:
        out = subprocess.run(
            [bwrap, "--unshare-user", "--unshare-pid", "--ro-bind", "/", "/", "--proc", "/proc",
             "--dev", "/dev", "true"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap could not run ({exc})"
    if out.returncode != 0:
        first = (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[0]
        return f"user namespaces are not available here ({first})"
    return None


def choose_isolation(mode: str, env: Mapping[str, str]) -> Isolation:
    """The isolation for ``mode``: auto, bwrap or directory; ``$BUILDTAPE_SANDBOX`` refines auto."""
    if mode == "auto":
        mode = env.get(MODE_VAR, "auto") or "auto"
    if mode not in MODES:
        raise SandboxError(f"unknown sandbox {mode!r} (from ${MODE_VAR}?); use {', '.join(MODES)}")
    if mode == "directory":
        return Isolation("directory", f"namespaces turned off (sandbox {mode})")
    bwrap = shutil.which("bwrap", path=env.get("PATH", os.defpath)) or shutil.which("bwrap")
    reason = "bubblewrap (bwrap) is not installed" if bwrap is None else _probe(bwrap)
    if reason is None:
        return Isolation("bwrap", None, bwrap)
    if mode == "bwrap":
        raise SandboxError(f"--sandbox bwrap was asked for, but {reason}")
    return Isolation("directory", reason)


def _own_import_roots() -> list[str]:
    return [str(Path(__file__).resolve().parent.parent)]


def own_paths() -> list[str]:
    """What the recorder inside needs that lies under /tmp, which the sandbox replaces
    (a virtualenv or checkout of buildtape there): bound read-only at the same path."""
    paths = {str(Path(p).resolve()) for p in (*_own_import_roots(), sys.prefix, sys.base_prefix)}
    return sorted(p for p in paths if _under(p, "/tmp") and os.path.isdir(p))


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


@dataclass(frozen=True)
class Layout:
    """What one bwrap run mounts where (host paths on the left, sandbox paths on the right)."""

    workspace: Path  # the restored workspace on the host
    place: str  # where the build sees it: the recorded path, or a varied one
    tmp: Path  # the host directory that is the sandbox's /tmp
    out: Path  # where the inner recorder writes its tape and result (same path inside)
    cwd: str  # the build's cwd inside the sandbox
    hostname: str | None = None
    # Extra read-only files or directories: (host path, sandbox path).
    files: tuple[tuple[Path, str], ...] = ()
    # The build's cache directory (~/.cache): an empty writable tmpfs in the sandbox, as
    # on a fresh machine (Go's build cache must be writable), with buildtape's own cache
    # in it read-only.
    cache: str | None = None
    # Host directories the recording wrote into, each a copy-on-write overlay whose upper
    # layer is in the sandbox (``replay.overlay``), bound writable over the read-only host.
    overlays: tuple[Overlay, ...] = ()


def cache_dir(env: Mapping[str, str]) -> str | None:
    """The build's cache directory: ``$XDG_CACHE_HOME``, else ``$HOME/.cache``."""
    if env.get("XDG_CACHE_HOME", "").startswith("/"):
        return os.path.normpath(env["XDG_CACHE_HOME"])
    home = env.get("HOME", "")
    return os.path.join(os.path.normpath(home), ".cache") if home.startswith("/") else None


def _deepest_existing(path: str) -> str:
    p = path
    while p != "/" and not os.path.isdir(p):
        p = os.path.dirname(p)
    return p


def _shadow(directory: str, skip: Iterable[str] = ()) -> list[str]:
    """Replace ``directory`` by a tmpfs that re-binds its entries read-only."""
    args = [] if directory == "/" else ["--tmpfs", directory]
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise SandboxError(f"cannot list {directory} to mount the sandbox ({exc})") from exc
    for name in names:
        full = os.path.join(directory, name)
        if full in skip:
            continue
        if os.path.islink(full):
            args += ["--symlink", os.readlink(full), full]
        else:
            args += ["--ro-bind-try", full, full]
    return args


def bwrap_argv(
    bwrap: str,
    layout: Layout,
    command: Sequence[str],
    env: Mapping[str, str] | None = None,
    status_fd: int | None = None,
) -> list[str]:
    """The bwrap command line that runs ``command`` in ``layout``.

    ``env``: the build's whole environment, set by bwrap itself (bwrap runs with
    buildtape's own); ``status_fd``: where bwrap reports the child's start and exit.
    """
    if (
        not layout.place.startswith("/")
        or layout.place == "/"
        or any(_under(own, layout.place) for own in _OWN_MOUNTS)
    ):
        raise SandboxError(f"cannot mount a workspace at {layout.place}")
    # A target outside /tmp that does not exist on the host cannot be created in the
    # read-only view: its nearest existing ancestor is shadowed (outermost first).
    needed = set()
    if not _under(layout.place, "/tmp") and not os.path.isdir(layout.place):
        needed.add(_deepest_existing(layout.place))
    for _, inside in layout.files:
        if not _under(inside, "/tmp") and not os.path.exists(inside):
            needed.add(_deepest_existing(os.path.dirname(inside)))
    shadows = sorted(needed, key=lambda d: (d.count("/"), d))
    args = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--die-with-parent"]
    if layout.hostname:
        args += ["--unshare-uts", "--hostname", layout.hostname]
    if "/" in shadows:
        args += _shadow("/", skip=_OWN_MOUNTS)
        shadows.remove("/")
    else:
        args += ["--ro-bind", "/", "/"]
    for o in layout.overlays:
        args += ["--bind", o.lower, o.lower]
    args += ["--dev", "/dev", "--proc", "/proc", "--bind", str(layout.tmp), "/tmp"]
    for directory in shadows:
        args += _shadow(directory)
    cache = layout.cache
    apart = cache and not (_under(cache, layout.place) or _under(layout.place, cache))
    if cache and apart and os.path.isdir(cache) and not _under(cache, "/tmp"):
        own = os.path.join(cache, "buildtape")
        args += ["--tmpfs", cache, "--ro-bind-try", own, own]
    args += ["--bind", str(layout.workspace), layout.place]
    for host, inside in layout.files:
        args += ["--ro-bind", str(host), inside]
    args += ["--bind", str(layout.out), str(layout.out), "--chdir", layout.cwd]
    if env is not None:
        args.append("--clearenv")
        for name, value in env.items():
            args += ["--setenv", name, value]
    if status_fd is not None:
        args += ["--json-status-fd", str(status_fd)]
    return [*args, "--", *command]


@dataclass(frozen=True)
class InnerSpec:
    """What the recorder inside the sandbox runs (written as JSON for ``replay.inside``)."""

    argv: list[str]
    workspace: str
    cwd: str
    env: dict[str, str]
    umask: str
    trace: str
    tape: str
    result: str

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__))


@dataclass(frozen=True)
class InnerResult:
    exit_status: int | None
    notes: list[str]
    error: str | None


def run_inside(
    isolation: Isolation, layout: Layout | None, spec: InnerSpec, out: Path, build_stdout: int
) -> InnerResult:
    """Record ``spec`` in a fresh interpreter: inside bwrap laid out as ``layout``, or
    (directory isolation, ``layout`` None) as a plain child process.

    ``build_stdout``: the file descriptor the build's standard output goes to (2 keeps
    stdout free for a JSON verdict).
    """
    spec_path = out / "spec.json"
    spec.write(spec_path)
    env = dict(os.environ)
    roots = _own_import_roots()
    env["PYTHONPATH"] = os.pathsep.join([*roots, *filter(None, [env.get("PYTHONPATH")])])
    command = [sys.executable, "-m", "replay.inside", str(spec_path)]
    if layout is not None:
        own = tuple((Path(p), p) for p in own_paths())
        layout = dataclasses.replace(layout, files=(*layout.files, *own))
    popen: dict[str, Any] = {"env": env, "stdin": subprocess.DEVNULL, "stdout": build_stdout}
    notes: list[str] = []
    if layout is None:
        proc = subprocess.run(command, **popen)
    else:
        bwrap = isolation.bwrap or "bwrap"
        proc, notes = _spawn(layout, lambda lay: bwrap_argv(bwrap, lay, command), popen)
    try:
        raw = json.loads(Path(spec.result).read_text())
    except (OSError, ValueError):
        return InnerResult(None, notes, f"the recorder exited {proc.returncode} before recording")
    return InnerResult(raw.get("exit_status"), [*notes, *raw.get("notes", [])], raw.get("error"))


OVERLAY_FAILED = (
    "writes outside the workspace and /tmp fail in this replay (the host is read-only): "
    "overlays could not be mounted here ({})"
)


def _spawn(
    layout: Layout, argv_for: Callable[[Layout], list[str]], popen: dict[str, Any]
) -> tuple[subprocess.CompletedProcess[bytes], list[str]]:
    """Run bwrap for ``layout``, entering its overlays first; where they cannot be
    mounted, nothing has run yet, so it runs again without them, and says so."""
    if not layout.overlays:
        return subprocess.run(argv_for(layout), **popen), []
    try:
        return subprocess.run(
            argv_for(layout), preexec_fn=enter(list(layout.overlays)), **popen
        ), []
    except subprocess.SubprocessError as exc:  # raised by the child before it ran bwrap
        bare = dataclasses.replace(layout, overlays=())
        return subprocess.run(argv_for(bare), **popen), [OVERLAY_FAILED.format(exc)]


@dataclass(frozen=True)
class DirectResult:
    exit_status: int
    notes: list[str]


def run_direct(
    isolation: Isolation,
    layout: Layout | None,
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str,
    umask: str,
    build_stdout: int,
) -> DirectResult:
    """Run the build itself, with no interpreter of ours in between: inside bwrap laid out
    as ``layout`` (bwrap sets the environment and cwd, the umask is inherited), or, with
    directory isolation (``layout`` None), as a plain child process in ``cwd``.

    The exit status is the build's, as a shell reports it (128+N for signal N).
    """
    mask = int(umask, 8)
    if layout is None:
        try:
            proc = subprocess.run(
                list(argv), cwd=cwd, env=dict(env), umask=mask, stdin=subprocess.DEVNULL,
                stdout=build_stdout, check=False,
            )  # fmt: skip
        except OSError as exc:
            return DirectResult(127 if isinstance(exc, FileNotFoundError) else 126, [])
        code = proc.returncode
        return DirectResult(code if code >= 0 else 128 - code, [])
    read_fd, write_fd = os.pipe()
    try:
        bwrap = isolation.bwrap or "bwrap"
        popen: dict[str, Any] = {
            "umask": mask, "stdin": subprocess.DEVNULL, "stdout": build_stdout,
            "pass_fds": (write_fd,),
        }  # fmt: skip
        proc, notes = _spawn(layout, lambda lay: bwrap_argv(bwrap, lay, argv, env, write_fd), popen)
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as status:
        reports = status.read().decode("utf-8", "replace")
    if '"child-pid"' not in reports:
        raise SandboxError(f"bwrap could not start the build (it exited {proc.returncode})")
    return DirectResult(proc.returncode, notes)
