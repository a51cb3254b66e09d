"""The options of one recording, with their defaults (the CLI's defaults) in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from recorder.secrets import SecretPolicy

SNAPSHOT_MODES = ("touched", "full")


@dataclass(frozen=True)
class RecordOptions:
    """What to record and how. Defaults here are the CLI's defaults."""

    argv: tuple[str, ...]
    # Tape path; None: <tapes_dir>/<UTC time>-<command>-<pid>.tape.
    output: Path | None = None
    # Where default tape names go; None: .buildtape/tapes in the workspace.
    tapes_dir: Path | None = None
    # Root whose files are snapshotted; None: the git top level of cwd, else cwd.
    workspace: Path | None = None
    # Where the build runs; None: the current directory.
    cwd: Path | None = None
    # auto | preload | strace | proc | none: where process events come from. auto: the
    # LD_PRELOAD interposer when it can be built (no ptrace stops), else strace, else /proc.
    trace: str = "auto"
    # auto | preload | strace: where per-process file events come from. auto: the tracer's
    # own (the interposer's under preload, strace's under strace, which also sees static
    # executables).
    file_events: str = "auto"
    # touched: content of what the build read or wrote (and pre-build content of what it
    # changed), the rest listed by stat; full: every workspace file's content, as before 1.1.
    snapshot: str = "touched"
    # Globs (on the relative path or the file name) left out of the snapshots.
    excludes: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    secrets: SecretPolicy = field(default_factory=SecretPolicy)
    # Files larger than this are hashed but their content is not stored.
    max_store_bytes: int = 64 * 1024 * 1024
    # auto | py-spy | pyinstrument | none: how Python processes are sampled.
    stacks: str = "auto"
    # Samples per second of each Python process.
    rate: int = 100
    # Give the build a pty for each of our streams that is a terminal.
    use_tty: bool = True
    # zstd level of the content packs (3: fast; the manifest is always compressed at 9).
    compression_level: int = 3
    # The build's environment; None: this process's environment.
    env: Mapping[str, str] | None = None
