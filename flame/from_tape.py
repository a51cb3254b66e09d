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
from dataclasses import dataclass, replace

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


# Spans nested deeper than this in one process are drawn inside the one at this depth.
MAX_SPAN_DEPTH = 32
# Spans of one process that overlap without nesting (threads) are matched pairwise up to
# this many; past it they are laid out as if they nested, which is near-linear.
MAX_PAIRWISE_SPANS = 1000


def _contains(outer: _Span, inner: _Span) -> bool:
    return outer.start <= inner.start and inner.end <= outer.end


@dataclass
class _SpanLayout:
    """One process's spans as frames: (span names outermost first, own seconds)."""

    frames: list[tuple[list[str], float]]
    covered: float  # seconds of the process the spans account for
    nested: bool  # every two spans are disjoint or nested (the sweep is exact)
    too_deep: int  # spans deeper than MAX_SPAN_DEPTH, drawn inside their ancestor


def _sweep(spans: list[_Span]) -> _SpanLayout:
    """Spans (sorted by start, longest first) laid out with a stack of open spans: O(n).

    Exact when spans nest; ``nested`` is False when two overlap without nesting. A span's
    own time is its duration less what its children cover; one at the depth limit keeps
    its children's time; an interval listed twice owns nothing (each covers the other).
    """
    counts: dict[tuple[float, float], int] = {}
    for sp in spans:
        counts[(sp.start, sp.end)] = counts.get((sp.start, sp.end), 0) + 1
    stack: list[int] = []
    kids: list[list[tuple[float, float]]] = [[] for _ in spans]
    outer: list[list[str] | None] = [None] * len(spans)
    top: list[tuple[float, float]] = []
    nested, too_deep = True, 0
    for i, sp in enumerate(spans):
        while stack and not _contains(spans[stack[-1]], sp):
            if spans[stack.pop()].end > sp.start:
                nested = False
        if stack:
            kids[stack[-1]].append((sp.start, sp.end))
        elif counts[(sp.start, sp.end)] == 1:
            top.append((sp.start, sp.end))
        if len(stack) < MAX_SPAN_DEPTH:
            outer[i] = [spans[j].name for j in stack]
        else:
            too_deep += 1
        stack.append(i)
    frames = []
    for i, sp in enumerate(spans):
        names = outer[i]
        if names is None:
            continue
        at_limit = len(names) == MAX_SPAN_DEPTH - 1
        if counts[(sp.start, sp.end)] > 1 and not at_limit:
            continue
        own = (sp.end - sp.start) - (0.0 if at_limit else _covered(kids[i]))
        if own > 0:
            frames.append(([*names, sp.name], own))
    return _SpanLayout(frames, _covered(top), nested, too_deep)


def _pairwise(spans: list[_Span]) -> _SpanLayout:
    """Spans that overlap without nesting, each compared with every other: O(n²), so only
    up to MAX_PAIRWISE_SPANS."""
    frames = []
    for sp in spans:
        inner = [c for c in spans if c is not sp and _contains(sp, c)]
        names = [c.name for c in spans if c is not sp and _contains(c, sp)]
        own = (sp.end - sp.start) - _covered([(c.start, c.end) for c in inner])
        if own > 0:
            frames.append(([*names[: MAX_SPAN_DEPTH - 1], sp.name], own))
    top = [
        (sp.start, sp.end)
        for sp in spans
        if not any(_contains(o, sp) for o in spans if o is not sp)
    ]
    return _SpanLayout(frames, _covered(top), False, 0)


def _layout(spans: list[_Span]) -> _SpanLayout:
    # A span of no length owns no time and nests nothing of any length: it changes nothing.
    spans = [sp for sp in spans if sp.end > sp.start]
    swept = _sweep(spans)
    if swept.nested or len(spans) > MAX_PAIRWISE_SPANS:
        return swept
    return replace(_pairwise(spans), too_deep=swept.too_deep)


@dataclass
class _Enclosing:
    names: list[list[str]]  # per time
    nested: bool  # as in _SpanLayout
    too_deep: bool  # some time had more than MAX_SPAN_DEPTH spans open


def _enclosing(spans: list[_Span], times: list[float]) -> _Enclosing:
    """For each of ``times`` (ascending), the names of the spans open then (start <= t <
    end), outermost first, at most MAX_SPAN_DEPTH: one sweep over spans and times (exact
    when spans nest, or when they are few enough to scan for each time)."""
    spans = [sp for sp in spans if sp.end > sp.start]
    out: list[list[str]] = []
    too_deep = False
    stack: list[_Span] = []
    j = 0
    crossing = False
    for t in times:
        while j < len(spans) and spans[j].start <= t:
            sp = spans[j]
            while stack and not _contains(stack[-1], sp):
                crossing = crossing or stack[-1].end > sp.start
                stack.pop()
            stack.append(sp)
            j += 1
        while stack and stack[-1].end <= t:
            stack.pop()
        if crossing and len(spans) <= MAX_PAIRWISE_SPANS:
            names = [sp.name for sp in spans[:j] if sp.start <= t < sp.end]
        else:
            names = [sp.name for sp in stack[: MAX_SPAN_DEPTH + 1]]
        too_deep = too_deep or len(names) > MAX_SPAN_DEPTH
        out.append(names[:MAX_SPAN_DEPTH])
    return _Enclosing(out, not crossing, too_deep)


