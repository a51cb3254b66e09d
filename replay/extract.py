"""``extract``: a standalone reproducer for one recorded step.

The directory holds ``workspace/`` (every workspace file the step and its children read,
as the step saw it), ``run.sh`` (the exact cwd, environment and argv, with ``env -i`` so
nothing of the receiver's environment leaks in) and ``expected.sha256`` (the step's
recorded outputs, for ``sha256sum -c``). Running it needs only ``sh``: no buildtape.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from recorder.model import REDACTED, FileEntry, Manifest, Process
from recorder.reading import Tape
from replay.errors import ExtractError
from replay.restore import restore


@dataclass(frozen=True)
class ExtractOptions:
    step: int
    out_dir: Path


@dataclass
class Extracted:
    out_dir: Path
    step: Process
    files: int
    outputs: list[FileEntry]
    missing: list[str] = field(default_factory=list)
    redacted: list[str] = field(default_factory=list)


def subtree(m: Manifest, step_id: int) -> list[Process]:
    """The step and every process it started, directly or not."""
    children: dict[int, list[Process]] = {}
    for p in m.processes:
        if p.parent_id is not None:
            children.setdefault(p.parent_id, []).append(p)
    by_id = {p.id: p for p in m.processes}
    if step_id not in by_id:
        raise ExtractError(f"the tape has no step {step_id}; `buildtape ps TAPE` lists them")
    out, todo = [], [by_id[step_id]]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p.id, []))
    return sorted(out, key=lambda p: p.id)


def step_inputs(m: Manifest, step_id: int) -> list[FileEntry]:
    """Workspace files the step's subtree read, with the content it read.

    A file that existed before the build and that no earlier process wrote comes from the
    pre-build snapshot; a file an earlier step produced (an object file a link reads) comes
    from the build's outputs.
    """
    procs = subtree(m, step_id)
    first_start = min(p.start_s for p in procs)
    reads = {r for p in procs for r in p.reads if not r.startswith("/")}
    written_before = {
        w for p in m.processes if p.start_s < first_start and p not in procs for w in p.writes
    }
    before = {e.path: e for e in m.inputs}
    after = {e.path: e for e in m.outputs if e.change != "deleted"}
    out = []
    for path in sorted(reads):
        if path in before and path not in written_before:
            out.append(before[path])
        elif path in after:
            out.append(after[path])
        elif path in before:
            out.append(before[path])
    return out


def step_outputs(m: Manifest, step_id: int) -> list[FileEntry]:
    writes = {w for p in subtree(m, step_id) for w in p.writes if not w.startswith("/")}
    return [e for e in m.outputs if e.path in writes and e.change != "deleted" and e.sha256]


def run_script(m: Manifest, step: Process) -> tuple[str, list[str]]:
    """The shell script that re-runs ``step``, and the redacted variables it leaves unset."""
    rel = os.path.relpath(step.cwd, m.workspace)
    if rel.startswith(".."):
        raise ExtractError(f"step {step.id} ran outside the workspace ({step.cwd})")
    env = m.environment.vars
    kept = {k: v for k, v in sorted(env.items()) if v != REDACTED and "[REDACTED]" not in v}
    redacted = sorted(k for k in env if k not in kept)
    lines = [
        "#!/bin/sh",
        f"# Re-runs step {step.id} of a buildtape recording: {shlex.join(step.argv)[:200]}",
        "# Needs only sh; check the result with: sha256sum -c expected.sha256",
        "set -e",
        'here="$(cd "$(dirname "$0")" && pwd)"',
        f'cd "$here/workspace/{rel}"' if rel != "." else 'cd "$here/workspace"',
        f"umask {m.environment.umask}",
    ]
    if redacted:
        lines.append(f"# Redacted in the tape, so not set here: {' '.join(redacted)}")
    env_args = " \\\n  ".join(shlex.quote(f"{k}={v}") for k, v in kept.items())
    lines.append(f"exec env -i \\\n  {env_args} \\\n  {shlex.join(step.argv)}")
    return "\n".join(lines) + "\n", redacted


def extract(tape: Tape, options: ExtractOptions) -> Extracted:
    m = tape.manifest
    out_dir = options.out_dir
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ExtractError(f"{out_dir} is not empty; choose a new directory with -o")
    step = next(p for p in subtree(m, options.step) if p.id == options.step)
    if not step.argv:
        raise ExtractError(f"step {step.id} has no recorded argv (it was not traced)")
    script, redacted = run_script(m, step)
    inputs = step_inputs(m, step.id)
    work = out_dir / "workspace"
    restored = restore(tape, inputs, work)
    outputs = step_outputs(m, step.id)
    for entry in outputs:  # the step may expect its output directories to exist
        (work / entry.path).parent.mkdir(parents=True, exist_ok=True)
    (work / os.path.relpath(step.cwd, m.workspace)).mkdir(parents=True, exist_ok=True)
    run_sh = out_dir / "run.sh"
    run_sh.write_text(script)
    run_sh.chmod(0o755)
    (out_dir / "expected.sha256").write_text(
        "".join(f"{e.sha256}  workspace/{e.path}\n" for e in outputs)
    )
    return Extracted(out_dir, step, restored.files, outputs, restored.missing, redacted)
