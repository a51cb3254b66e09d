"""``diff``: why two builds differ, most useful finding first.

Steps are matched across the two tapes by *identity* — program, working directory and
what they write (else the sources they name) — so a compile whose flags changed is the
same step, changed. The likely cause is the earliest step whose own command or
pre-build inputs changed; steps that changed only because an upstream step's output did
are *downstream*; a step with the same command and inputs but different outputs is
*nondeterministic*. Contents are only read where hashes differ.
"""

from __future__ import annotations

import difflib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Any

from recorder.model import REDACTED, FileEntry, Manifest, Process
from recorder.normalize import Normalizer as _Norm
from recorder.reading import Tape
from recorder.summary import steps as build_steps

_SOURCE_EXT = (".c", ".cc", ".cpp", ".cxx", ".s", ".S", ".py", ".rs", ".go", ".f90")


@dataclass(frozen=True)
class DiffOptions:
    # Rewrite what is expected to differ (workspace/sandbox paths, temp names, pids,
    # timestamps in text) before comparing argv and streams.
    normalize: bool = True
    # Lines of unified diff kept per file; longer diffs are cut and say so.
    max_diff_lines: int = 60
    # Step timing changes smaller than this (seconds) are not listed.
    min_timing_delta_s: float = 0.05
    # Hand each pair of differing outputs to diffoscope, when it is installed.
    deep: bool = False


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
    role: str  # cause | downstream | nondeterministic | changed


@dataclass
class FileChange:
    path: str
    status: str  # added | removed | changed
    sha256_a: str | None = None
    sha256_b: str | None = None
    detail: list[str] = field(default_factory=list)


@dataclass
class DiffReport:
    equivalent: bool
    verdict: str
    cause: str | None
    command: dict[str, Any]
    environment: dict[str, Any]
    toolchain: list[dict[str, Any]]
    inputs: list[FileChange]
    steps: dict[str, Any]
    outputs: list[FileChange]
    timings: dict[str, Any]
    streams: dict[str, list[str]]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _rel_cwd(m: Manifest, p: Process) -> str:
    rel = os.path.relpath(p.cwd, m.workspace)
    return p.cwd if rel.startswith("..") else rel


def _identity(m: Manifest, p: Process, norm: _Norm) -> str:
    prog = os.path.basename(p.argv[0]) if p.argv else os.path.basename(p.exe)
    argv = norm.argv(p.argv)
    # The sources a step names tell apart steps whose output is a temp file (every cc1
    # writes -o $TMP once temp names are normalised), so parallel builds still match.
    sources = ",".join(a for a in argv[1:] if a.endswith(_SOURCE_EXT))
    if "-o" in argv[:-1]:
        target = argv[argv.index("-o") + 1]
    else:
        writes = sorted(w for w in p.writes if not w.startswith("/"))
        target = ",".join(writes[:3]) or " ".join(argv[1:3])
    named = f" <{sources}>" if sources and sources != target else ""
    return f"{prog} [{_rel_cwd(m, p)}] {target}{named}"


def _match(
    a: Manifest, b: Manifest, norm_a: _Norm, norm_b: _Norm
) -> tuple[list[tuple[Process, Process]], list[Process], list[Process]]:
    def keyed(m: Manifest, norm: _Norm) -> dict[str, list[Process]]:
        out: dict[str, list[Process]] = {}
        for p in sorted(build_steps(m), key=lambda p: (p.start_s, p.id)):
            out.setdefault(_identity(m, p, norm), []).append(p)
        return out

    ka, kb = keyed(a, norm_a), keyed(b, norm_b)
    pairs, only_a, only_b = [], [], []
    for key in sorted(set(ka) | set(kb)):
        la, lb = ka.get(key, []), kb.get(key, [])
        pairs += list(zip(la, lb, strict=False))
        only_a += la[len(lb) :]
        only_b += lb[len(la) :]
    return pairs, only_a, only_b


def _content_at_read(m: Manifest) -> dict[int, dict[str, str | None]]:
    """For every process: path -> sha256 of each workspace file it read, as it read it."""
    before = {e.path: e.sha256 for e in m.inputs}
    after = {e.path: e.sha256 for e in m.outputs if e.change != "deleted"}
    written_by: dict[str, float] = {}
    for p in m.processes:
        for w in p.writes:
            written_by[w] = min(written_by.get(w, p.start_s), p.start_s)
    out: dict[int, dict[str, str | None]] = {}
    for p in m.processes:
        seen: dict[str, str | None] = {}
        for r in p.reads:
            if r.startswith("/"):
                continue
            produced = r in written_by and written_by[r] < p.start_s
            seen[r] = after.get(r) if produced else before.get(r, after.get(r))
        out[p.id] = seen
    return out


