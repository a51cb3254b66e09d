"""``diff``: why two builds differ, most useful finding first.

The work is split three ways: replay/steps.py builds each recording's step graph and
matches steps across the two (by identity — program, working directory and what they
write, else the sources they name — so a compile whose flags changed is the same step,
changed); replay/causes.py decides which steps changed on their own, which only
downstream, which are nondeterministic, and words the likely cause; replay/content_diff.py
says what differs inside files. Everything is normalised first (recorder/normalize.py)
unless ``normalize`` is off. Output is sorted throughout: the same two tapes give the
same report, whatever the hash seed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Any

from recorder.model import REDACTED, Manifest
from recorder.normalize import Normalizer
from recorder.tape import Tape
from replay import diff_limits
from replay.causes import Causes, explain, incidental
from replay.content_diff import ContentOptions, FileChange, Side, compare_files
from replay.steps import (
    Graph,
    Node,
    build_graph,
    comparable_env,
    cwd_reliable,
    match,
    per_process_env,
)
from replay.verdict import equal_but_times, zip_equal_but_times

__all__ = [
    "CommandDiff",
    "DiffOptions",
    "DiffReport",
    "EnvChange",
    "EnvironmentDiff",
    "ExternalChange",
    "FileChange",
    "OnlyStep",
    "StepChange",
    "StepTiming",
    "StepsDiff",
    "TimingsDiff",
    "ToolChange",
    "diff",
]


@dataclass(frozen=True)
class DiffOptions:
    # Rewrite what is expected to differ (workspace/sandbox paths, tool temp names, pids,
    # timestamps in text, build-system bookkeeping) before comparing argv, environment,
    # streams and file contents. The rules are listed in recorder/normalize.py.
    normalize: bool = True
    # Lines of unified diff kept per file; longer diffs are cut and say so.
    max_diff_lines: int = 60
    # Step timing changes smaller than this (seconds) are not listed.
    min_timing_delta_s: float = 0.05
    # Hand each pair of differing outputs to diffoscope, when it is installed.
    deep: bool = False
    # Independent causes named in the likely-cause line, most upstream first.
    max_causes: int = 3


@dataclass
class StepChange:
    identity: str
    step_a: int
    step_b: int
    argv_a: list[str]
    argv_b: list[str]
    argv_diff: list[str]
    changed_inputs: list[str]
    changed_outputs: list[str]
    role: str  # cause | changed | downstream | nondeterministic
    what: list[str]  # the step's own changes, in words
    status: list[str]  # exit 0 | exit 2 | signal SIGKILL, in A and B


@dataclass
class CommandDiff:
    """The build commands (as recorded) and how each build ended, A then B."""

    a: list[str]
    b: list[str]
    same: bool  # after normalisation
    status: list[str]  # succeeded | failed | interrupted
    exit_code: list[int | None]


@dataclass
class EnvChange:
    """A variable both builds set, with different values; a secret's are never shown."""

    name: str
    a: str
    b: str
    secret: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "a": self.a, "b": self.b}
        if self.secret:  # the key is there only for secrets, as it always was
            out["secret"] = True
        return out


@dataclass
class EnvironmentDiff:
    added: list[str]  # names set only in B
    removed: list[str]  # names set only in A
    changed: list[EnvChange]
    other: dict[str, list[str]]  # umask, tz: [A, B]

    @property
    def differs(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.other)


@dataclass
class ToolChange:
    """A tool both builds ran (by name) whose path, executable or version differs."""

    name: str
    path: str  # the path, or "A -> B" when it moved
    a: str | None  # version lines
    b: str | None
    sha256_changed: bool


@dataclass
class ExternalChange:
    """An external file both builds read, with different content."""

    path: str
    a: str | None  # sha256
    b: str | None


@dataclass
class OnlyStep:
    """A step that ran in one build only."""

    id: int
    argv: list[str]
    probe: bool  # a query that wrote nothing (listed, not a difference)


@dataclass
class StepsDiff:
    changed: list[StepChange]
    only_in_a: list[OnlyStep]
    only_in_b: list[OnlyStep]


@dataclass
class StepTiming:
    step: str
    a_s: float
    b_s: float
    delta_s: float


@dataclass
class TimingsDiff:
    total: list[float]  # A, B
    steps: list[StepTiming]  # the largest changes first, at most ten


