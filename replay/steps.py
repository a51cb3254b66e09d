"""The step graph of one recording, and steps matched across two recordings.

Every process is a node with its *own inputs*: argv, cwd, the executable it ran (path and
sha256), its environment, and each file it read by hash — workspace files as they were
when it read them, external files (headers, libraries), intermediates outside the
workspace, and outputs of earlier steps. Reads are tagged with where their content came
from, so causality (replay/causes.py) can tell a step's own change from an upstream one.

Tapes of format 1.0 know no per-process environment or executable hash: the build's
environment stands for the root's and children inherit it; executables compare by path.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field

from recorder.model import Manifest, Process
from recorder.normalize import Normalizer
from replay.programs import program_role

_SOURCE_EXT = (".c", ".cc", ".cpp", ".cxx", ".s", ".S", ".py", ".rs", ".go", ".f90", ".java")

# Variables that differ between any two runs and that no build step reads for its result.
NOISE_VARS = frozenset(
    {
        "PWD", "OLDPWD", "SHLVL", "_", "MAKELEVEL", "MFLAGS", "MAKE_TERMOUT", "MAKE_TERMERR",
        "TERM", "COLUMNS", "LINES", "DISPLAY", "WINDOWID", "INVOCATION_ID", "JOURNAL_STREAM",
        "SSH_AUTH_SOCK", "SSH_CLIENT", "SSH_CONNECTION", "SSH_TTY", "XDG_SESSION_ID",
        "XDG_RUNTIME_DIR", "PS1", "PS2", "PS4", "LD_PRELOAD", "TMUX", "TMUX_PANE",
        "PYTEST_CURRENT_TEST", "PYTHONHASHSEED",
    }
)  # fmt: skip
_NOISE_PREFIXES = ("BUILDTAPE_", "__")
# Pseudo-files whose reads say nothing about a step's inputs.
_IGNORED_READS = ("/proc/", "/dev/", "/sys/", "/etc/ld.so.cache")


@dataclass(frozen=True)
class Read:
    digest: str | None  # content as read; None = unknown (absent or not hashed)
    origin: str  # workspace | external | upstream (written earlier by this build)
    outside: bool  # an absolute path: outside the workspace


@dataclass
class Node:
    """One process with its own inputs, normalised for comparison with the other build."""

    proc: Process
    identity: str
    argv: list[str]
    cwd: str
    exe: str
    exe_sha256: str | None
    env: dict[str, str] | None  # None: inherited unchanged from the parent (1.0 tapes)
    reads: dict[str, Read]
    raw_reads: set[str]
    writes: set[str]
    parent: int | None
    order: int  # position in start order: smaller is more upstream
    children: list[int] = field(default_factory=list)
    # The identity with the program named by what it is (replay/programs.py): ``cc`` for
    # gcc-12 and clang alike. Matches steps whose program was renamed between the builds.
    role_identity: str = ""

    @property
    def status(self) -> str:
        p = self.proc
        return f"signal {p.signal}" if p.signal else f"exit {p.exit_code}"


def _is_noise(name: str) -> bool:
    return name in NOISE_VARS or name.startswith(_NOISE_PREFIXES)


def _clean_makeflags(value: str) -> str:
    parts = [t for t in value.split() if not t.startswith(("--jobserver", "-j", "--sync"))]
    return " ".join(parts)


def comparable_env(env: dict[str, str], norm: Normalizer) -> dict[str, str]:
    out = {}
    for k, v in env.items():
        if _is_noise(k):
            continue
        if k == "MAKEFLAGS":
            v = _clean_makeflags(v)
        out[k] = norm.text(v)
    return out


def per_process_env(m: Manifest) -> bool:
    """Whether the tape records each process's environment (format 1.1 capture). A process
    without a delta runs with its parent's: a forked child that never exec'd (a subshell,
    a ``$(…)``, every shell pipeline's own process) has none, as nothing loaded a program in
    it. Requiring a delta of every process made autotools builds, where configure forks
    hundreds of these, fall back to the root's environment for every step."""
    return any(p.env is not None for p in m.processes)


def cwd_reliable(m: Manifest) -> bool:
    """Tapes before the 1.1 capture recorded some children's cwd wrongly: compare cwds
    only when the tape shows that capture (executable hashes or environment deltas)."""
    return any(p.exe_sha256 is not None or p.env is not None for p in m.processes)


def _environments(m: Manifest, procs: list[Process], full: bool) -> dict[int, dict[str, str]]:
    """Each process's whole environment from the deltas, parents before children; without
    deltas only the root's (the build's environment), which its children inherit."""
    envs: dict[int, dict[str, str]] = {}
    for p in procs:
        parent = envs.get(p.parent_id) if p.parent_id is not None else None
        if parent is None and p.parent_id is not None and not full:
            continue
        env = dict(m.environment.vars if parent is None else parent)
        for name, value in (p.env or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        envs[p.id] = env
    return envs


def _rel(m: Manifest, path: str) -> str:
    rel = posixpath.relpath(path, m.workspace)
    return path if rel.startswith("..") else rel


def identity(
    m: Manifest, p: Process, norm: Normalizer, with_cwd: bool, prog: str | None = None
) -> str:
    """What a step is, the same across recordings even when its flags change; ``prog``
    names the program otherwise than by the name it ran under."""
    if p.parent_id is None:
        return f"{os.path.basename(p.argv[0]) if p.argv else p.exe} (the build command)"
    if prog is None:
        prog = os.path.basename(p.argv[0]) if p.argv else os.path.basename(p.exe)
    argv = norm.argv(p.argv)
    # The sources a step names tell apart steps whose output is a temp file (every cc1
    # writes -o $TMP once temp names are normalised), so parallel builds still match.
    named_sources = (a for a in argv[1:] if a.endswith(_SOURCE_EXT) and "\n" not in a)
    sources = ",".join(dict.fromkeys(a for a in named_sources if not a.startswith(".")))
    if "-o" in argv[:-1]:
        target = argv[argv.index("-o") + 1]
    else:
        writes = sorted(norm.text(w) for w in p.writes if not w.startswith("/"))
        # A compile without -o (cc -c blocksort.c) is named by its sources alone.
        target = ",".join(writes[:3]) or ("" if sources else " ".join(argv[1:3]))
    target = target.replace("\n", " ")
    if len(target) > 60:
        target = target[:59] + "…"
    named = f"<{sources}>" if sources and sources != target else ""
    where = norm.text(_rel(m, p.cwd)) if with_cwd else "."
    return " ".join(x for x in (f"{prog} [{where}]", target, named) if x)


@dataclass
class Graph:
    """All processes of one recording as nodes, by process id."""

    manifest: Manifest
    norm: Normalizer
    nodes: dict[int, Node]
    root: int | None
    # raw path -> ids of the processes that wrote it
    writers: dict[str, list[int]]
    # intermediate path -> digest (of its normalised content when stored)
    intermediates: dict[str, str]


def build_graph(
    m: Manifest,
    norm: Normalizer,
    with_cwd: bool,
    full_env: bool,
    intermediates: dict[str, str] | None = None,
) -> Graph:
    """``intermediates``: path -> digest of each intermediate's normalised content (a
    ``.s`` file names its source by absolute path); their recorded sha256 otherwise."""
    before = {e.path: e.sha256 for e in m.inputs}
    after = {e.path: e.sha256 for e in m.outputs if e.change != "deleted"}
    external = {e.path: e.sha256 for e in m.external}
    inter = intermediates if intermediates is not None else {}
    for i in m.intermediates:
        inter.setdefault(i.path, i.sha256)
    procs = sorted(m.processes, key=lambda p: (p.start_s, p.id))
    first_write: dict[str, float] = {}
    writers: dict[str, list[int]] = {}
    for p in procs:
        for w in p.writes:
            first_write[w] = min(first_write.get(w, p.start_s), p.start_s)
            writers.setdefault(w, []).append(p.id)
    envs = _environments(m, procs, full_env)
    nodes: dict[int, Node] = {}
    root: int | None = None
    for order, p in enumerate(procs):
        reads: dict[str, Read] = {}
        for r in p.reads:
            if r.startswith(_IGNORED_READS):
                continue
            key = norm.text(r)
            # Written earlier by the build; or written at all by another process when it
            # did not exist before (cmake reads the a.out of the compile it ran).
            produced = r in first_write and (
                first_write[r] < p.start_s or (r not in before and writers[r] != [p.id])
            )
            if not produced and r in p.writes and r not in before:
                continue  # its own product, read back (CMake rereads the cache it wrote)
            if produced:
                digest = after.get(r) if not r.startswith("/") else inter.get(r)
                reads[key] = Read(digest, "upstream", r.startswith("/"))
            elif r.startswith("/"):
                reads[key] = Read(external.get(r, inter.get(r)), "external", True)
            else:
                reads[key] = Read(before.get(r, after.get(r)), "workspace", False)
        exe_rel = _rel(m, p.exe) if p.exe else ""
        if exe_rel and exe_rel in first_write and first_write[exe_rel] < p.start_s:
            # A program an earlier step built (./bzip2 in `make test`): it differs through
            # that step, so it is an upstream input here, not another tool.
            reads[norm.text(exe_rel)] = Read(after.get(exe_rel), "upstream", False)
        env = envs.get(p.id) if p.parent_id is None or full_env else None
        nodes[p.id] = Node(
            proc=p,
            identity=identity(m, p, norm, with_cwd),
            argv=norm.argv(p.argv),
            cwd=norm.text(p.cwd) if with_cwd else ".",
            exe=norm.text(p.exe),
            exe_sha256=p.exe_sha256,
            env=None if env is None else comparable_env(env, norm),
            reads=reads,
            raw_reads=set(p.reads),
            writes=set(p.writes),
            parent=p.parent_id,
            order=order,
            role_identity=identity(m, p, norm, with_cwd, program_role(p.argv, p.exe, p.exe_sha256)),
        )
        if p.parent_id is None and root is None:
            root = p.id
    for n in nodes.values():
        if n.parent is not None and n.parent in nodes:
            nodes[n.parent].children.append(n.proc.id)
    return Graph(m, norm, nodes, root, writers, inter)


@dataclass
class Matching:
    pairs: list[tuple[Node, Node]]
    only_a: list[Node]
    only_b: list[Node]


def match(ga: Graph, gb: Graph) -> Matching:
    """Pair processes by identity (in start order), then by identity with the program named
    by its role (``cc`` run as ``gcc-12``), then the rest by program, cwd and the identity of
    their parent (a ``sh -c`` whose script changed is the same step), by name then by role."""
    pairs: list[tuple[Node, Node]] = []
    if ga.root is not None and gb.root is not None:
        pairs.append((ga.nodes[ga.root], gb.nodes[gb.root]))
    paired_a = {p[0].proc.id for p in pairs}
    paired_b = {p[1].proc.id for p in pairs}

    def keyed(g: Graph, paired: set[int], key: object) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {}
        for n in sorted(g.nodes.values(), key=lambda n: n.order):
            if n.proc.id not in paired:
                out.setdefault(key(g, n), []).append(n)  # type: ignore[operator]
        return out

    def by_identity(g: Graph, n: Node) -> str:
        return n.identity

    def by_role(g: Graph, n: Node) -> str:
        return n.role_identity

    def by_place(g: Graph, n: Node) -> str:
        parent = g.nodes.get(n.parent) if n.parent is not None else None
        prog = os.path.basename(n.argv[0]) if n.argv else n.exe
        return f"{prog} [{n.cwd}] under {parent.identity if parent else '-'}"

    def by_role_place(g: Graph, n: Node) -> str:
        # clang's `clang -cc1` under a compile that gcc ran as `cc1`, writing another file
        parent = g.nodes.get(n.parent) if n.parent is not None else None
        prog = program_role(n.proc.argv, n.proc.exe, n.exe_sha256)
        return f"{prog} [{n.cwd}] under {parent.role_identity if parent else '-'}"

    partner: dict[int, int] = {a.proc.id: b.proc.id for a, b in pairs}
    for key in (by_identity, by_role, by_place, by_role_place):
        kb = keyed(gb, paired_b, key)
        for x in sorted(ga.nodes.values(), key=_order):
            if x.proc.id in paired_a:
                continue
            candidates = [y for y in kb.get(key(ga, x), ()) if y.proc.id not in paired_b]
            if not candidates:
                continue
            # Many steps share an identity (every configure test's `as $TMP`, a forked
            # subshell): the one run as x was, under the partner of x's parent, ending as x
            # did, is x in the other build; start order alone pairs tests run in another
            # order (and a tape can name a wrong parent for a process that reused a pid).
            y = min(
                candidates,
                key=lambda y: (
                    y.argv != x.argv,
                    x.parent is not None and partner.get(x.parent) != y.parent,
                    y.status != x.status,
                    y.order,
                ),
            )
            pairs.append((x, y))
            partner[x.proc.id] = y.proc.id
            paired_a.add(x.proc.id)
            paired_b.add(y.proc.id)
    pairs.sort(key=lambda ab: (ab[0].order, ab[1].order))
    only_a = sorted((n for n in ga.nodes.values() if n.proc.id not in paired_a), key=_order)
    only_b = sorted((n for n in gb.nodes.values() if n.proc.id not in paired_b), key=_order)
    return Matching(pairs, only_a, only_b)


def _order(n: Node) -> int:
    return n.order
