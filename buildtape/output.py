"""Writing a command's result: to stdout for ``-``, else atomically to a file."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from buildtape.errors import OutputNotWritten
from buildtape.text.units import human_size


def write_text(path: str | None, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename, or to stdout."""
    if path is None or path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        if os.path.exists(path) and not os.path.isfile(path):
            # A device, FIFO or terminal (/dev/stdout, /dev/null, a process substitution):
            # renaming over it would put a regular file where the device was.
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            return
        # Through a symbolic link, the file it names is replaced and the link stays.
        _replace(Path(os.path.realpath(path)), text)
    except OSError as exc:
        raise OutputNotWritten(path, exc) from exc


def _replace(target: Path, text: str) -> None:
    """Write ``target`` whole or not at all: a temporary file beside it, then a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def wrote(path: str | None, text: str) -> None:
    """Say where a result went (nothing for stdout): every command that writes a file
    names it, on stderr, so a script's stdout stays the result's."""
    if path is None or path == "-":
        return
    size = human_size(len(text.encode("utf-8")))
    click.echo(f"buildtape: wrote {path} ({size})", err=True)
