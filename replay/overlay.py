"""Writes outside the workspace land in the sandbox: copy-on-write overlays of host directories.

bwrap 0.8 (Debian 12) mounts no overlays, so the replay does it itself, in the child that
then executes bwrap: a user and mount namespace of its own (the user keeps their uid), one
overlayfs per host directory the recording wrote into (``~/.cargo`` under ``/root``,
``/var/tmp``), its upper layer a directory of the sandbox. bwrap, nested in that namespace,
binds those overlays writable over its read-only view of the host, so the build sees the
host's files and may change them, and every change stays in ``<sandbox>/upper``; the host
directory is never written. Only directories the recording wrote into are overlaid (each
mount costs a few milliseconds); a write anywhere else fails, as on a read-only host.

Where overlays cannot be mounted (kernels before 5.11, a sandbox on a file system that
overlayfs cannot use as an upper layer), the run goes ahead without them and says so.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

# Top-level directories that bwrap mounts itself, or that hold no files of the host's.
_NOT_OVERLAID = frozenset({"/proc", "/dev", "/sys", "/tmp", "/run"})
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNS = 0x00020000
_MS_REC = 0x4000
_MS_PRIVATE = 0x40000
# Characters that overlayfs's option string would read as separators.
_UNSAFE = set(",:=\\\n")


@dataclass(frozen=True)
class Overlay:
    lower: str  # the host directory, which is also where it is mounted
    upper: Path  # its changes, in the sandbox
    work: Path  # overlayfs's scratch directory, on the same file system as ``upper``


def _mount_points() -> list[str]:
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    points = []
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 4:
            points.append(fields[4].replace("\\040", " "))
    return points


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def overlay_roots(written: Iterable[str], keep_clear: Iterable[str]) -> list[str]:
    """The host's top-level directories to overlay for writes to ``written`` (absolute
    paths the recording wrote outside its workspace).

    Not: what bwrap mounts itself (``/tmp``, ``/proc``…), a link, a directory with other
    file systems mounted below it (an overlay would hide them), or one holding a path of
    ``keep_clear`` (the sandbox itself: an upper layer must not lie inside its lower one).
    """
    tops = sorted({"/" + p.split("/")[1] for p in written if p.startswith("/") and p != "/"})
    mounts = _mount_points()
    clear = list(keep_clear)
    out = []
    for top in tops:
        if top in _NOT_OVERLAID or _UNSAFE & set(top) or os.path.islink(top):
            continue
        if not os.path.isdir(top) or any(_under(c, top) for c in clear):
            continue
        if any(_under(m, top) and m != top for m in mounts):
            continue
        out.append(top)
    return out


def prepare_overlays(roots: Iterable[str], sandbox: Path) -> list[Overlay]:
    out = []
    for root in roots:
        name = root.strip("/")
        upper, work = sandbox / "upper" / name, sandbox / "overlay-work" / name
        upper.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        out.append(Overlay(root, upper.resolve(), work.resolve()))
    return out


def enter(overlays: list[Overlay]) -> Callable[[], None]:
    """What the child runs before executing bwrap: its own user and mount namespace (same
    uid and gid), and the overlays mounted there. Raises OSError where they cannot be."""
    import ctypes  # only a replay that overlays something pays for it

    uid, gid = os.getuid(), os.getgid()
    options = [
        (
            o.lower.encode(),
            f"lowerdir={o.lower},upperdir={o.upper},workdir={o.work},userxattr".encode(),
        )
        for o in overlays
    ]
    libc = ctypes.CDLL(None, use_errno=True)

    def check(result: int, what: str) -> None:
        if result != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"{what}: {os.strerror(errno)}")

    def child() -> None:
        check(libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS), "unshare")
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                           ("gid_map", f"{gid} {gid} 1")):  # fmt: skip
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
        check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "private mounts")
        for target, opts in options:
            check(libc.mount(b"overlay", target, b"overlay", 0, opts), f"overlay {target!r}")

    return child


def written_outside(overlays: Iterable[Overlay]) -> list[str]:
    """The host paths the build created, changed or removed in the overlays (sorted)."""
    out: list[str] = []
    for o in overlays:
        for dirpath, _, filenames in os.walk(o.upper):
            rel = os.path.relpath(dirpath, o.upper)
            out += [os.path.normpath(os.path.join(o.lower, rel, name)) for name in filenames]
    return sorted(out)
