"""Phase 5 of a recording: put the manifest together from what the phases gathered."""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timezone

from recorder import __version__
from recorder.build import BuildRun, Observer
from recorder.container import FORMAT_VERSION, TapeWriter
from recorder.hashcache import HashCache
from recorder.host import host_info, locale_settings, ulimits
from recorder.host import timezone as tz_name
from recorder.interposer import elf_kind, env_delta, read_environment
from recorder.model import (
    REDACTED,
    BuildWarning,
    Chunk,
    Environment,
    ExternalFile,
    GitState,
    Intermediate,
    Manifest,
    Process,
    Sampling,
    Streams,
    Tracing,
    Version,
)
from recorder.observe import Observation
from recorder.prepare import Plan, relative
from recorder.secrets import _URL_PASSWORD, _VALUE_PATTERNS, Scrubber
from recorder.strace_parser import TracedProcess
from recorder.toolchain import fingerprint


def split_returncode(rc: int) -> tuple[int | None, str | None]:
    if rc < 0:
        try:
            return None, signal.Signals(-rc).name
        except ValueError:
            return None, f"SIG{-rc}"
    return rc, None


def signum(name: str | None) -> int:
    if name is None:
        return 0
    try:
        return int(signal.Signals[name])
    except KeyError:
        return int(name[3:]) if name[3:].isdigit() else 0


