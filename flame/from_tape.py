"""Stacks and timelines from a tape's process tree.

A process frame's *self* weight is the part of its wall time during which none of its
children ran; its *total* is that plus its children's totals. When children run in
parallel (``make -j8``), a parent's total is therefore the **process time** of its subtree
— the sum of the wall times its processes spent without a child running — and can exceed
its own wall time: a frame twice as wide as another took twice the process-seconds, like
CPU time in a sampling profile when every process has a core of its own. Weights are
microseconds.
"""

from __future__ import annotations

import heapq
import os
import shlex
from dataclasses import dataclass

from flame.frame_key import frame_key
from flame.model import StackTree
from recorder.errors import TapeError
from recorder.model import Manifest, Process
from recorder.trust import samples_doc

_COMPILERS = {"cc", "gcc", "g++", "c++", "clang", "clang++", "cpp"}
_SHELLS = {"sh", "bash", "dash", "zsh"}
_SOURCE_EXT = (".c", ".cc", ".cpp", ".cxx", ".c++", ".m", ".s", ".S", ".f90", ".rs", ".go")
_LABEL_MAX = 60


def label(p: Process) -> str:
    """A short, readable name for a process: ``make``, ``sh -c …``, ``gcc -c lapi.c``, ``cc1``."""
    argv = p.argv or [os.path.basename(p.exe) or "?"]
    prog = os.path.basename(argv[0]) or argv[0]
    args = argv[1:]
    if prog in _SHELLS and "-c" in args[:2]:
        script = args[args.index("-c") + 1] if len(args) > args.index("-c") + 1 else ""
        text = f"{prog} -c {' '.join(script.split())}"
    elif prog in _COMPILERS or prog.split("-")[-1] in _COMPILERS:
        sources = [a for a in args if a.endswith(_SOURCE_EXT) and not a.startswith("-")]
        if "-c" in args and sources:
            text = f"{prog} -c {sources[0]}"
        elif "-o" in args and args.index("-o") + 1 < len(args):
            text = f"{prog} -o {args[args.index('-o') + 1]}"
        else:
            text = prog
    elif prog.startswith("python") and "-c" in args[:2]:
        text = f"{prog} -c {' '.join(args[args.index('-c') + 1 :][:1])}"
    elif prog.startswith("python") and args:
        first = next((a for a in args if not a.startswith("-")), args[0])
        text = f"{prog} {os.path.basename(first)}" if first.endswith(".py") else f"{prog} {first}"
    elif prog.startswith(("cc1", "collect2", "ld", "as")):
        text = prog
    else:
        rest = [a for a in args if not a.startswith("-")][:1]
        text = shlex.join([prog, *rest]) if rest else prog
    # ';' separates frames and a newline ends a stack in folded text: a label has neither.
    text = " ".join(text.replace(";", ",").split())
    return text if len(text) <= _LABEL_MAX else text[: _LABEL_MAX - 1] + "…"


@dataclass(frozen=True)
class Span:
    """One process on the timeline, in microseconds since the build started."""

    process: Process
    label: str
    start_us: int
    end_us: int
    lane: int


def _end(p: Process, build_end: float) -> float:
    return p.end_s if p.end_s is not None else build_end


def _covered(intervals: list[tuple[float, float]]) -> float:
    total = 0.0
    cur_start = cur_end = None
    for start, end in sorted(intervals):
        if cur_end is None or start > cur_end:
            if cur_end is not None and cur_start is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None and cur_start is not None:
        total += cur_end - cur_start
    return total


@dataclass(frozen=True)
class Samples:
    """A tape's sampled Python stacks, as stored (see ``recorder.model.Sampling``)."""

    frames: list[str]
    # (process id, start_us, dur_us, frame indexes outermost first)
    samples: list[tuple[int, int, int, list[int]]]

    @classmethod
    def from_json(cls, raw: bytes) -> Samples:
        """Parse a samples blob; malformed samples are skipped (``recorder.trust``)."""
        try:
            frames_raw, samples, _skipped = samples_doc(raw)
        except ValueError as exc:
            raise TapeError(f"the tape's Python samples are unreadable ({exc})") from None
        frames = [f"{func} ({os.path.basename(file)}:{line})" for func, file, line in frames_raw]
        return cls([f.replace(";", ",") for f in frames], samples)


@dataclass(frozen=True)
class _Span:
    name: str
    start: float
    end: float


