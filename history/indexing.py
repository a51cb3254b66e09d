"""Indexing: what the history keeps of one tape, and putting it in the store.

The rows come from the manifest alone (plus the build's stderr for error lines), so
indexing never reads a blob of a tape that succeeded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from history.options import INTERRUPT_EXIT_CODES, INTERRUPT_SIGNALS, ReindexOptions
from history.rows import (
    BuildRecord,
    EventRow,
    FailureRow,
    IndexedRows,
    MetricRow,
    StepRow,
    WarningRow,
)
from history.store import HistoryStore
from recorder.model import Manifest
from recorder.normalize import Normalizer
from recorder.steps import error_line_for, failing, outermost_steps
from recorder.timeline import events_of

# CI systems check out a commit, not a branch (a detached HEAD): the branch is in their
# variables. Merge-request builds name the source branch first.
_BRANCH_VARIABLES = (
    "GITHUB_HEAD_REF",
    "GITHUB_REF_NAME",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
    "CI_COMMIT_BRANCH",
    "CI_COMMIT_REF_NAME",
    "BUILDKITE_BRANCH",
    "CIRCLE_BRANCH",
    "GIT_BRANCH",
)


def branch_of(m: Manifest) -> str | None:
    """The git branch the build ran on: the checkout's, else the CI system's variable."""
    # A detached HEAD reads as the branch "HEAD" (git rev-parse --abbrev-ref).
    if m.git is not None and m.git.branch and m.git.branch != "HEAD":
        return m.git.branch
    env = m.environment.vars
    return next((env[v] for v in _BRANCH_VARIABLES if env.get(v)), None)


def status_of(m: Manifest) -> str:
    """The build's status as the history counts it: a build that SIGINT or SIGTERM ended
    (or that exited 130 or 143, as a shell reports them) was interrupted, not failed, and
    stays out of success rates, percentiles and the slowest steps."""
    if m.status == "failed" and (
        m.signal in INTERRUPT_SIGNALS or m.exit_code in INTERRUPT_EXIT_CODES
    ):
        return "interrupted"
    return m.status


def indexed_rows(tape: Path, m: Manifest, stderr: bytes) -> IndexedRows:
    """Every row the history keeps of one tape; ``stderr`` gives failures their line."""
    norm = Normalizer(m.workspace)
    steps = []
    busy_s = 0.0
    for p in sorted(outermost_steps(m), key=lambda p: (p.start_s, p.id)):
        steps.append(
            StepRow(norm.command_key(p.argv), json.dumps(p.argv), round(p.start_s, 6),
                    None if p.duration_s is None else round(p.duration_s, 6), p.exit_code,
                    p.signal)
        )  # fmt: skip
        busy_s += p.duration_s or 0.0
    lines = stderr.decode("utf-8", "replace").splitlines() if stderr else []
    failures = []
    for step, origin in failing(m):
        exit_code = step.exit_code if step.exit_code not in (0, None) else origin.exit_code
        failures.append(
            FailureRow(norm.command_key(step.argv), json.dumps(step.argv), exit_code,
                       step.signal or origin.signal, error_line_for(step, lines))
        )  # fmt: skip
    # Per-process events stay in the tape (`buildtape events TAPE` reads them); the
    # history keeps what a person queries across builds.
    metrics, events = [], []
    for e in events_of(m, per_process=False):
        if e.kind == "metric":
            metrics.append(MetricRow(e.data["name"], e.data["value"], e.data.get("unit")))
        name = e.data.get("name")
        events.append(
            EventRow(round(e.t, 6), e.kind, name if isinstance(name, str) else None,
                     json.dumps(e.to_dict(), sort_keys=True))
        )  # fmt: skip
    build = BuildRecord(
        tape=str(tape.resolve()),
        started_at=m.started_at,
        status=status_of(m),
        exit_code=m.exit_code,
        duration_s=m.duration_s,
        command=json.dumps(m.argv),
        labels=json.dumps(m.labels, sort_keys=True),
        processes=len(m.processes),
        host=m.host.hostname,
        workspace=m.workspace,
        busy_s=round(busy_s, 6),
        signal=m.signal,
        branch=branch_of(m),
    )
    warnings = [WarningRow(w.kind, w.message, w.path) for w in m.warnings]
    return IndexedRows(build, steps, failures, metrics, events, warnings)


def index_tape(store: HistoryStore, tape: Path, m: Manifest, stderr: bytes | None = None) -> None:
    """Add or replace one tape. ``stderr`` (the build's) gives failures their error line;
    when it is not given and the build failed, it is read from the tape."""
    from recorder.errors import TapeError
    from recorder.tape import open_tape

    if m.status != "succeeded" and stderr is None:
        try:
            with open_tape(tape) as t:
                stderr = t.stream("stderr")
        except TapeError:
            stderr = b""
    store.add(indexed_rows(tape, m, stderr or b""))


@dataclass(frozen=True)
class Reindexed:
    indexed: int
    # "path: why" of each tape that could not be read.
    unreadable: list[str] = field(default_factory=list)


def reindex(store: HistoryStore, options: ReindexOptions) -> Reindexed:
    """Rebuild the index from the tapes under the roots and those it names that are
    still there (alerts are kept)."""
    from recorder.errors import TapeError
    from recorder.tape import open_tape

    # A tape written with -o elsewhere is indexed by its path: kept while it is there.
    known = {Path(b.tape) for b in store.builds()}
    store.clear_index()
    indexed, bad = 0, []
    paths = {p.absolute() for p in _tapes(options.roots)} | {p for p in known if p.is_file()}
    for path in sorted(paths):
        try:
            with open_tape(path) as t:
                index_tape(store, path, t.manifest)
            indexed += 1
        except TapeError as exc:
            bad.append(f"{path}: {exc}")
    return Reindexed(indexed, bad)


def _tapes(roots: tuple[Path, ...]) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (p for p in root.rglob("*.tape") if p.is_file())
