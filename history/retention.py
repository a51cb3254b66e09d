"""Retention (``buildtape gc``): which tapes of the history to delete, and deleting them
safely.

A tape is kept when any keep rule keeps it (``keep_last``: among the newest N builds;
``keep_days``: started within N days); ``max_size`` then caps the kept tapes' total size,
dropping the oldest first. A tape whose ``.NAME.*.partial`` is locked by a recorder is
never touched, nor is that partial; a partial nobody holds was left by a killed recorder
and is removed.

Only files inside the history's own tapes directory (``<home>/tapes``) are ever deleted. A
tape written elsewhere (``record -o good.tape``) is the user's: when no rule keeps it, its
row is dropped from the index and the file is left where it is.
"""

from __future__ import annotations

import errno
import fcntl
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from history.options import RetentionOptions
from history.store import HistoryStore


@dataclass
class Plan:
    keep: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # being written; left alone
    missing: list[str] = field(default_factory=list)  # indexed, but gone from disk
    stale_partials: list[str] = field(default_factory=list)
    # Outside the tapes directory and kept by no rule: forgotten by the index, file kept.
    forget: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    kept_bytes: int = 0


def _locked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)
    return False


def _partials(tape: Path) -> list[Path]:
    return sorted(tape.parent.glob(f".{tape.name}.*.partial"))


class _Partials:
    """The partial files of each tape directory, listed once per directory: a history of
    10k tapes in one directory must not be listed 10k times."""

    def __init__(self) -> None:
        self._by_dir: dict[Path, list[Path]] = {}

    def under(self, directory: Path) -> list[Path]:
        if directory not in self._by_dir:
            found = sorted(directory.glob(".*.partial")) if directory.is_dir() else []
            self._by_dir[directory] = found
        return self._by_dir[directory]

    def being_written(self, tape: Path) -> bool:
        prefix = f".{tape.name}."
        return any(p.name.startswith(prefix) and _locked(p) for p in self.under(tape.parent))


def plan(store: HistoryStore, options: RetentionOptions, now: datetime | None = None) -> Plan:
    """What to keep and delete; nothing is touched until ``apply``."""
    keep_last, keep_days, max_size = options.keep_last, options.keep_days, options.max_bytes
    now = now or datetime.now(timezone.utc)
    cutoff = None
    if keep_days is not None:
        cutoff = (now - timedelta(days=keep_days)).isoformat(timespec="milliseconds")
        cutoff = cutoff.replace("+00:00", "Z")
    out = Plan()
    partials = _Partials()
    newest_first = list(reversed(store.build_rows()))
    own = (store.home / "tapes").resolve()
    kept_size = 0
    for rank, b in enumerate(newest_first):
        path = Path(b.tape)
        if not path.exists():
            out.missing.append(b.tape)
            continue
        ours = own in path.resolve().parents
        size = path.stat().st_size if ours else 0
        keep = keep_last is None and keep_days is None
        if keep_last is not None and rank < keep_last:
            keep = True
        if cutoff is not None and b.started_at >= cutoff:
            keep = True
        if keep and max_size is not None and kept_size + size > max_size:
            keep = False
        if partials.being_written(path):
            out.busy.append(b.tape)
        elif not ours:
            (out.keep if keep else out.forget).append(b.tape)
        elif keep:
            out.keep.append(b.tape)
            kept_size += size
        else:
            out.delete.append(b.tape)
            out.freed_bytes += size
    out.kept_bytes = kept_size
    # Partials are looked for where gc may delete: the tapes directory and its subdirectories.
    dirs = {Path(t).parent for t in out.delete} | {store.home / "tapes"}
    for d in sorted(dirs):
        for partial in partials.under(d):
            if not _locked(partial):
                out.stale_partials.append(str(partial))
    return out


def apply(store: HistoryStore, p: Plan) -> list[str]:
    """Delete what the plan says; returns the tapes that could not be deleted, with why."""
    problems = []
    gone = list(p.missing)
    for tape in p.delete:
        path = Path(tape)
        if any(_locked(x) for x in _partials(path)):
            continue  # a recorder started rewriting it since the plan was made (fresh look)
        try:
            path.unlink()
            gone.append(tape)
        except FileNotFoundError:
            gone.append(tape)
        except OSError as exc:
            problems.append(f"{tape}: {exc.strerror}")
    for partial in p.stale_partials:
        path = Path(partial)
        if not _locked(path):
            path.unlink(missing_ok=True)
    store.forget(gone + p.forget)
    return problems