# Processes nested deeper than this are drawn inside their ancestor at this depth, so a
# chain of n processes costs O(n) frames, not O(n²).
MAX_PROCESS_DEPTH = 256


def _chains(processes: list[Process], workspace: str | None) -> dict[int, list[str]]:
    """Each process's stack of frame names (``frame_key``), outermost first, at most
    MAX_PROCESS_DEPTH long.

    A chain is its parent's plus its own name; at the limit it is its parent's (the same
    list). Parents are walked without recursion, each process once.
    """
    by_id = {p.id: p for p in processes}
    chains: dict[int, list[str]] = {}
    for p in processes:
        todo: list[Process] = []
        node: Process | None = p
        while node is not None and node.id not in chains:
            todo.append(node)
            node = by_id.get(node.parent_id) if node.parent_id is not None else None
        above = chains[node.id] if node is not None else []
        for q in reversed(todo):
            above = above if len(above) >= MAX_PROCESS_DEPTH else [*above, frame_key(q, workspace)]
            chains[q.id] = above
    return chains


def _note_spans(tree: StackTree, pid: int, count: int, nested: bool, too_deep: bool) -> None:
    """Say where the drawing of one process's spans is not exact (a hostile tape's, mostly)."""
    if too_deep:
        tree.notes.append(
            f"process {pid}: spans nested deeper than {MAX_SPAN_DEPTH} are drawn inside "
            "the span at that depth"
        )
    if not nested and count > MAX_PAIRWISE_SPANS:
        tree.notes.append(
            f"process {pid}: its {count} spans overlap without nesting, too many to match "
            f"pairwise (over {MAX_PAIRWISE_SPANS}): drawn as if they nested"
        )


def process_stacks(m: Manifest, samples: Samples | None = None) -> StackTree:
    """The tape's process tree as weighted stacks (microseconds of process time).

    Python samples are grafted under their process (and inside the ``buildtape.step``
    spans that were open when they were taken); the process's own frame keeps only the
    time the samples do not account for. Spans of processes without samples weigh their
    own duration. A process frame is named by ``flame.frame_key.frame_key``.
    """
    tree = StackTree(unit="microseconds", title=" ".join(m.argv), source="process tree")
    children: dict[int, list[Process]] = {}
    for p in m.processes:
        if p.parent_id is not None:
            children.setdefault(p.parent_id, []).append(p)
    # Frames are keyed by what each process is, not by every argument (flame/frame_key.py):
    # the same make and compiles match across two builds that differ in flags.
    chains = _chains(m.processes, m.workspace)
    if any(len(c) == MAX_PROCESS_DEPTH for c in chains.values()):
        tree.notes.append(
            f"processes nested deeper than {MAX_PROCESS_DEPTH} are drawn inside their "
            "ancestor at that depth"
        )
    spans = _spans_by_process(m)
    grafted: dict[int, float] = {}
    by_pid: dict[int, list[tuple[int, int, list[int]]]] = {}
    for pid, start_us, dur_us, frame_ids in samples.samples if samples else []:
        if pid in chains:
            by_pid.setdefault(pid, []).append((start_us, dur_us, frame_ids))
            grafted[pid] = grafted.get(pid, 0.0) + dur_us / 1e6
    for pid, taken in by_pid.items():
        assert samples is not None
        taken.sort(key=lambda x: x[0])  # stable: samples taken at one time keep their order
        pspans = spans.get(pid, [])
        open_at = _enclosing(pspans, [x[0] / 1e6 for x in taken])
        for (_, dur_us, frame_ids), names in zip(taken, open_at.names, strict=True):
            tree.add([*chains[pid], *names, *(samples.frames[i] for i in frame_ids)], dur_us)
        _note_spans(tree, pid, len(pspans), open_at.nested, open_at.too_deep)
    for pid, pspans in spans.items():
        if pid in grafted:
            continue
        laid = _layout(pspans)
        for names, own_span in laid.frames:
            tree.add([*chains[pid], *names], round(own_span * 1e6))
        grafted[pid] = laid.covered
        _note_spans(tree, pid, len(pspans), laid.nested, bool(laid.too_deep))
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
