"""Passes the build's stdout and stderr through live while keeping timestamped chunks.

When buildtape's own stream is a terminal, the build gets a pseudo-terminal for it, so
tools that colour their output for a terminal still do. The pty is put in raw mode so
the bytes captured are the bytes the build wrote (no ``\\n`` to ``\\r\\n`` rewriting);
the user's terminal does that translation itself when we write to it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import selectors
import struct
import termios
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field

_READ = 65536


@dataclass
class Captured:
    # (monotonic seconds since start, stream name, bytes) in the order they were read.
    chunks: list[tuple[float, str, bytes]] = field(default_factory=list)

    def joined(self, stream: str) -> bytes:
        return b"".join(data for _, s, data in self.chunks if s == stream)


def _copy_winsize(src_fd: int, dst_fd: int) -> None:
    try:
        size = fcntl.ioctl(src_fd, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
        fcntl.ioctl(dst_fd, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def _write_all(fd: int, data: bytes) -> bool:
    """Write everything; False once the reader went away (EPIPE), so capture goes on alone."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            time.sleep(0.001)
            continue
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.EBADF):
                return False
            raise
        view = view[n:]
    return True


class StreamPump:
    """Owns the build's stdout/stderr: ``child_fds`` for spawning, ``run`` to pump."""

    def __init__(self, out_fd: int, err_fd: int, use_tty: bool, t0: float) -> None:
        self._targets = {"stdout": out_fd, "stderr": err_fd}
        self._t0 = t0
        self.captured = Captured()
        self._masters: dict[int, str] = {}
        self._child: dict[str, int] = {}
        for name, target in self._targets.items():
            if use_tty and os.isatty(target):
                master, slave = pty.openpty()
                tty.setraw(slave)
                _copy_winsize(target, slave)
            else:
                master, slave = os.pipe()
            self._masters[master] = name
            self._child[name] = slave

    def child_fds(self) -> tuple[int, int]:
        return self._child["stdout"], self._child["stderr"]

    def close_child_fds(self) -> None:
        for fd in self._child.values():
            os.close(fd)
        self._child.clear()

    def run(
        self, build_done: Callable[[], bool], tick: Callable[[], None], grace_s: float = 2.0
    ) -> None:
        """Pump until both streams close, or ``grace_s`` after the build ended.

        ``tick`` runs about every 50 ms, so other tailing work can share this loop.
        The grace period bounds the wait on a daemon that inherited the build's stdout.
        """
        sel = selectors.DefaultSelector()
        for fd in self._masters:
            sel.register(fd, selectors.EVENT_READ)
        writable = {name: True for name in self._targets}
        done_at: float | None = None
        try:
            while sel.get_map():
                for key, _ in sel.select(timeout=0.05):
                    fd = key.fd
                    name = self._masters[fd]
                    try:
                        data = os.read(fd, _READ)
                    except OSError as exc:
                        if exc.errno != errno.EIO:  # EIO: the pty's last writer closed it
                            raise
                        data = b""
                    if not data:
                        sel.unregister(fd)
                        continue
                    self.captured.chunks.append((time.monotonic() - self._t0, name, data))
                    if writable[name]:
                        writable[name] = _write_all(self._targets[name], data)
                tick()
                if build_done():
                    now = time.monotonic()
                    done_at = done_at or now
                    if now - done_at > grace_s:
                        break
        finally:
            sel.close()
            for fd in self._masters:
                os.close(fd)
            self._masters.clear()