def _text_diff(a: bytes, b: bytes, name: str, limit: int) -> list[str] | None:
    try:
        ta, tb = a.decode("utf-8"), b.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\0" in ta or "\0" in tb:
        return None
    lines = list(
        difflib.unified_diff(
            ta.splitlines(), tb.splitlines(), f"a/{name}", f"b/{name}", lineterm="", n=2
        )
    )
    if len(lines) > limit:
        lines = [*lines[:limit], f"... {len(lines) - limit} more diff lines not shown"]
    return lines


def _members(data: bytes, name: str) -> dict[str, bytes] | None:
    """Archive members by name (zip, wheel, jar, tar[.gz|.bz2|.xz], ar), or None."""
    try:
        if name.endswith((".zip", ".whl", ".jar")) or data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                return {i.filename: z.read(i) for i in z.infolist() if not i.is_dir()}
        if data[:8] == b"!<arch>\n":
            out: dict[str, bytes] = {}
            pos = 8
            while pos + 60 <= len(data):
                header = data[pos : pos + 60]
                member = header[:16].decode(errors="replace").strip().rstrip("/")
                size = int(header[48:58].decode().strip() or 0)
                out[member or f"#{len(out)}"] = data[pos + 60 : pos + 60 + size]
                pos += 60 + size + (size % 2)
            return out
        if ".tar" in name or name.endswith((".tgz", ".tbz2", ".txz")):
            with tarfile.open(fileobj=io.BytesIO(data)) as t:
                return {
                    m.name: (t.extractfile(m) or io.BytesIO()).read()
                    for m in t.getmembers()
                    if m.isfile()
                }
    except (zipfile.BadZipFile, tarfile.TarError, ValueError, OSError, EOFError):
        return None
    return None


def _binary_detail(a: bytes, b: bytes) -> list[str]:
    first = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    return [f"binary: {len(a)} -> {len(b)} bytes, first difference at offset {first}"]


def _content_detail(
    ta: Tape, tb: Tape, ea: FileEntry, eb: FileEntry, options: DiffOptions
) -> list[str]:
    if ea.blob is None or eb.blob is None:
        return ["content not stored in both tapes: compared by sha256 only"]
    a, b = ta.blob(ea.blob), tb.blob(eb.blob)
    members_a, members_b = _members(a, ea.path), _members(b, eb.path)
    if members_a is not None and members_b is not None:
        out = []
        for name in sorted(set(members_a) | set(members_b)):
            ma, mb = members_a.get(name), members_b.get(name)
            if ma is None:
                out.append(f"member added: {name}")
            elif mb is None:
                out.append(f"member removed: {name}")
            elif ma != mb:
                text = _text_diff(ma, mb, f"{ea.path}:{name}", options.max_diff_lines)
                out += [f"member changed: {name}", *(text or _binary_detail(ma, mb))]
        return out or ["archives differ only in metadata (order, timestamps, permissions)"]
    text = _text_diff(a, b, ea.path, options.max_diff_lines)
    detail = text if text is not None else _binary_detail(a, b)
    if options.deep:
        detail += _diffoscope(a, b, ea.path, options.max_diff_lines * 4)
    return detail


