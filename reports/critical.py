"""The critical path of a build and its parallelism over time, from the process table.

A tape records no dependency edges, only times, so the critical path is recovered the way
one reads a Gantt chart backwards: from the end of the build, the step that finished last
is on the path; before its start, the step that finished last before that start is the one
it waited for; and so on back to the beginning. In a make build this gives the chain
compile -> ... -> link whose durations add up to (most of) the wall time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from recorder.model import Manifest, Process

# Slack allowed between one step's end and the next one's start (process start-up, make's
# own bookkeeping) for the earlier step to count as what the later one waited for: 10 ms,
# less in builds so short that 10 ms is a step's length.
_SLACK_S = 0.01
_SLACK_SHARE = 0.02


def _end(p: Process, build_end: float) -> float:
    return p.end_s if p.end_s is not None else build_end


def critical_path(m: Manifest, steps: list[Process]) -> list[Process]:
    """The chain of steps that determined the wall time, earliest first."""
    pending = sorted(steps, key=lambda p: (_end(p, m.duration_s), p.id), reverse=True)
    chain: list[Process] = []
    slack = min(_SLACK_S, _SLACK_SHARE * m.duration_s)
    horizon = m.duration_s + slack
    for p in pending:
        if _end(p, m.duration_s) <= horizon:
            chain.append(p)
            horizon = p.start_s + slack
    return chain[::-1]


def _union(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for s, e in sorted(i for i in intervals if i[1] > i[0]):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


@dataclass(frozen=True)
class Parallelism:
    # (seconds since start, processes running from then on), a step function.
    points: list[tuple[float, int]]
    peak: int
    # Average number running, over the build's wall time.
    average: float


def parallelism(m: Manifest) -> Parallelism:
    """How many processes were doing work at each moment. A process with children is
    counted only while none of them runs (a cc waiting for its cc1 is not busy)."""
    children: dict[int, list[Process]] = {}
    for p in m.processes:
        if p.parent_id is not None:
            children.setdefault(p.parent_id, []).append(p)
    changes: list[tuple[float, int]] = []
    for p in m.processes:
        start, end = p.start_s, _end(p, m.duration_s)
        busy, cursor = [], start
        for cs, ce in _union(
            (max(start, c.start_s), min(end, _end(c, m.duration_s))) for c in children.get(p.id, [])
        ):
            if cs > cursor:
                busy.append((cursor, cs))
            cursor = max(cursor, ce)
        if end > cursor:
            busy.append((cursor, end))
        for s, e in busy:
            if e > s:
                changes += [(s, 1), (e, -1)]
    changes.sort()
    points: list[tuple[float, int]] = [(0.0, 0)]
    running = peak = 0
    area = 0.0
    for t, delta in changes:
        area += running * (t - points[-1][0])
        running += delta
        peak = max(peak, running)
        if t == points[-1][0]:
            points[-1] = (t, running)
        else:
            points.append((t, running))
    if m.duration_s > points[-1][0]:
        area += running * (m.duration_s - points[-1][0])
    return Parallelism(
        [(round(t, 6), n) for t, n in points], peak, area / m.duration_s if m.duration_s else 0.0
    )