def _spans_by_process(m: Manifest) -> dict[int, list[_Span]]:
    """``buildtape.step`` spans, attributed to the process that emitted them."""
    ids = {p.pid: p.id for p in m.processes}
    out: dict[int, list[_Span]] = {}
    for e in m.events:
        if e.kind != "span" or not isinstance(e.data.get("pid"), int):
            continue
        pid = ids.get(e.data["pid"])
        if pid is not None:
            span = _Span(
                f"[step] {e.data['name']}", float(e.data["start_s"]), float(e.data["end_s"])
            )
            out.setdefault(pid, []).append(span)
    for spans in out.values():
        spans.sort(key=lambda s: (s.start, -s.end))
    return out


def _enclosing(spans: list[_Span], t: float) -> list[str]:
    """Names of the spans that contain ``t``, outermost first."""
    return [s.name for s in spans if s.start <= t < s.end]


def process_stacks(m: Manifest, samples: Samples | None = None) -> StackTree:
    """The tape's process tree as weighted stacks (microseconds of process time).

    Python samples are grafted under their process (and inside the ``buildtape.step``
    spans that were open when they were taken); the process's own frame keeps only the
    time the samples do not account for. Spans of processes without samples weigh their
    own duration. A process frame is named by ``flame.frame_key.frame_key``.
    """
    tree = StackTree(unit="microseconds", title=" ".join(m.argv), source="process tree")
    by_id = {p.id: p for p in m.processes}
    children: dict[int, list[Process]] = {}
    for p in m.processes:
        if p.parent_id is not None:
            children.setdefault(p.parent_id, []).append(p)
    # Frames are keyed by what each process is, not by every argument (flame/frame_key.py):
    # the same make and compiles match across two builds that differ in flags.
    labels = {p.id: frame_key(p, m.workspace) for p in m.processes}
    chains: dict[int, list[str]] = {}
    for p in m.processes:
        chain = []
        node: Process | None = p
        while node is not None:
            chain.append(labels[node.id])
            node = by_id.get(node.parent_id) if node.parent_id is not None else None
        chains[p.id] = chain[::-1]
    spans = _spans_by_process(m)
    grafted: dict[int, float] = {}
    for pid, start_us, dur_us, frame_ids in samples.samples if samples else []:
        if pid not in chains:
            continue
        enclosing = _enclosing(spans.get(pid, []), start_us / 1e6)
        tree.add([*chains[pid], *enclosing, *(samples.frames[i] for i in frame_ids)], dur_us)  # type: ignore[union-attr]
        grafted[pid] = grafted.get(pid, 0.0) + dur_us / 1e6
    for pid, pspans in spans.items():
        if pid in grafted:
            continue
        for s in pspans:
            inner = [c for c in pspans if c is not s and s.start <= c.start and c.end <= s.end]
            outer = [c.name for c in pspans if c is not s and c.start <= s.start and s.end <= c.end]
            own_span = (s.end - s.start) - _covered([(c.start, c.end) for c in inner])
            if own_span > 0:
                tree.add([*chains[pid], *outer, s.name], round(own_span * 1e6))
        top = [
            s
            for s in pspans
            if not any(o is not s and o.start <= s.start and s.end <= o.end for o in pspans)
        ]
        grafted[pid] = _covered([(s.start, s.end) for s in top])
    for p in m.processes:
        start, end = p.start_s, _end(p, m.duration_s)
        kids = [
            (max(start, c.start_s), min(end, _end(c, m.duration_s))) for c in children.get(p.id, [])
        ]
        own = max(0.0, (end - start) - _covered([k for k in kids if k[1] > k[0]]))
        weight = round(max(0.0, own - grafted.get(p.id, 0.0)) * 1e6)
        if weight > 0:
            tree.add(chains[p.id], weight)
    return tree


def process_spans(m: Manifest) -> list[Span]:
    """Processes on lanes where no two overlap, by start time: a Gantt chart of the build."""
    # Each process takes the lowest lane free at its start: lanes that came free wait in
    # ``free`` (by number), busy ones in ``busy`` (by end), so n processes cost O(n log n).
    busy: list[tuple[float, int]] = []
    free: list[int] = []
    lanes = 0
    spans = []
    for p in sorted(m.processes, key=lambda p: (p.start_s, p.id)):
        end = _end(p, m.duration_s)
        while busy and busy[0][0] <= p.start_s:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane, lanes = lanes, lanes + 1
        heapq.heappush(busy, (end, lane))
        start_us = round(p.start_s * 1e6)
        spans.append(Span(p, label(p), start_us, max(start_us, round(end * 1e6)), lane))
    return spans