@dataclass
class DiffReport:
    equivalent: bool
    verdict: str
    cause: str | None
    causes: list[str]
    command: CommandDiff
    environment: EnvironmentDiff
    toolchain: list[ToolChange]
    external: list[ExternalChange]
    inputs: list[FileChange]
    steps: StepsDiff
    outputs: list[FileChange]
    timings: TimingsDiff
    streams: dict[str, list[str]]  # stdout/stderr -> unified diff lines, when they differ

    def to_json(self) -> dict[str, Any]:
        """The documented JSON form (docs/replay.md)."""
        out = asdict(self)
        out["environment"]["changed"] = [c.to_json() for c in self.environment.changed]
        return out


def _environment(a: Manifest, b: Manifest, na: Normalizer, nb: Normalizer) -> EnvironmentDiff:
    va = comparable_env(a.environment.vars, na)
    vb = comparable_env(b.environment.vars, nb)
    da, db = a.environment.redacted_digests, b.environment.redacted_digests
    changed: list[EnvChange] = []
    for k in sorted(set(va) & set(vb)):
        if REDACTED in va[k] or REDACTED in vb[k]:
            # Never shown: compared by the digests recorded with the tapes.
            if va[k] != vb[k] or (k in da and k in db and da[k] != db[k]):
                changed.append(EnvChange(k, REDACTED, REDACTED, secret=True))
        elif va[k] != vb[k]:
            changed.append(EnvChange(k, va[k], vb[k]))
    other = {}
    for key in ("umask", "tz"):
        if getattr(a.environment, key) != getattr(b.environment, key):
            other[key] = [getattr(a.environment, key), getattr(b.environment, key)]
    return EnvironmentDiff(
        added=sorted(set(vb) - set(va)), removed=sorted(set(va) - set(vb)), changed=changed,
        other=other,
    )  # fmt: skip


def _toolchain(a: Manifest, b: Manifest) -> list[ToolChange]:
    """Tools that ran in both builds (by name) and differ in path, executable or version."""
    out = []
    ta: dict[str, list[Any]] = {}
    tb: dict[str, list[Any]] = {}
    for tools, into in ((a.toolchain, ta), (b.toolchain, tb)):
        for t in sorted(tools, key=lambda t: (t.name, t.path, t.sha256 or "")):
            into.setdefault(t.name, []).append(t)
    for name in sorted(set(ta) & set(tb)):
        xs, ys = ta[name], tb[name]
        same = {(t.path, t.sha256, t.version) for t in xs} == {
            (t.path, t.sha256, t.version) for t in ys
        }
        if same:
            continue
        for x, y in zip(xs, ys, strict=False):
            if (x.path, x.sha256, x.version) == (y.path, y.sha256, y.version):
                continue
            path = y.path if x.path == y.path else f"{x.path} -> {y.path}"
            out.append(ToolChange(name, path, x.version, y.version, x.sha256 != y.sha256))
    return out


def _external(a: Manifest, b: Manifest, tool_paths: set[str]) -> list[ExternalChange]:
    """External files both builds read whose content differs (tools are listed apart)."""
    ea = {e.path: e.sha256 for e in a.external}
    eb = {e.path: e.sha256 for e in b.external}
    return [
        ExternalChange(p, ea[p], eb[p])
        for p in sorted(set(ea) & set(eb))
        if ea[p] != eb[p] and p not in tool_paths
    ]


def _stream_diffs(ta: Tape, tb: Tape, na: Normalizer, nb: Normalizer, limit: int) -> Any:
    streams = {}
    for name in ("stdout", "stderr"):
        sa = na.text(ta.stream(name).decode("utf-8", "replace"))
        sb = nb.text(tb.stream(name).decode("utf-8", "replace"))
        if sa != sb:
            lines = diff_limits.unified_diff(  # near-linear, whatever the streams hold
                sa.splitlines(), sb.splitlines(), f"a/{name}", f"b/{name}", n=1
            )
            streams[name] = lines[:limit]
    return streams


def _intermediates(tape: Tape, norm: Normalizer) -> dict[str, str]:
    """Digests of the stored intermediates' normalised contents, by path."""
    out = {}
    for i in tape.manifest.intermediates:
        if i.blob is not None and norm.enabled:
            out[i.path] = hashlib.sha256(norm.content(tape.blob(i.blob))).hexdigest()
    return out


def _significant(c: StepChange) -> bool:
    """A step difference that makes two builds different: one of its own inputs, a workspace
    output or its exit status. One that only wrote another temp file (a configure test's
    object named after a pid), or only read one, does not on its own."""
    if c.what or c.status[0] != c.status[1]:
        return True
    return any(not o.startswith(("/", "$")) for o in c.changed_outputs)


