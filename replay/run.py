"""One run of a tape's command, or of one step, in its recorded world.

The world (``replay.world``) is restored into ``<sandbox>/workspace`` with its mtimes,
intermediates go into ``<sandbox>/tmp``, and the command runs under ``record`` so the
replay has a tape of its own. With bwrap (``replay.sandbox``) the workspace appears at the
recorded path (or at ``place``, for ``--vary path``) and ``<sandbox>/tmp`` is ``/tmp``;
without namespaces it runs in ``<sandbox>/workspace`` itself, and a step that names the
recorded workspace is refused rather than run against the user's checkout.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from recorder import trust
from recorder.errors import TapeNotWritten
from recorder.model import REDACTED, FileEntry, Manifest
from recorder.tape import Tape, open_tape
from replay import changes
from replay.errors import RunError, SandboxError, WorldError
from replay.overlay import Overlay, overlay_roots, prepare_overlays, written_outside
from replay.restore import (
    make_dirs_inside,
    restore,
    restore_intermediates,
    restore_placeholders,
    set_mtimes,
)
from replay.sandbox import (
    InnerSpec,
    Isolation,
    Layout,
    cache_dir,
    run_direct,
    run_inside,
)
from replay.world import World, step_world, whole_world


@dataclass(frozen=True)
class RunStart:
    """What the banner before a run says."""

    tape: str
    step: int | None
    step_argv: list[str]
    variation: str | None
    # Where the build sees its workspace, and how it is isolated.
    place: str
    isolation: str


@dataclass
class Run:
    """One run of a tape's command (or of one step) in a sandbox."""

    exit_status: int
    expected_status: int
    expected: list[FileEntry]
    outputs: list[FileEntry]
    missing_inputs: list[str]
    # The replay's own tape, when it ran under the recorder.
    tape: Path | None
    # Where the build saw its workspace.
    place: str = ""
    isolation: str = "directory"
    world: World | None = None
    notes: list[str] = field(default_factory=list)