def _iso(ts: float) -> str:
    return (
        datetime.fromtimestamp(ts, timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class _Environments:
    """Each process's environment as a delta from its parent's, redacted like the build's."""

    def __init__(self, plan: Plan, run: BuildRun, observer: Observer) -> None:
        self._plan = plan
        self._run = run
        self._shim = str(observer.shim) if observer.shim else None
        self._by_tag: dict[str, dict[str, str] | None] = {}
        self._deltas: dict[tuple[str | None, str], dict[str, str | None] | None] = {}
        # The same few names change in thousands of deltas (COLLECT_GCC_OPTIONS, MAKEFLAGS):
        # each glob test of a name is done once.
        self._secret_name: dict[str, bool] = {}

    def of(self, tag: str | None) -> dict[str, str] | None:
        if tag is None or self._run.save_dir is None:
            return None
        if tag not in self._by_tag:
            files = self._run.environments
            env = (
                files.get(tag)
                if files is not None
                else read_environment(self._run.save_dir, tag, self._shim)
            )
            if env is not None:
                # Variables the recorder set for itself read as they were in the build's env.
                for name, ours in self._run.added_env.items():
                    if env.get(name) == ours:
                        if name in self._plan.env:
                            env[name] = self._plan.env[name]
                        else:
                            env.pop(name, None)
            self._by_tag[tag] = env
        return self._by_tag[tag]

    def delta_of_tags(self, parent: str | None, child: str) -> dict[str, str | None] | None:
        """The delta between two saved environments (None: the build's), computed once."""
        key = (parent, child)
        if key not in self._deltas:
            own = self.of(child)
            base = self._plan.env if parent is None else self.of(parent)
            self._deltas[key] = None if own is None or base is None else self.delta(base, own)
        found = self._deltas[key]
        return None if found is None else dict(found)

    def delta(self, parent: Mapping[str, str], child: Mapping[str, str]) -> dict[str, str | None]:
        policy = self._plan.options.secrets
        out: dict[str, str | None] = {}
        for name, value in env_delta(parent, child).items():
            secret = self._secret_name.get(name)
            if secret is None:
                secret = self._secret_name[name] = policy.name_is_secret(name)
            if value is not None and (secret or _VALUE_PATTERNS.match(value)):
                value = REDACTED
            elif value is not None:
                value = _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED + "@", value)
            out[name] = value
        return out


def _in_order(run: BuildRun) -> list[TracedProcess]:
    return sorted(run.traced, key=lambda p: (p.start, p.pid))


def process_ids(run: BuildRun) -> dict[int, int]:
    """The tape's process id of each traced process, by the key the records name it with
    (its pid, or the recorder's key for a process whose pid a later one reused)."""
    return {p.pid: i for i, p in enumerate(_in_order(run), start=1)}


def processes(plan: Plan, run: BuildRun, observer: Observer, cache: HashCache) -> list[Process]:
    traced = _in_order(run)
    ids = process_ids(run)
    workspace, argv, cwd = str(plan.workspace), plan.argv, str(plan.cwd)
    records = run.records
    tags = records.env_tags if records is not None else {}
    envs = _Environments(plan, run, observer)
    exe_digest: dict[str, str | None] = {}
    kind_of: dict[str, str | None] = {}
    unobserved = records.unobserved if records is not None else {}
    by_pid = {p.pid: p for p in traced}
    out = []
    for i, tp in enumerate(traced, start=1):
        root = tp.parent_pid is None or tp.parent_pid not in ids
        exit_code, sig = tp.exit_code, tp.signal
        if root and exit_code is None and sig is None:
            exit_code, sig = split_returncode(run.returncode)
        exe = tp.exe or ""
        if tp.parent_pid is None:
            # The command, as it was run (``sh``: /usr/bin/sh), like every other process;
            # nothing logged its exec, so /proc/self/exe would name the file it resolved to.
            named = _which(argv[0], plan)
            if not exe or _same_file(named, exe):
                exe = named if os.path.exists(named) else exe or named
        if exe and exe not in exe_digest:
            found = cache.sha256(exe) if exe.startswith("/") else None
            exe_digest[exe] = found[0] if found else None
            kind_of[exe] = elf_kind(exe) if exe.startswith("/") else None
        kind = kind_of.get(exe)
        static = kind in ("static", "go")
        observed = tp.pid not in unobserved and not (root and tp.exe is None)
        if observer.files == "preload" and observed and kind != "go":
            static = False  # the interposer ran in it and saw its calls
        if records is not None and tp.pid in records.straced:
            static = False  # strace traced its subtree
        end = tp.end
        if end is None and tp.parent_pid is None:
            end = run.wall0 + run.duration  # the command itself ended with the build
        out.append(
            Process(
                id=i,
                pid=tp.pid if tp.recorded_pid is None else tp.recorded_pid,
                parent_id=None if root else ids[tp.parent_pid] if tp.parent_pid else None,
                # Only the command itself may borrow the recorded argv.
                argv=tp.argv or (argv if tp.parent_pid is None else []),
                exe=exe,
                cwd=tp.exec_cwd or tp.cwd or cwd,
                start_s=max(0.0, tp.start - run.wall0),
                end_s=None if end is None else max(0.0, end - run.wall0),
                exit_code=exit_code,
                signal=sig,
                reads=[relative(p, workspace) for p in tp.reads],
                writes=[relative(p, workspace) for p in tp.writes],
                deleted=[relative(p, workspace) for p in tp.deleted],
                exe_sha256=exe_digest.get(exe),
                env=_delta_of(tp, by_pid, tags, envs, plan, root),
                static=static,
                made_dirs=[relative(p, workspace) for p in tp.made_dirs],
                forked=tp.forked and tp.parent_pid is not None,
            )
        )
    return out


def _delta_of(
    tp: TracedProcess,
    by_pid: Mapping[int, TracedProcess],
    tags: Mapping[int, str],
    envs: _Environments,
    plan: Plan,
    root: bool,
) -> dict[str, str | None] | None:
    tag = tags.get(tp.pid)
    if tag is None or envs.of(tag) is None:
        return None
    parent_tag: str | None = None
    node = by_pid.get(tp.parent_pid) if tp.parent_pid is not None and not root else None
    seen: set[int] = set()
    while node is not None and node.pid not in seen:
        seen.add(node.pid)
        parent_tag = tags.get(node.pid)
        if parent_tag is not None and envs.of(parent_tag) is not None:
            break
        parent_tag = None
        node = by_pid.get(node.parent_pid) if node.parent_pid is not None else None
    return envs.delta_of_tags(parent_tag, tag)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _which(argv0: str, plan: Plan) -> str:
    if "/" in argv0:
        return os.path.normpath(os.path.join(plan.cwd, argv0))
    return shutil.which(argv0, path=plan.env.get("PATH", os.defpath)) or argv0


def static_warning(procs: list[Process], observer: Observer) -> BuildWarning | None:
    """One sentence when the interposer could not see under static executables."""
    static = [p for p in procs if p.static]
    if not static or observer.files != "preload":
        return None
    names = sorted({os.path.basename(p.exe) for p in static})
    shown = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
    return BuildWarning(
        "static_executables",
        f"{len(static)} program(s) the interposer cannot see into ran ({shown}: static "
        "executables, or Go programs, which make their own system calls): their files and "
        "children are not in the tape; record with --trace strace to see them (or with "
        "--trace auto, which traces just those programs, where strace is installed and "
        "ptrace is allowed)",
    )


def external_files(procs: list[Process], cache: HashCache, workspace: str) -> list[ExternalFile]:
    written = {p for proc in procs for p in (*proc.writes, *proc.deleted)}
    candidates = {p for proc in procs for p in proc.reads if p.startswith("/")}
    # A program the build made or keeps in the workspace is an input (or an output), not an
    # external file: replay would report it as drifted once the checkout moves.
    inside = workspace.rstrip("/") + "/"
    candidates |= {p.exe for p in procs if p.exe.startswith("/") and not p.exe.startswith(inside)}
    out = []
    for path in sorted(candidates - written):
        found = cache.sha256(path)
        if found is not None:
            out.append(ExternalFile(path, found[0], found[1]))
    return out


def streams(run: BuildRun, scrubber: Scrubber, writer: TapeWriter) -> tuple[Streams, bytes]:
    """The streams' record in the manifest, and the scrubbed stderr stored for it."""
    captured = run.captured
    blobs: dict[str, str | None] = {}
    sizes: dict[str, list[int]] = {}
    stored: dict[str, bytes] = {}
    for name in ("stdout", "stderr"):
        data, new_sizes = scrubber.stream(
            captured.joined(name), [len(d) for _, s, d in captured.chunks if s == name]
        )
        blobs[name] = writer.add_blob(data) if data else None
        sizes[name] = new_sizes
        stored[name] = data
    chunks = []
    cursor = {"stdout": 0, "stderr": 0}
    for t, name, _ in captured.chunks:
        chunks.append(Chunk(t, name, sizes[name][cursor[name]]))
        cursor[name] += 1
    return Streams(blobs["stdout"], blobs["stderr"], chunks), stored["stderr"]


def sampling(
    run: BuildRun, procs: list[Process], rate: int, scrubber: Scrubber, writer: TapeWriter
) -> Sampling:
    """Store the Python samples, attributed to recorded processes, as one JSON blob."""
    if run.sampler == "none":
        return Sampling(notice=run.sampler_notice)
    ids = {p.pid: p.id for p in procs}
    frames: dict[tuple[str, str, int], int] = {}
    samples = []
    for seg in sorted(run.segments, key=lambda s: (s.start_us, s.pid)):
        if seg.pid not in ids:
            continue
        stack = [frames.setdefault(f, len(frames)) for f in seg.stack]
        samples.append([ids[seg.pid], seg.start_us, seg.dur_us, stack])
    blob = None
    if samples:
        doc = {"frames": [list(f) for f in frames], "samples": samples}
        text = scrubber.text(json.dumps(doc, separators=(",", ":")))
        blob = writer.add_blob(text.encode())
    return Sampling(run.sampler, rate, run.sampler_notice, blob, len(samples))


def _versions(items: list[Version], ids: dict[int, int]) -> list[Version]:
    return [
        replace(v, written_by=ids[v.written_by], replaced_by=ids[v.replaced_by])
        for v in items
        if v.written_by in ids and v.replaced_by in ids
    ]


def _intermediates(items: list[Intermediate], ids: dict[int, int]) -> list[Intermediate]:
    return [
        replace(
            i,
            written_by=sorted({ids[p] for p in i.written_by if p in ids}),
            read_by=sorted({ids[p] for p in i.read_by if p in ids}),
        )
        for i in items
    ]


def assemble(
    plan: Plan,
    observer: Observer,
    run: BuildRun,
    seen: Observation,
    git: GitState | None,
    umask: str,
    writer: TapeWriter,
    scrubber: Scrubber,
    warnings: list[BuildWarning],
    cache: HashCache,
) -> tuple[Manifest, bytes]:
    """The manifest, and the scrubbed stderr stored in it. ``cache`` remembers toolchain
    hashes and version lines between recordings (saved here)."""
    procs = processes(plan, run, observer, cache)
    exit_code, sig = split_returncode(run.returncode)
    if procs and procs[0].parent_id is None and observer.choice.mode == "strace":
        exit_code, sig = procs[0].exit_code, procs[0].signal
    if run.interrupted_by:
        status = "interrupted"
    elif exit_code == 0 and sig is None:
        status = "succeeded"
    else:
        status = "failed"
    warnings = list(warnings) + seen.warnings
    static = static_warning(procs, observer)
    if static is not None:
        warnings.append(static)
    for ev in run.events:
        if ev.kind == "invalid_event":
            warnings.append(
                BuildWarning("invalid_event", f"line {ev.data['line']}: {ev.data['reason']}")
            )
    stream_record, stderr = streams(run, scrubber, writer)
    redaction = plan.redaction
    env = plan.env
    # The duration is the monotonic clock's; process ends are the wall clock's (the
    # interposer's, in other processes), and an orphan the recorder collected after the root
    # exited ended later still. The build lasted until the last process it saw end.
    duration = max([run.duration] + [p.end_s for p in procs if p.end_s is not None])
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        buildtape_version=__version__,
        argv=plan.argv,
        cwd=str(plan.cwd),
        workspace=str(plan.workspace),
        status=status,
        exit_code=exit_code,
        signal=sig,
        started_at=_iso(run.wall0),
        ended_at=_iso(run.wall0 + duration),
        duration_s=duration,
        host=host_info(),
        git=git,
        labels=dict(plan.options.labels),
        environment=Environment(
            vars=redaction.env,
            redacted=redaction.redacted_names,
            umask=umask,
            locale=locale_settings(env),
            tz=tz_name(env),
            ulimits=ulimits(),
            redacted_digests=redaction.digests,
        ),
        tracing=Tracing(
            observer.choice.mode,
            observer.notice,
            observer.files,
            seen.changes,
            made_dirs=observer.files != "none",
        ),
        toolchain=fingerprint((p.exe for p in procs if p.exe.startswith("/")), cache),
        processes=procs,
        inputs=seen.inputs,
        listed=seen.listed,
        outputs=seen.outputs,
        external=external_files(procs, cache, str(plan.workspace)),
        streams=stream_record,
        events=run.events,
        warnings=warnings,
        sampling=sampling(run, procs, plan.options.rate, scrubber, writer),
        directories=seen.directories,
        intermediates=_intermediates(seen.intermediates, process_ids(run)),
        versions=_versions(seen.versions, process_ids(run)),
    )
    cache.save()
    return manifest, stderr