def _output_blobs(side: Side) -> dict[str, str]:
    """Stored contents of a recording's outputs and intermediates, by the normalised name a
    finding lists them under (replay/causes.py)."""
    m = side.tape.manifest
    out = {o.path: o.blob for o in m.outputs if o.blob is not None}
    for i in m.intermediates:
        if i.blob is not None:
            out.setdefault(side.norm.text(i.path), i.blob)
    return out


_SOURCES = re.compile(r"<([^<>]+)>$")


@dataclass(frozen=True)
class _Nondet:
    """What the contents say about the nondeterministic steps, by A process id."""

    stamped: dict[int, str]  # its outputs differ only by dates and times: what to add
    by_path: set[int]  # its outputs name the build directory (the builds ran in two)


def _nondeterminism(explained: Causes, sa: Side, sb: Side, ga: Graph) -> _Nondet:
    nondet = [f for f in explained.findings if f.role == "nondeterministic"]
    stamped: dict[int, str] = {}
    by_path: set[int] = set()
    if not nondet:
        return _Nondet(stamped, by_path)
    blobs_a, blobs_b = _output_blobs(sa), _output_blobs(sb)
    wa = sa.tape.manifest.workspace.rstrip("/").encode()
    wb = sb.tape.manifest.workspace.rstrip("/").encode()
    for f in nondet:
        pairs = [(blobs_a.get(o), blobs_b.get(o)) for o in f.changed_outputs]
        if not pairs or any(x is None or y is None for x, y in pairs):
            continue
        contents = [(sa.tape.blob(x), sb.tape.blob(y)) for x, y in pairs if x and y]
        if all(equal_but_times(x, y) for x, y in contents):
            stamped[f.a.proc.id] = f" ({_source_of(f.a, ga)}embeds a date or time)"
        elif all(equal_but_times(x, y) or zip_equal_but_times(x, y) for x, y in contents):
            # A wheel or jar of the files the build wrote stores each one's mtime.
            zips = [o for o, (x, y) in zip(f.changed_outputs, contents, strict=True)
                    if zip_equal_but_times(x, y)]  # fmt: skip
            stamped[f.a.proc.id] = (
                f" ({', '.join(zips[:3])}: the same members, stored with other times)"
            )
        elif wa != wb and any(wa in x and wb in y for x, y in contents):
            by_path.add(f.a.proc.id)
    return _Nondet(stamped, by_path)


def _source_of(n: Node, g: Graph) -> str:
    """``bzip2.c: ``, the sources named by the step or the nearest step above it (``as``
    names only a temp file; the compiler driver above it names the source)."""
    node: Node | None = n
    while node is not None:
        found = _SOURCES.search(node.identity)
        if found:
            return f"{found.group(1)}: "
        node = g.nodes.get(node.parent) if node.parent is not None else None
    return ""


def _probe(n: Node) -> bool:
    """A process that wrote nothing and succeeded: a version or feature query (go runs
    ``asm -V=full`` only when its cache lacks the answer). Listed, but not a difference."""
    p = n.proc
    return (
        p.exit_code == 0
        and p.signal is None
        and not any(not w.startswith("/dev/") for w in (*p.writes, *p.deleted))
    )


def _only(n: Node) -> OnlyStep:
    return OnlyStep(n.proc.id, n.proc.argv, _probe(n))


