"""Causality: which matched steps changed on their own, which only because of an upstream
step, which are nondeterministic — and the likely cause, in words a user acts on.

A step is *changed* when one of its own inputs differs other than through an upstream
step: argv, cwd or environment when its parent is the same, the executable it ran, a
workspace file as it was before the build, an external file. It is *downstream* when it
differs only through upstream outputs (or a parent that changed, which hands it argv and
environment), and *nondeterministic* only when all of that is equal and its outputs or
exit status still differ.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
from dataclasses import dataclass, field

from recorder.model import Tool
from replay.diff_limits import align
from replay.programs import program_role
from replay.steps import Graph, Matching, Node

# Variables that builds are known to read; a change elsewhere is only named when
# nothing else explains the difference.
_BUILD_VARS = re.compile(
    r"^(LC_\w+|LANG|LANGUAGE|TZ|SOURCE_DATE_EPOCH|CC|CXX|CPP|FC|AR|AS|LD|NM|RANLIB|STRIP"
    r"|\w*FLAGS|LDLIBS|LIBS|PATH|LD_LIBRARY_PATH|LIBRARY_PATH|CPATH|C_INCLUDE_PATH"
    r"|CPLUS_INCLUDE_PATH|PKG_CONFIG\w*|PYTHON\w*|PIP_\w+|GO\w*|CGO_\w+|CARGO\w*|RUST\w*"
    r"|JAVA\w*|CMAKE_\w+|CCACHE_\w+|DEB_\w+|MAKEFLAGS|DESTDIR|PREFIX|OPT|DEBUG|NDEBUG|V|VERBOSE)$"
)
_NOT_FOUND = re.compile(
    r"(?:^|[\s:])([\w.+-]+): (?:command )?not found\b|([\w.+/-]+): No such file or directory"
)
# Variables that hold a colon-separated search path.
_PATH_LIST = re.compile(r"^\w*PATH$")
_INTERPRETERS = frozenset({"sh", "bash", "dash", "env", "perl", "python", "python3", "ruby"})
_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)*")
_COMPILERS = {"cc": "C compiler", "c++": "C++ compiler"}
# ndiff (which pairs similar arguments inside a replacement) runs up to this many pairs of
# arguments; past it the arguments come from ``align``, which is near-linear.
_NDIFF_WORK = 40_000

# Order of a step's own changes in the likely-cause line (most actionable first).
_RANK = {
    "file": 0,
    "command": 1,
    "missing_tool": 2,
    "tool": 3,
    "env": 4,
    "external": 5,
    "flags": 6,
    "cwd": 7,
    "read": 8,
    "weak_env": 9,
}


@dataclass(frozen=True)
class Change:
    """One own input of a step that differs, in words."""

    kind: str  # a key of _RANK
    key: str  # the same change seen by several steps has one key
    text: str
    tokens: tuple[str, ...] = ()  # env: words of the values, to find them in argv


@dataclass
class Finding:
    a: Node
    b: Node
    role: str  # cause | changed | downstream | nondeterministic
    own: list[Change]
    upstream: list[str]
    changed_outputs: list[str]
    argv_diff: list[str]
    flags: str | None  # the argv change in words, also when it came from upstream


@dataclass
class Causes:
    findings: list[Finding]
    causes: list[str]  # most upstream first
    cause_steps: list[int] = field(default_factory=list)


def _token(t: str) -> str:
    if "\n" in t:
        t = t.split("\n", 1)[0] + "…"
    q = shlex.quote(t) if t else "''"
    return q if len(q) <= 50 else q[:49] + "…"


def flag_change(a: list[str], b: list[str]) -> str:
    """``-O2 → -O3``, ``-O0 added``, ``-g removed``: what differs between two argv."""
    parts = []
    alignment = align(a, b)
    for tag, i1, i2, j1, j2 in alignment.opcodes:
        # Only what fits the 160 characters shown is quoted: an argv can be any length.
        old = " ".join(_token(t) for t in a[i1 : min(i2, i1 + 100)])
        new = " ".join(_token(t) for t in b[j1 : min(j2, j1 + 100)])
        if tag == "replace":
            parts.append(f"{old} → {new}")
        elif tag == "delete":
            parts.append(f"{old} removed")
        elif tag == "insert":
            parts.append(f"{new} added")
        if sum(map(len, parts)) > 160:
            break
    text = ", ".join(parts)
    text = text if len(text) <= 160 else text[:159] + "…"
    if not alignment.aligned:
        text += (
            f" (too many arguments to align: {alignment.differing_a} and "
            f"{alignment.differing_b} differ, compared as a whole)"
        )
    return text


def argv_lines(a: list[str], b: list[str]) -> list[str]:
    """The arguments only one side has, ``- x`` and ``+ y``, as ``difflib.ndiff`` writes them."""
    if len(a) * len(b) <= _NDIFF_WORK:
        return [line for line in difflib.ndiff(a, b) if line[:1] in "+-"]
    out: list[str] = []
    for _, i1, i2, j1, j2 in align(a, b).opcodes:
        out += [f"- {t}" for t in a[i1:i2]]
        out += [f"+ {t}" for t in b[j1:j2]]
    return out


def _command(a: list[str], b: list[str]) -> str:
    ja, jb = shlex.join(a), shlex.join(b)
    if "\n" not in ja + jb and len(ja) <= 80 and len(jb) <= 80:
        return f"build command {ja} → {jb}"
    return f"build command: {flag_change(a, b)}"


def _env_changes(ea: dict[str, str], eb: dict[str, str], confirmed: set[str]) -> list[Change]:
    out = []
    for k in sorted(set(ea) | set(eb)):
        va, vb = ea.get(k), eb.get(k)
        if va == vb:
            continue
        if "[REDACTED]" in f"{va}{vb}":
            text = f"{k} changed (a secret: compared by digest, not shown)"
        elif va is None:
            text = f"{k} set to {_token(vb or '')}"
        elif vb is None:
            text = f"{k} unset"
        elif _PATH_LIST.match(k):
            text = _path_list_change(k, va, vb)
        else:
            text = f"{k} {_token(va)} → {_token(vb)}"
        strong = bool(_BUILD_VARS.match(k)) or k in confirmed
        tokens = tuple(sorted({*(va or "").split(), *(vb or "").split()}))
        out.append(Change("env" if strong else "weak_env", f"env {k}", text, tokens))
    return out


def _path_list_change(name: str, a: str, b: str) -> str:
    """``PATH: /opt/cc/bin added``: the entries of a search path that differ, not the first
    50 characters of two long values that often start alike."""
    xs, ys = a.split(":"), b.split(":")
    parts = [f"{_entry(d)} added" for d in dict.fromkeys(ys) if d not in xs]
    parts += [f"{_entry(d)} removed" for d in dict.fromkeys(xs) if d not in ys]
    if not parts:
        return f"{name}: the same entries in another order"
    text = ", ".join(parts[:3])
    if len(parts) > 3:
        text += f" and {len(parts) - 3} more"
    return f"{name}: {text}"


def _entry(d: str) -> str:
    """A directory of a search path, quoted; a long one keeps its end, which names it."""
    q = _token(d.replace("\n", " ")) if len(d) <= 50 else shlex.quote(d.replace("\n", " "))
    return q if len(q) <= 100 else "…" + q[-99:]


def _shadowing_tools(ga: Graph, gb: Graph) -> list[Change]:
    """Programs the build runs by name that B found in a directory only B's PATH has: a
    wrapper put in front of the real tool (a ``cc`` script that adds a flag, ccache). A
    script that ``exec``s the tool runs under the tool's own name and executable, so it is
    found by the read of the script, not by the executable."""
    old = set(ga.manifest.environment.vars.get("PATH", "").split(":"))
    new_dirs = {
        d.rstrip("/") or "/"
        for d in gb.manifest.environment.vars.get("PATH", "").split(":")
        if d and d not in old
    }
    if not new_dirs:
        return []
    ran_a: dict[str, list[Node]] = {}
    for n in sorted(ga.nodes.values(), key=lambda n: n.order):
        if n.proc.argv:
            ran_a.setdefault(os.path.basename(n.proc.argv[0]), []).append(n)
    out: list[Change] = []
    seen: set[str] = set()
    for n in sorted(gb.nodes.values(), key=lambda n: n.order):
        for r in sorted(n.raw_reads):
            where, name = os.path.split(r)
            if where not in new_dirs or name not in ran_a or name in seen:
                continue
            seen.add(name)
            was = ran_a[name][0]
            text = f"{name} on PATH is now {r} (was {was.proc.exe})"
            real = _runs(gb, n, {x.exe_sha256 for x in ran_a[name] if x.exe_sha256})
            if real is not None and real.proc.exe != r:
                # The wrapper ran the real tool: say what it added, against the A step
                # with the most arguments in common.
                near = max(ran_a[name], key=lambda x: len(set(x.argv) & set(real.argv)))
                flags = flag_change(near.proc.argv[1:], real.proc.argv[1:])
                text += f", which runs {real.proc.exe}" + (f" with {flags}" if flags else "")
            out.append(Change("tool", f"tool {name} {gb.norm.text(r)}", text))
    return out


def _runs(g: Graph, n: Node, tools: set[str | None]) -> Node | None:
    """``n`` or the first process below it that ran one of ``tools`` (by sha256)."""
    todo = [n]
    while todo:
        x = todo.pop(0)
        if x.exe_sha256 in tools:
            return x
        todo += [g.nodes[c] for c in sorted(x.children) if c in g.nodes]
    return None


def _version(tools: list[Tool], exe: str, sha: str | None) -> str | None:
    for t in tools:
        if (sha is not None and t.sha256 == sha) or t.path == exe:
            found = _VERSION.search(t.version or "")
            return found.group(0) if found else t.version
    return None


def _built(g: Graph, n: Node) -> bool:
    ws = g.manifest.workspace.rstrip("/") + "/"
    rel = n.proc.exe[len(ws) :] if n.proc.exe.startswith(ws) else None
    return rel is not None and any(
        o.path == rel and o.change in ("created", "modified") for o in g.manifest.outputs
    )


def _tool_change(ga: Graph, gb: Graph, a: Node, b: Node) -> Change | None:
    hashed = a.exe_sha256 is not None and b.exe_sha256 is not None
    sha_differs = hashed and a.exe_sha256 != b.exe_sha256
    # With hashes, the same executable under another name (/bin/sh, /usr/bin/dash) is the
    # same tool; without them (1.0 tapes) the path is all there is.
    path_differs = a.exe != b.exe and (sha_differs or not hashed)
    if not path_differs and not sha_differs:
        return None
    if not path_differs and _built(ga, a) and _built(gb, b):
        return None  # built by an earlier step: an upstream read (steps.build_graph)
    name = os.path.basename(b.argv[0]) if b.argv else os.path.basename(b.exe)
    va = _version(ga.manifest.toolchain, a.proc.exe, a.exe_sha256)
    vb = _version(gb.manifest.toolchain, b.proc.exe, b.exe_sha256)
    versions = f", {va} → {vb}" if va and vb and va != vb else ""
    was = os.path.basename(a.argv[0]) if a.argv else os.path.basename(a.exe)
    role = _COMPILERS.get(program_role(b.proc.argv, b.proc.exe, b.exe_sha256))
    if role and was != name and sha_differs:
        # Another compiler under another name (CC=clang-14 where cc ran): matched by role.
        text = f"the {role} is now {name} ({b.exe}, was {was}: {a.exe}){versions}"
    elif path_differs:
        text = f"{name} on PATH is now {b.exe} (was {a.exe}){versions}"
    else:
        text = f"{name} ({b.exe}) is another executable{versions or ' (sha256 differs)'}"
    return Change("tool", f"tool {name} {b.exe}", text)


def _missing_tool(x: Node, y: Node, only_a: list[Node], stderr_b: list[str]) -> Change | None:
    # make reports a command it could not run as "Error 127"; the child it forked for it
    # never ran a program, so the tape may not have it.
    not_run = y.proc.exit_code == 127 or (
        y.proc.failed and any("Error 127" in line for line in stderr_b)
    )
    if not not_run or x.proc.failed:
        return None
    name = None
    for line in stderr_b:
        found = _NOT_FOUND.search(line)
        if found:
            name = os.path.basename(found.group(1) or found.group(2))
            break
    if name is None:
        for n in only_a:
            if n.parent == x.proc.id and n.argv:
                # A script runs as its interpreter: /bin/sh /opt/tools/protoc --version.
                script = os.path.basename(n.argv[0]) in _INTERPRETERS and len(n.argv) > 1
                name = os.path.basename(n.argv[1] if script else n.argv[0])
                break
    if name is None:
        return None
    return Change("missing_tool", f"missing {name}", f"{name}: not found on PATH")


def _cache_dirs(g: Graph) -> set[str]:
    """The build's cache directory (``$XDG_CACHE_HOME``, else ``~/.cache``): what a tool
    finds there depends on the builds before (pip's, a compiler cache), and a replay gives
    the build an empty one."""
    env = g.manifest.environment.vars
    out = {env["XDG_CACHE_HOME"]} if env.get("XDG_CACHE_HOME", "").startswith("/") else set()
    if env.get("HOME", "").startswith("/"):
        out.add(env["HOME"].rstrip("/") + "/.cache")
    return {d.rstrip("/") for d in out if d.rstrip("/")}


def _in_cache(path: str, caches: set[str]) -> bool:
    return any(path == d or path.startswith(d + "/") for d in caches)


def explain(
    ga: Graph,
    gb: Graph,
    matching: Matching,
    changed_outputs: set[str],
    input_status: dict[str, str],
    stderr_b: list[str],
) -> Causes:
    state: dict[int, str] = {}  # A process id -> role
    differing_a: set[str] = set()
    differing_b: set[str] = set()
    paired_b = {b.proc.id for _, b in matching.pairs}
    caches = _cache_dirs(ga) | _cache_dirs(gb)
    findings: list[Finding] = []
    for x, y in matching.pairs:
        own: list[Change] = []
        upstream: list[str] = []
        one_sided: list[str] = []
        temp_reads: list[str] = []  # unhashed temp files: differ when their writer did
        unknown: list[str] = []  # upstream workspace files whose content was not kept
        parent_differs = x.parent is not None and (
            state.get(x.parent, "unmatched") != "same" or y.parent not in paired_b
        )
        flags = flag_change(x.argv, y.argv) if x.argv != y.argv else None
        if x.argv != y.argv:
            if parent_differs:
                upstream.append("argv (from its parent)")
            elif x.parent is None:
                own.append(Change("command", "command", _command(x.argv, y.argv)))
            else:
                own.append(Change("flags", f"flags {flags}", f"{x.identity}: {flags}"))
        if x.cwd != y.cwd:
            if parent_differs:
                upstream.append("cwd (from its parent)")
            else:
                own.append(Change("cwd", f"cwd {x.identity}", f"{x.identity} runs in {y.cwd}"))
        if x.env is not None and y.env is not None and x.env != y.env:
            if parent_differs:
                upstream.append("environment (from its parent)")
            else:
                own += _env_changes(x.env, y.env, set())
        if (
            x.parent is None
            and x.env is not None
            and y.env is not None
            and x.env.get("PATH") != y.env.get("PATH")
        ):
            own += _shadowing_tools(ga, gb)
        tool = _tool_change(ga, gb, x, y)
        if tool is not None:
            own.append(tool)
        for k in sorted(set(x.reads) | set(y.reads)):
            ra, rb = x.reads.get(k), y.reads.get(k)
            origin = ra.origin if ra is not None else rb.origin if rb is not None else ""
            if "upstream" in (ra.origin if ra else "", rb.origin if rb else ""):
                # Compared through its writers (below) and normalised outputs, not raw
                # hashes: a generated file that names the workspace is the same file.
                if ra is None or rb is None or k in changed_outputs:
                    upstream.append(k)
                elif ra.outside and None not in (ra.digest, rb.digest):
                    if ra.digest != rb.digest:
                        upstream.append(k)  # an intermediate, hashed by the 1.1 capture
                elif ra.outside:
                    temp_reads.append(k)
                elif ra.digest is None or rb.digest is None:
                    unknown.append(k)  # written and deleted by the build (conftest.c)
                continue
            if ra is not None and rb is not None:
                if ra.digest == rb.digest:
                    continue
                if origin == "workspace":
                    status = input_status.get(k, "changed")
                    text = {
                        "removed": f"{k} removed from the workspace",
                        "added": f"{k} added to the workspace",
                    }.get(status, f"{k} changed")
                    own.append(Change("file", f"file {k}", text))
                else:
                    own.append(Change("external", f"file {k}", f"{k} changed"))
            elif origin == "workspace" and input_status.get(k) in ("removed", "added"):
                text = f"{k} {input_status[k]} {'from' if rb is None else 'to'} the workspace"
                own.append(Change("file", f"file {k}", text))
            elif not _in_cache(k, caches):
                one_sided.append(k)
        if temp_reads:
            upstream += sorted(
                {ga.norm.text(r) for r in x.raw_reads & differing_a if r.startswith("/")}
                | {gb.norm.text(r) for r in y.raw_reads & differing_b if r.startswith("/")}
            )
        if one_sided and (own or upstream or unknown):
            # Another include path, another flag, a configure test's source that the build
            # wrote and deleted: a consequence of what else changed, not a change of its own.
            upstream += one_sided
        elif one_sided:
            k = one_sided[0]
            side = "A" if k in x.reads else "B"
            own.append(Change("read", f"read {k}", f"{x.identity} reads {k} only in {side}"))
        missing = _missing_tool(x, y, matching.only_a, stderr_b)
        if missing is not None:
            own.append(missing)
        outs = sorted(
            w for w in {*x.writes, *y.writes} if not w.startswith("/") and w in changed_outputs
        )
        # Intermediates it wrote (gcc's .s for as): compared by normalised name and content.
        ia = {ga.norm.text(w): ga.intermediates[w] for w in x.writes if w in ga.intermediates}
        ib = {gb.norm.text(w): gb.intermediates[w] for w in y.writes if w in gb.intermediates}
        outs += sorted(k for k in set(ia) & set(ib) if ia[k] != ib[k])
        if own:
            role = "changed"
        elif upstream == ["environment (from its parent)"] and not outs and x.status == y.status:
            # Only the inherited environment differs and nothing came of it: not worth a
            # line, but its children inherit the difference from a parent that differs.
            state[x.proc.id] = "quiet"
            continue
        elif upstream:
            role = "downstream"
        elif outs or x.status != y.status:
            role = "nondeterministic"
        else:
            state[x.proc.id] = "same"
            continue
        state[x.proc.id] = role
        differing_a |= x.writes
        differing_b |= y.writes
        argv_diff = argv_lines(x.argv, y.argv)
        findings.append(
            Finding(x, y, role, own, sorted(set(upstream)), outs, argv_diff, flags)
        )  # fmt: skip
    _follow_failures_below(findings, ga.nodes)
    return _rank(findings, ga.nodes)


def _follow_failures_below(findings: list[Finding], nodes: dict[int, Node]) -> None:
    """A process whose only difference is its exit status, with a differing step below it,
    exited as it did because of that step (make exits 2 when its cc failed): it follows
    from the step, it is not nondeterministic. Parents come before their children in the
    walk above, so this is only known once every step has been looked at."""
    above: set[int] = set()
    for f in findings:
        parent = f.a.parent
        while parent is not None and parent not in above:
            above.add(parent)
            node = nodes.get(parent)
            parent = node.parent if node is not None else None
    for f in findings:
        if f.role == "nondeterministic" and not f.changed_outputs and f.a.proc.id in above:
            f.role = "downstream"


def _descendant_flags(f: Finding, findings: list[Finding], by_id: dict[int, Node]) -> str | None:
    """What a change did to the first step whose argv it changed: one below the changed
    driver, else one later in the build (a configure step writes what a build runs). A
    compile of the project's own sources says more than a configure test's (``conftest.c``,
    ``ztest$PID.c``), and a flag more than a build id (go's ``-buildid``): those come first."""
    below: list[Finding] = []
    later: list[Finding] = []
    for g in findings:
        # A compile whose only own change is its compiler (CC=clang-14) follows from f too.
        switched = g.role == "changed" and all(c.kind == "tool" for c in g.own)
        if g.a.order <= f.a.order or g.flags is None or not (g.role == "downstream" or switched):
            continue
        node: Node | None = g.a
        while node is not None and node.parent is not None:
            if node.parent == f.a.proc.id:
                below.append(g)
                break
            node = by_id.get(node.parent)
        else:
            later.append(g)
    for group in (below, later):
        telling = [g for g in group if not _ids_only(g)]
        if telling:
            g = min(telling, key=lambda g: (_place(g), g.a.order))
            return f"step #{g.a.proc.id} {g.a.identity}: {g.flags}"
    return None


_SOURCES = re.compile(r"<([^<>]+)>$")
_TEMP_NAME = re.compile(r"\$(TMP|PID)|conftest|CompilerId|cmTC_|^/")
# A hash inside a path (go's cache entries, /root/.cache/go-build/10/1090e55c…-d).
_HASH_RUN = re.compile(
    r"(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])(?<![A-Za-z0-9])[A-Za-z0-9]{16,}"
)
_HASHLIKE = re.compile(r"(?=[^ ]*\d)(?=[^ ]*[A-Za-z])[A-Za-z0-9_=/+-]{16,}")


def _place(g: Finding) -> int:
    """0: a step on the project's own sources; 1: another; 2: a configure test's (autoconf's
    conftest.c, zlib's ztest$PID.c, CMake's compiler identification and try-compiles)."""
    found = _SOURCES.search(g.a.identity)
    if found:
        return 2 if any(_TEMP_NAME.search(s) for s in found.group(1).split(",")) else 0
    return 2 if "$PID" in g.a.identity or "conftest" in g.a.identity else 1


def incidental(f: Finding) -> bool:
    """A configure test that ran with other flags or read other headers and still ended as
    before, writing no workspace file that differs: configure runs its tests in an order
    and number a pid or a cache can shift; what they decided shows in its outputs."""
    return (
        bool(f.own)
        and all(c.kind in ("flags", "read") for c in f.own)
        and _place(f) == 2
        and f.a.status == f.b.status
        and all(o.startswith(("/", "$")) for o in f.changed_outputs)
    )


def _ids_only(g: Finding) -> bool:
    """Only generated ids differ in its argv (go's ``-buildid``): nothing to show."""
    words = [w[2:].split("=", 1)[-1] for w in g.argv_diff]
    return bool(words) and all(
        _HASHLIKE.fullmatch(w) or _HASH_RUN.search(w) for w in words
    )  # fmt: skip


def _rank(findings: list[Finding], nodes: dict[int, Node]) -> Causes:
    by_id = nodes
    argv_words = {w for f in findings if f.flags for line in f.argv_diff for w in line[2:].split()}
    entries: list[tuple[bool, int, int, str, str, Finding]] = []
    for f in findings:
        if f.role != "changed" or incidental(f):
            continue
        own = list(f.own)
        # A variable whose value shows up in a changed argv is confirmed as read.
        own = [
            Change("env", c.key, c.text, c.tokens)
            if c.kind == "weak_env" and set(c.tokens) & argv_words
            else c
            for c in own
        ]
        if any(c.kind in ("missing_tool", "tool") for c in own) or any(
            g.role == "changed" and any(c.kind in ("missing_tool", "tool") for c in g.own)
            for g in findings
        ):
            # A tool found elsewhere, or not at all, says more than the PATH that led there.
            own = [c for c in own if c.key != "env PATH"]
        consequence = _descendant_flags(f, findings, by_id)
        for c in own:
            text = c.text
            if c.kind in ("file", "env", "weak_env", "command") and consequence:
                text = f"{text} (then {consequence})"
            elif c.kind == "flags":
                text = f"step #{f.a.proc.id} {c.text}"
            rank = _RANK[c.kind]
            entries.append((rank >= _RANK["weak_env"], f.a.order, rank, c.key, text, f))
    strong = [e for e in entries if not e[0]]
    chosen = sorted(strong or entries, key=lambda e: e[1:5])
    if any(e[2] < _RANK["flags"] for e in chosen):
        # A configure test that got other flags or read other headers once the options,
        # the sources or the tools changed follows from that change: configure chose them.
        chosen = [e for e in chosen if not (e[2] >= _RANK["flags"] and _place(e[5]) == 2)]
    seen: dict[str, int] = {}
    texts: list[str] = []
    steps: list[int] = []
    flag_groups: dict[str, int] = {}
    for _, _, _, key, text, f in chosen:
        if key in seen:
            if key.startswith("flags "):
                flag_groups[key] = flag_groups.get(key, 0) + 1
            continue
        seen[key] = len(texts)
        texts.append(text)
        if f.a.proc.id not in steps:
            steps.append(f.a.proc.id)
        f.role = "cause"
    for key, extra in flag_groups.items():
        i = seen[key]
        texts[i] += f" (and {extra} more step{'s' if extra > 1 else ''})"
    for f in findings:
        if f.role == "changed" and f.a.proc.id in steps:
            f.role = "cause"
    return Causes(findings, [t.replace("\n", " ") for t in texts], steps)
