"""A build's steps as a person counts them: which processes are steps, which are outermost,
the slowest, and which failed and where (the words are defined in docs/glossary.md).
Everything here reads the manifest alone."""

from __future__ import annotations

from recorder.ansi import strip_sgr
from recorder.first_error import FirstError, first_error, step_names
from recorder.model import Manifest, Process

DRIVER_CHILDREN = 3


def steps(manifest: Manifest) -> list[Process]:
    """Processes that are build steps: not the root, and not drivers such as make or a
    build script (more than ``DRIVER_CHILDREN`` children). A compiler driver with its
    cc1, as and collect2 stays a step, as a person would count it."""
    children: dict[int, int] = {}
    for p in manifest.processes:
        if p.parent_id is not None:
            children[p.parent_id] = children.get(p.parent_id, 0) + 1
    out = [
        p
        for p in manifest.processes
        if p.parent_id is not None and children.get(p.id, 0) <= DRIVER_CHILDREN
    ]
    return out or list(manifest.processes)


def outermost_steps(manifest: Manifest) -> list[Process]:
    """Steps that are not inside another step: the cc, not its cc1."""
    candidates = steps(manifest)
    ids = {p.id for p in candidates}
    return [p for p in candidates if p.parent_id not in ids]


def slowest(manifest: Manifest, n: int = 10) -> list[Process]:
    """The slowest steps, longest first, ties by id. A step inside another step (the cc1 of
    a cc) is part of that step's time, so only the outermost is listed."""
    candidates = steps(manifest)
    ids = {p.id for p in candidates}
    timed = [p for p in candidates if p.duration_s is not None and p.parent_id not in ids]
    return sorted(timed, key=lambda p: (-(p.duration_s or 0.0), p.id))[:n]


def failure_origins(manifest: Manifest) -> list[Process]:
    """Failed processes none of whose children failed: where each failure started."""
    failed = [p for p in manifest.processes if p.failed]
    parents_of_failures = {p.parent_id for p in failed}
    return [p for p in failed if p.id not in parents_of_failures]


def failing(manifest: Manifest) -> list[tuple[Process, Process]]:
    """The failing steps, each with the process where its failure started.

    From each origin, walk up through failed parents while they are steps (not the root,
    not a driver such as make): ``cc -c parse.c`` is the failing step even when it is its
    ``cc1`` that exited non-zero.
    """
    by_id = {p.id: p for p in manifest.processes}
    step_ids = {p.id for p in steps(manifest)}
    out: dict[int, tuple[Process, Process]] = {}
    for origin in failure_origins(manifest):
        step = origin
        while step.parent_id is not None:
            parent = by_id.get(step.parent_id)
            if parent is None or not parent.failed or parent.id not in step_ids:
                break
            step = parent
        out.setdefault(step.id, (step, origin))
    return [out[k] for k in sorted(out)]


def first_error_line(lines: list[str]) -> str | None:
    """The line to read first among ``lines`` (recorder/first_error.py), as it was written."""
    found = first_error(lines)
    return None if found is None else lines[found.index]


def error_for(step: Process, lines: list[str]) -> FirstError | None:
    """The first error that names one of the step's files, else the first one at all."""
    names = step_names(step.argv, (f for f in (*step.reads, *step.writes) if f[:1] != "/"))
    return first_error(lines, names)


def error_line_for(step: Process, lines: list[str]) -> str | None:
    """The line of ``error_for``, stripped and without its colour."""
    found = error_for(step, lines)
    return None if found is None else strip_sgr(lines[found.index]).strip()