def diff(ta: Tape, tb: Tape, options: DiffOptions) -> DiffReport:
    a, b = ta.manifest, tb.manifest
    na = Normalizer(a.workspace, options.normalize)
    nb = Normalizer(b.workspace, options.normalize)
    content = ContentOptions(options.normalize, options.max_diff_lines, options.deep)
    sa, sb = Side(ta, na), Side(tb, nb)
    inputs = compare_files(sa, sb, a.inputs, b.inputs, content)
    outputs = compare_files(sa, sb, a.outputs, b.outputs, content)

    with_cwd = cwd_reliable(a) and cwd_reliable(b)
    full_env = per_process_env(a) and per_process_env(b)
    ga = build_graph(a, na, with_cwd, full_env, _intermediates(ta, na))
    gb = build_graph(b, nb, with_cwd, full_env, _intermediates(tb, nb))
    matching = match(ga, gb)
    stderr_b = nb.text(tb.stream("stderr").decode("utf-8", "replace")).splitlines()
    explained = explain(
        ga,
        gb,
        matching,
        {o.path for o in outputs},
        {i.path: i.status for i in inputs},
        stderr_b,
    )
    changes = [
        StepChange(
            f.a.identity, f.a.proc.id, f.b.proc.id, f.a.proc.argv, f.b.proc.argv, f.argv_diff,
            f.upstream if not f.own else sorted({c.key.split(" ", 1)[-1] for c in f.own}),
            f.changed_outputs, f.role, [c.text for c in f.own], [f.a.status, f.b.status],
        )
        for f in explained.findings
    ]  # fmt: skip
    env = _environment(a, b, na, nb)
    tools = _toolchain(a, b)
    external = _external(a, b, {t.path for t in (*a.toolchain, *b.toolchain)})
    cmd_a, cmd_b = na.argv(a.argv), nb.argv(b.argv)
    command = CommandDiff(
        a.argv, b.argv, cmd_a == cmd_b, [a.status, b.status], [a.exit_code, b.exit_code]
    )
    streams = _stream_diffs(ta, tb, na, nb, options.max_diff_lines)
    timing_rows: list[StepTiming] = []
    for x, y in matching.pairs:
        da, db = x.proc.duration_s, y.proc.duration_s
        if da is not None and db is not None and abs(db - da) >= options.min_timing_delta_s:
            timing_rows.append(
                StepTiming(x.identity, round(da, 3), round(db, 3), round(db - da, 3))
            )
    timing_rows.sort(key=lambda r: (-abs(r.delta_s), r.step))
    timings = TimingsDiff([round(a.duration_s, 3), round(b.duration_s, 3)], timing_rows[:10])
    unmatched = [n for n in (*matching.only_a, *matching.only_b) if not _probe(n)]
    significant = [
        _significant(c) and not incidental(f)
        for c, f in zip(changes, explained.findings, strict=True)
    ]
    different = bool(
        outputs or inputs or any(significant) or unmatched
        or not command.same or a.status != b.status or a.exit_code != b.exit_code
    )  # fmt: skip
    verdict, causes = _verdict(
        different, explained, inputs, tools, env, command, options, (a.workspace, b.workspace),
        _nondeterminism(explained, sa, sb, ga),
    )  # fmt: skip
    return DiffReport(
        equivalent=not different,
        verdict=verdict,
        cause="; ".join(causes) if causes else None,
        causes=causes,
        command=command,
        environment=env,
        toolchain=tools,
        external=external,
        inputs=inputs,
        steps=StepsDiff(
            changes, [_only(n) for n in matching.only_a], [_only(n) for n in matching.only_b]
        ),
        outputs=outputs,
        timings=timings,
        streams=streams,
    )


def _verdict(
    different: bool,
    explained: Causes,
    inputs: list[FileChange],
    tools: list[ToolChange],
    env: EnvironmentDiff,
    command: CommandDiff,
    options: DiffOptions,
    workspaces: tuple[str, str],
    notes: _Nondet,
) -> tuple[str, list[str]]:
    if not different:
        how = "" if options.normalize else " (without normalisation)"
        return f"equivalent: same command, inputs, steps and outputs{how}", []
    if explained.causes:
        causes = explained.causes[: options.max_causes]
        more = len(explained.causes) - len(causes)
        if more:
            causes.append(f"and {more} more independent change{'s' if more > 1 else ''}")
        return "different", causes
    nondet = [f for f in explained.findings if f.role == "nondeterministic"]
    if nondet:
        # Steps whose outputs differ only by a date or time first: the step that reads the
        # clock is the one to fix, the others may only follow from it or from the path.
        nondet.sort(key=lambda f: f.a.proc.id not in notes.stamped)
        names = ", ".join(
            f"#{f.a.proc.id} {f.a.identity}" + notes.stamped.get(f.a.proc.id, "")
            for f in nondet[:5]
        )
        if workspaces[0] != workspaces[1] and not notes.stamped and notes.by_path:
            # Some tools lay out what they write by the path they build in (gcc -g orders
            # its debug strings by it): the one input normalisation hides, so say it first.
            return "different", [
                f"the build directory differs ({workspaces[0]} → {workspaces[1]}) and "
                f"{len(notes.by_path)} step{'s' if len(notes.by_path) > 1 else ''} write it "
                f"into outputs that differ: {names}"
            ]
        line = f"nondeterministic: same command and inputs, different outputs: {names}"
        if workspaces[0] != workspaces[1]:
            line += f" (built in {workspaces[0]} and {workspaces[1]}: may depend on the path)"
        return "different", [line]
    if not command.same:
        return "different", ["the build command differs"]
    if inputs:
        return "different", ["workspace inputs differ: " + ", ".join(i.path for i in inputs[:5])]
    if tools:
        return "different", ["toolchain differs: " + ", ".join(t.path for t in tools[:5])]
    if env.added or env.removed or env.changed:
        return "different", ["the environment differs"]
    return "different", []