def _diffoscope(a: bytes, b: bytes, path: str, limit: int) -> list[str]:
    """diffoscope's text report of one pair, run from fixed relative names so it is stable."""
    tool = shutil.which("diffoscope")
    if tool is None:
        return ["--deep: diffoscope is not installed (apt-get install diffoscope-minimal)"]
    name = os.path.basename(path) or "file"
    with tempfile.TemporaryDirectory(prefix="buildtape-deep-") as tmp:
        for side, data in (("a", a), ("b", b)):
            os.mkdir(os.path.join(tmp, side))
            with open(os.path.join(tmp, side, name), "wb") as f:
                f.write(data)
        try:
            out = subprocess.run(
                [tool, "--text", "-", "--no-progress", f"a/{name}", f"b/{name}"],
                cwd=tmp, capture_output=True, text=True, errors="replace", timeout=300,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return ["diffoscope: timed out after 300 s"]
    lines = ["diffoscope:", *out.stdout.splitlines()]
    if len(lines) > limit:
        lines = [*lines[:limit], f"... {len(lines) - limit} more diffoscope lines not shown"]
    return lines


def _files(
    ta: Tape, tb: Tape, a: list[FileEntry], b: list[FileEntry], options: DiffOptions
) -> list[FileChange]:
    ma = {e.path: e for e in a if e.change != "deleted"}
    mb = {e.path: e for e in b if e.change != "deleted"}
    out = []
    for path in sorted(set(ma) | set(mb)):
        ea, eb = ma.get(path), mb.get(path)
        if ea is None and eb is not None:
            out.append(FileChange(path, "added", None, eb.sha256))
        elif eb is None and ea is not None:
            out.append(FileChange(path, "removed", ea.sha256, None))
        elif ea is not None and eb is not None and (ea.sha256, ea.link) != (eb.sha256, eb.link):
            detail = _content_detail(ta, tb, ea, eb, options)
            out.append(FileChange(path, "changed", ea.sha256, eb.sha256, detail))
    return out


def _environment(a: Manifest, b: Manifest, na: _Norm, nb: _Norm) -> dict[str, Any]:
    va = {k: na.text(v) for k, v in a.environment.vars.items()}
    vb = {k: nb.text(v) for k, v in b.environment.vars.items()}
    da, db = a.environment.redacted_digests, b.environment.redacted_digests
    changed: list[dict[str, Any]] = []
    for k in sorted(set(va) & set(vb)):
        if REDACTED in va[k] or REDACTED in vb[k]:
            # Never shown: compared by the digests recorded with the tapes.
            if va[k] != vb[k] or (k in da and k in db and da[k] != db[k]):
                changed.append({"name": k, "a": REDACTED, "b": REDACTED, "secret": True})
        elif va[k] != vb[k]:
            changed.append({"name": k, "a": va[k], "b": vb[k]})
    other = {}
    for key in ("umask", "tz"):
        if getattr(a.environment, key) != getattr(b.environment, key):
            other[key] = [getattr(a.environment, key), getattr(b.environment, key)]
    return {
        "added": sorted(set(vb) - set(va)),
        "removed": sorted(set(va) - set(vb)),
        "changed": changed,
        "other": other,
    }


def _toolchain(a: Manifest, b: Manifest) -> list[dict[str, Any]]:
    out = []
    ta = {t.path: t for t in a.toolchain}
    tb = {t.path: t for t in b.toolchain}
    for path in sorted(set(ta) | set(tb)):
        x, y = ta.get(path), tb.get(path)
        if x is None or y is None or (x.sha256, x.version) != (y.sha256, y.version):
            out.append({
                "path": path,
                "a": None if x is None else x.version,
                "b": None if y is None else y.version,
                "sha256_changed": x is not None and y is not None and x.sha256 != y.sha256,
            })  # fmt: skip
    ea = {e.path: e.sha256 for e in a.external}
    eb = {e.path: e.sha256 for e in b.external}
    for path in sorted(set(ea) & set(eb)):
        if ea[path] != eb[path] and path not in ta:
            out.append({"path": path, "a": ea[path], "b": eb[path], "sha256_changed": True})
    return out


def diff(ta: Tape, tb: Tape, options: DiffOptions) -> DiffReport:
    a, b = ta.manifest, tb.manifest
    na, nb = _Norm(a.workspace, options.normalize), _Norm(b.workspace, options.normalize)
    pairs, only_a, only_b = _match(a, b, na, nb)
    reads_a, reads_b = _content_at_read(a), _content_at_read(b)
    produced_a = {w for p in a.processes for w in p.writes}
    outputs_a = {e.path: e.sha256 for e in a.outputs}
    outputs_b = {e.path: e.sha256 for e in b.outputs}
    changes: list[StepChange] = []
    # Everything a changed step wrote, temp files outside the workspace included: a step
    # that read any of it changed because of its upstream.
    changed_writes: set[str] = set()
    for pa, pb in sorted(pairs, key=lambda ab: (ab[0].start_s, ab[0].id)):
        argv_a, argv_b = na.argv(pa.argv), nb.argv(pb.argv)
        ra, rb = reads_a.get(pa.id, {}), reads_b.get(pb.id, {})
        changed_inputs = sorted(k for k in set(ra) | set(rb) if ra.get(k) != rb.get(k))
        writes = sorted({w for w in (*pa.writes, *pb.writes) if not w.startswith("/")})
        changed_outputs = [w for w in writes if outputs_a.get(w) != outputs_b.get(w)]
        if argv_a == argv_b and not changed_inputs and not changed_outputs:
            continue
        argv_diff = [line for line in difflib.ndiff(argv_a, argv_b) if line[:1] in "+-"]
        own_change = argv_a != argv_b or any(i not in produced_a for i in changed_inputs)
        upstream = bool(changed_writes & {*pa.reads, *pb.reads})
        if own_change:
            role = "changed"
        elif changed_inputs or upstream:
            role = "downstream"
        else:
            role = "nondeterministic"
        changed_writes |= {*pa.writes, *pb.writes}
        changes.append(
            StepChange(
                _identity(a, pa, na), pa.id, pb.id, pa.argv, pb.argv, argv_diff,
                changed_inputs, changed_outputs, role,
            )
        )  # fmt: skip
    cause_step = next((c for c in changes if c.role == "changed"), None)
    if cause_step is not None:
        cause_step.role = "cause"
    inputs = _files(ta, tb, a.inputs, b.inputs, options)
    outputs = _files(ta, tb, a.outputs, b.outputs, options)
    env = _environment(a, b, na, nb)
    tools = _toolchain(a, b)
    cmd_a, cmd_b = na.argv(a.argv), nb.argv(b.argv)
    command = {
        "a": a.argv, "b": b.argv, "same": cmd_a == cmd_b,
        "status": [a.status, b.status], "exit_code": [a.exit_code, b.exit_code],
    }  # fmt: skip
    streams = {}
    for name in ("stdout", "stderr"):
        sa = na.text(ta.stream(name).decode("utf-8", "replace"))
        sb = nb.text(tb.stream(name).decode("utf-8", "replace"))
        if sa != sb:
            lines = list(
                difflib.unified_diff(
                    sa.splitlines(), sb.splitlines(), f"a/{name}", f"b/{name}", lineterm="", n=1
                )
            )
            streams[name] = lines[: options.max_diff_lines]
    timing_rows: list[dict[str, Any]] = []
    for pa, pb in pairs:
        da, db = pa.duration_s, pb.duration_s
        if da is not None and db is not None and abs(db - da) >= options.min_timing_delta_s:
            timing_rows.append({
                "step": _identity(a, pa, na),
                "a_s": round(da, 3),
                "b_s": round(db, 3),
                "delta_s": round(db - da, 3),
            })  # fmt: skip
    timing_rows.sort(key=lambda r: (-abs(float(r["delta_s"])), str(r["step"])))
    timings = {
        "total": [round(a.duration_s, 3), round(b.duration_s, 3)],
        "steps": timing_rows[:10],
    }
    different = bool(
        outputs or inputs or changes or only_a or only_b or not command["same"]
        or a.status != b.status or a.exit_code != b.exit_code
    )  # fmt: skip
    verdict, cause = _verdict(different, cause_step, changes, inputs, tools, env, command)
    return DiffReport(
        equivalent=not different,
        verdict=verdict,
        cause=cause,
        command=command,
        environment=env,
        toolchain=tools,
        inputs=inputs,
        steps={
            "changed": [asdict(c) for c in changes],
            "only_in_a": [{"id": p.id, "argv": p.argv} for p in only_a],
            "only_in_b": [{"id": p.id, "argv": p.argv} for p in only_b],
        },
        outputs=outputs,
        timings=timings,
        streams=streams,
    )


def _verdict(
    different: bool,
    cause: StepChange | None,
    changes: list[StepChange],
    inputs: list[FileChange],
    tools: list[dict[str, Any]],
    env: dict[str, Any],
    command: dict[str, Any],
) -> tuple[str, str | None]:
    if not different:
        return "equivalent: same command, inputs, steps and outputs", None
    if cause is not None:
        what = []
        if cause.argv_diff:
            what.append("arguments " + " ".join(cause.argv_diff))
        own = [i for i in cause.changed_inputs]
        if own:
            what.append("inputs " + ", ".join(own))
        downstream = sum(1 for c in changes if c.role == "downstream")
        tail = f"; {downstream} downstream step(s) changed because of it" if downstream else ""
        return (
            "different",
            f"step #{cause.step_a} {cause.identity} changed: {'; '.join(what)}{tail}",
        )
    nondet = [c for c in changes if c.role == "nondeterministic"]
    if nondet:
        names = ", ".join(f"#{c.step_a} {c.identity}" for c in nondet)
        return "different", f"nondeterministic: same command and inputs, different outputs: {names}"
    if not command["same"]:
        return "different", "the build command differs"
    if inputs:
        return "different", "workspace inputs differ: " + ", ".join(i.path for i in inputs[:5])
    if tools:
        return "different", "toolchain differs: " + ", ".join(t["path"] for t in tools[:5])
    if env["added"] or env["removed"] or env["changed"]:
        return "different", "the environment differs"
    return "different", None
