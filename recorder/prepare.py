"""Phase 1 of a recording: decide everything before the build starts.

Nothing here reads the workspace's content; it settles the command, the environment, the
workspace root, the tape's path and what the tape must never contain (itself, other tapes,
the history directory, buildtape's temporary files).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from recorder.errors import CommandNotExecutable, CommandNotFound, RecordError
from recorder.git import git_toplevel
from recorder.options import RecordOptions
from recorder.preload import LOG_VAR
from recorder.secrets import Redaction, redact_environment

EVENTS_VAR = "BUILDTAPE_EVENTS"
_OUR_VARS = (EVENTS_VAR, LOG_VAR)
# What a tape never holds, wherever it lies in the workspace: tapes, their partial files
# and buildtape's own directory (tapes, history).
OWN_FILES = ("*.tape", ".*.tape.*.partial", ".buildtape")


@dataclass(frozen=True)
class Plan:
    """What the recording will do, decided before anything runs."""

    options: RecordOptions
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    workspace: Path
    tape_path: Path
    excludes: tuple[str, ...]
    redaction: Redaction


def _resolve_command(argv0: str, env: Mapping[str, str], cwd: Path) -> str:
    if "/" in argv0:
        path = (cwd / argv0) if not argv0.startswith("/") else Path(argv0)
        if not path.exists():
            raise CommandNotFound(f"command not found: {argv0}")
        if path.is_dir() or not os.access(path, os.X_OK):
            raise CommandNotExecutable(f"command is not executable: {argv0}")
        return str(path)
    found = shutil.which(argv0, path=env.get("PATH", os.defpath))
    if found is None:
        raise CommandNotFound(f"command not found: {argv0} (not on PATH)")
    return found


def _default_tape_path(tapes_dir: Path, argv0: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = os.path.basename(argv0) or "build"
    return tapes_dir / f"{stamp}-{name}-{os.getpid()}.tape"


def relative(path: str, workspace: str) -> str:
    """Workspace paths become relative; others stay absolute."""
    if path == workspace:
        return "."
    if path.startswith(workspace + "/"):
        return path[len(workspace) + 1 :]
    return path


def prepare(options: RecordOptions) -> Plan:
    if not options.argv:
        raise RecordError("no command given; put the build command after --")
    env = dict(os.environ if options.env is None else options.env)
    for var in _OUR_VARS:
        env.pop(var, None)
    cwd = (options.cwd or Path.cwd()).resolve()
    _resolve_command(options.argv[0], env, cwd)
    workspace = (options.workspace or git_toplevel(cwd) or cwd).resolve()
    if not workspace.is_dir():
        raise RecordError(f"workspace {workspace} is not a directory")
    tapes_dir = options.tapes_dir or workspace / ".buildtape" / "tapes"
    tape_path = (options.output or _default_tape_path(tapes_dir, options.argv[0])).absolute()
    excludes = options.excludes + OWN_FILES
    for own in (tape_path, tapes_dir.absolute()):
        rel = relative(str(own), str(workspace))
        if not rel.startswith("/") and rel != ".":
            excludes += (rel,)
    return Plan(
        options=options,
        argv=list(options.argv),
        env=env,
        cwd=cwd,
        workspace=workspace,
        tape_path=tape_path,
        excludes=excludes,
        redaction=redact_environment(env, options.secrets),
    )
