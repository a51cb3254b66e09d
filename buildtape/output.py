"""Writing a command's result: to stdout for ``-``, else atomically to a file."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from buildtape.text.units import human_size


def write_text(path: str | None, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename, or to stdout."""
    if path is None or path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(path)
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