def step_env(m: Manifest, world: World, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` (the build's replay environment) with the step's own recorded changes."""
    env = dict(base)
    build = m.environment.vars
    for name, value in world.env.items():
        if build.get(name) != value and value != REDACTED and REDACTED not in value:
            env[name] = value
    for name in build:
        if name not in world.env:
            env.pop(name, None)
    return env


def names_workspace(m: Manifest, world: World) -> str | None:
    """The first argument of the run that names the recorded workspace, if any."""
    root = m.workspace.rstrip("/")
    for arg in world.argv:
        at = arg.find(root)
        while at >= 0:
            end = at + len(root)
            if end == len(arg) or arg[end] == "/":
                return arg
            at = arg.find(root, at + 1)
    return None


def _refuse_outside(m: Manifest, world: World) -> None:
    arg = names_workspace(m, world)
    what = "the build" if world.step is None else f"step {world.step.id}"
    if world.cwd_outside():
        raise RunError(
            f"{what} ran in {trust.printable(world.cwd)}, outside the workspace; only a "
            "namespace sandbox (the host read-only) can run it there: install bubblewrap (bwrap)"
        )
    if arg is not None:
        raise RunError(
            f"{what} names the recorded workspace {m.workspace} ({arg[:120]}); without "
            "namespaces it would run against that directory, not the sandbox copy: refusing. "
            "Install bubblewrap (bwrap) or allow user namespaces to replay it at its path"
        )
    if world.intermediates:
        raise RunError(
            f"{what} reads {world.intermediates[0].path}, written by an earlier step; it can "
            "only be put back inside a namespace sandbox: install bubblewrap (bwrap)"
        )


def _refuse_embedded(m: Manifest, world: World, workspace: Path) -> None:
    """Refuse a run whose restored text files name the recorded workspace (CMake's build
    files, a configured Makefile): without namespaces they would write into it."""
    needle = m.workspace.rstrip("/").encode() + b"/"
    for entry in world.files:
        if entry.link is not None or entry.size > 8 * 1024 * 1024:
            continue
        try:
            data = (workspace / entry.path).read_bytes()
        except OSError:
            continue
        if needle in data and b"\0" not in data[:8192]:  # text: build files, not objects
            raise RunError(
                f"{entry.path} names the recorded workspace {m.workspace}; without namespaces "
                "the run would read and write there, not in the sandbox copy: refusing. "
                "Install bubblewrap (bwrap) or allow user namespaces to replay it at its path"
            )


def _blind_spots(m: Manifest, world: World) -> list[str]:
    """A note when listed-only files were restored as placeholders although the recorder
    may not have seen every read (static executables, or files no process wrote: Go makes
    its system calls without libc, so the interposer sees neither)."""
    restored = [*world.placeholders, *world.rest_placeholders]
    placeholders = len(restored)
    if not placeholders:
        return []
    if m.tracing.files == "strace":
        # strace saw every open, a static program's too: a placeholder matters only where a
        # process read it, which happens when a static program changed a file whose old
        # content only the interposer could have kept (go build over its last output).
        read = {r for p in m.processes for r in p.reads}
        kept = {e.path for e in m.inputs if e.blob is not None}
        hit = sorted(e.path for e in restored if e.path in read and e.path not in kept)
        if not hit:
            return []
        return [
            f"{', '.join(hit[:3])}{' …' if len(hit) > 3 else ''}: read by the build, but the "
            "tape holds no content of it (a static program changed it, and the recorder "
            "keeps a file's old content only where the interposer saw the change), so it "
            "was restored as a placeholder of its size, which the build may read as "
            "content; record with --snapshot full to keep every file's pre-build content"
        ]
    written = {w for p in m.processes for w in p.writes}
    # A symbolic link no process was seen making (in a tape from before the tracers saw
    # symlink(2), or made by a program neither could see into) says nothing about missed
    # reads: nobody reads a link as content.
    unseen = [e.path for e in m.outputs if e.path not in written and e.link is None]
    static = sorted({p.exe for p in m.processes if p.static})
    if not (static or unseen):
        return []
    why = (
        f"static executables ran ({', '.join(static[:3])})"
        if static
        else (f"no recorded process wrote {', '.join(unseen[:3])}")
    )
    return [
        f"{placeholders} files were restored as placeholders of their size (the tape lists "
        f"them without content, or the step did not open them), but {why}: the recorder did "
        "not see every read, and "
        "a placeholder read as content breaks the build; record with --trace strace"
    ]


def _hostname(name: str) -> str | None:
    """The recorded hostname when the kernel would take it (at most 64 bytes, printable)."""
    ok = 0 < len(name.encode()) <= 64 and name.isprintable() and "/" not in name
    return name if ok else None


def prepare(tape: Tape, world: World, sandbox: Path, with_rest: bool = False) -> list[str]:
    """Restore ``world`` under ``sandbox``; the paths whose content the tape does not hold.
    ``with_rest``: also the rest of the workspace as the build found it (``replay --step``)."""
    workspace = sandbox / "workspace"
    files, placeholders, dirs = world.files, world.placeholders, world.dirs
    if with_rest:
        files, placeholders = [*files, *world.rest], [*placeholders, *world.rest_placeholders]
        dirs = [*dirs, *world.rest_dirs]
    restored = restore(tape, files, workspace)
    restore_placeholders(placeholders, workspace)
    root = workspace.resolve()
    inside = [] if world.cwd_outside() else [world.cwd]
    for d in [*world.needed_dirs, *(d.path for d in dirs), *inside]:
        make_dirs_inside(root, d)  # each component must resolve inside the sandbox
    set_mtimes(workspace, [*files, *placeholders], dirs)
    # Content the tape lacks matters only for what the step opened.
    rest = {e.path for e in world.rest}
    return [p for p in restored.missing if p not in rest] + world.unavailable


def _host_writes(m: Manifest) -> list[str]:
    """What the recording wrote outside its workspace, /tmp and the kernel's files."""
    inside = m.workspace.rstrip("/") + "/"
    skip = ("/tmp/", "/dev/", "/proc/", "/sys/", inside)
    written = {w for p in m.processes for w in p.writes if w.startswith("/")}
    return sorted(trust.printable(w) for w in written if not w.startswith(skip))


def _outside_note(paths: list[str]) -> list[str]:
    if not paths:
        return []
    more = f" and {len(paths) - 5} more" if len(paths) > 5 else ""
    return [
        f"the build wrote outside the workspace: {', '.join(map(trust.printable, paths[:5]))}"
        f"{more}; into the "
        "sandbox only (a copy-on-write overlay), the host's files are unchanged"
    ]


def _written(world: World, got: list[FileEntry]) -> list[FileEntry]:
    """What the run wrote, as the recorder would list its outputs: a file rewritten to the
    content it started with was only touched, unless the recording expects it (a step may
    rewrite a file it started with to the same content; a step that did nothing must not
    pass, so it counts only because the run did write it)."""
    started = {e.path: e.sha256 for e in world.files}
    wanted = {e.path for e in world.expected}
    return [
        e
        for e in got
        if not (e.change == "modified" and e.sha256 == started.get(e.path) and e.path not in wanted)
    ]


def _run_recorded(
    isolation: Isolation,
    layout: Layout | None,
    world: World,
    env: Mapping[str, str],
    where: str,
    cwd: str,
    umask: str,
    trace: str,
    out: Path,
    build_stdout: int,
    notify: Callable[[str], None],
) -> tuple[int, Path, list[FileEntry]]:
    """Run under ``buildtape record`` inside the sandbox (a second interpreter): for when
    the replay's own tape is wanted (``-o``, or the diff engine's account)."""
    spec = InnerSpec(
        argv=world.argv,
        workspace=where,
        cwd=cwd,
        env=dict(env),
        umask=umask,
        trace=trace,
        tape=str(out.resolve() / "replay.tape"),
        result=str(out.resolve() / "result.json"),
    )
    inner = run_inside(isolation, layout, spec, out, build_stdout)
    for note in inner.notes:
        notify(note)
    if inner.error is not None or inner.exit_status is None:
        raise RunError(f"the replay could not run: {inner.error}")
    tape_path = Path(spec.tape)
    with open_tape(tape_path) as replayed:
        outputs = list(replayed.manifest.outputs)
        if world.step is not None:
            # A step may rewrite a file it started with to the same content: the replay's
            # tape lists it among the inputs only, and that is what it holds after the run.
            # Only when the replay did write it: a step that did nothing must not pass.
            changed = {e.path for e in outputs}
            wanted = {e.path for e in world.expected}
            written = {w for p in replayed.manifest.processes for w in p.writes}
            outputs += [
                e
                for e in replayed.manifest.inputs
                if e.path in wanted and e.path in written and e.path not in changed
            ]
    return inner.exit_status, tape_path, outputs


def _move_into_place(src: Path, dst: Path) -> Path:
    """The replay's tape at ``dst``, whole or not at all. From another file system a move
    is a copy, which a full disk would leave half done under the final name: copy beside
    ``dst`` under a temporary name, then rename."""
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".partial")
    except OSError as exc:
        raise TapeNotWritten(
            f"could not write the replay's tape {dst}: {exc.strerror or exc}; choose another "
            "place with -o"
        ) from exc
    os.close(fd)
    try:
        shutil.move(src, tmp)
        os.replace(tmp, dst)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise TapeNotWritten(
            f"could not write the replay's tape {dst}: {exc.strerror or exc}; free some space "
            "or choose another place with -o"
        ) from exc
    return dst


def run_in_sandbox(
    tape: Tape,
    sandbox: Path,
    env: Mapping[str, str],
    step: int | None,
    umask: str,
    trace: str = "auto",
    output: Path | None = None,
    notify: Callable[[str], None] = lambda _: None,
    isolation: Isolation | None = None,
    place: str | None = None,
    started: Callable[[RunStart], None] = lambda _: None,
    variation: str | None = None,
    tape_name: str = "",
    build_stdout: int = 1,
    traced: bool = False,
) -> Run:
    """Restore the world of the command (or step) under ``sandbox`` and run it there.

    By default the build runs alone in the sandbox and its outputs are read from outside;
    ``traced`` (or ``output``) runs it under the recorder, for the replay's own tape.
    """
    traced = traced or output is not None
    m = tape.manifest
    isolation = isolation or Isolation("directory", "no isolation was chosen")
    try:
        world = whole_world(m) if step is None else step_world(m, step)
    except WorldError as exc:
        raise RunError(str(exc)) from exc
    if step is not None:
        env = step_env(m, world, env)
    if isolation.kind != "bwrap":
        _refuse_outside(m, world)
        reached = _host_writes(m)
        if reached:
            more = f" and {len(reached) - 5} more" if len(reached) > 5 else ""
            notify(
                "without namespaces nothing keeps the build's writes outside the workspace "
                f"off this host; in the recording it wrote {', '.join(reached[:5])}{more}"
            )
    elif world.cwd_outside() and not Path(world.cwd).is_dir():
        raise RunError(
            f"step {world.step.id if world.step else '?'} ran in "
            f"{trust.printable(world.cwd)}, outside the workspace, which does not exist here "
            "(the sandbox shows the rest of this host read-only, it does not restore it)"
        )
    missing = prepare(tape, world, sandbox, with_rest=True)
    if isolation.kind != "bwrap":
        _refuse_embedded(m, world, sandbox / "workspace")
    workspace = sandbox / "workspace"
    where = (place or m.workspace) if isolation.kind == "bwrap" else str(workspace.resolve())
    started(RunStart(tape_name, step, world.argv, variation, where, isolation.kind))
    out = sandbox / "out"
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    notes += _blind_spots(m, world)
    notes += [
        f"not compared: {trust.printable(path)}: step {later} changed it after this step, "
        "and the tape holds only its final content, not what this step wrote"
        for path, later in world.rewritten_later
    ]
    notes += [
        f"{trust.printable(path)} was restored as the build left it: an earlier step wrote "
        "it and it was changed again afterwards, and the tape holds only its final content, "
        "not what this step started with"
        for path in world.stale
    ]
    notes += [
        f"{trust.printable(path)} was restored as the build left it: no recorded process "
        "wrote it (a hard or symbolic link, or a program the recorder did not see)"
        for path in world.unseen
    ]
    layout = None
    cwd = posixpath.normpath(posixpath.join(where, world.cwd))
    overlays: list[Overlay] = []
    if isolation.kind == "bwrap":
        written = {w for p in m.processes for w in p.writes if w.startswith("/")}
        overlays = prepare_overlays(overlay_roots(written, [str(sandbox.resolve())]), sandbox)
        tmp = sandbox / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        unplaced = restore_intermediates(tape, world.intermediates, tmp)
        for o in overlays:  # an intermediate elsewhere (TMPDIR=/var/tmp) goes in its overlay
            left = [i for i in world.intermediates if i.path in unplaced]
            unplaced = restore_intermediates(tape, left, o.upper, under=o.lower)
        notes += [
            f"intermediate {trust.printable(p)} could not be put back (outside /tmp and the "
            "directories the recording wrote into, or not stored)"
            for p in unplaced
        ]
        layout = Layout(
            workspace=workspace.resolve(),
            place=where,
            tmp=(sandbox / "tmp").resolve(),
            out=out.resolve(),
            cwd=cwd,
            hostname=_hostname(m.host.hostname),
            cache=cache_dir(env),
            overlays=tuple(overlays),
        )
    try:
        if traced:
            exit_status, tape_path, outputs = _run_recorded(
                isolation, layout, world, env, where, cwd, umask, trace, out, build_stdout,
                notify,
            )  # fmt: skip
        else:
            start = changes.before(workspace)
            direct = run_direct(isolation, layout, world.argv, env, cwd, umask, build_stdout)
            exit_status, tape_path = direct.exit_status, None
            outputs = _written(world, changes.changes(workspace, start))
            for note in direct.notes:
                notify(note)
    except SandboxError as exc:
        raise RunError(str(exc)) from exc
    notes += _outside_note(written_outside(overlays))
    if output is not None and tape_path is not None:
        tape_path = _move_into_place(tape_path, output)
    return Run(
        exit_status, world.expected_status, world.expected, outputs, missing, tape_path,
        where, isolation.kind, world, notes,
    )  # fmt: skip
