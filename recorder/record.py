"""``record``: run a build command and write everything it did into one tape.

A recording is five phases, each in a module named for it, each handing the next one
typed value: ``prepare`` (the plan: command, environment, workspace, tape path),
``workspace.survey`` (the workspace by stat, nothing read), ``build`` (the build run
under observation), ``observe`` (the content of what it touched) and ``assemble`` (the
manifest). Then the tape is committed, atomically.
"""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from recorder.background import Background
from recorder.build import BuildRun, choose_observer, run_build
from recorder.container import TapeWriter
from recorder.errors import (
    CommandNotExecutable,
    CommandNotFound,
    RecordError,
    TapeError,
    TapeWriteFailed,
)
from recorder.hashcache import HashCache
from recorder.host import current_umask
from recorder.options import RecordOptions
from recorder.prepare import EVENTS_VAR, Plan, prepare, relative
from recorder.workspace import Survey, git_status, rescan, scan, survey

if TYPE_CHECKING:
    from recorder.model import BuildWarning, Manifest
    from recorder.observe import Observation

__all__ = [
    "EVENTS_VAR",
    "CommandNotExecutable",
    "CommandNotFound",
    "RecordError",
    "RecordOptions",
    "RecordResult",
    "TapeWriteFailed",
    "record",
]


@dataclass(frozen=True)
class RecordResult:
    tape: Path
    manifest: Manifest
    # What a transparent wrapper exits with: the build's code, or 128+N for signal N.
    exit_status: int
    # The build's stderr as stored in the tape (secrets scrubbed), for the history's
    # error lines without reading the tape back.
    stderr: bytes = b""


_DIGEST_KEYS = frozenset({"sha256", "stdout_blob", "stderr_blob", "redacted_digests"})


def record(
    options: RecordOptions,
    notify: Callable[[str], None] = lambda _: None,
    while_building: Callable[[], object] | None = None,
    while_syncing: Callable[[Path, Manifest, bytes], object] | None = None,
) -> RecordResult:
    """Run ``options.argv``, pass its output through, and write its tape.

    ``notify`` receives one-line notices (tracing fallback, secrets found in outputs)
    at the moment they apply; the caller decides how to show them. ``while_building``
    runs in a thread once the build has started, for the caller's own preparations
    (imports for what it does with the tape), so they are not added to the build's time.
    ``while_syncing`` gets the tape's final path, its manifest and the stored stderr in a
    thread while the tape is synced to disk (the history index is written then); the tape
    is under its final name once ``record`` returns, and may not be yet while it runs.
    """
    # Nothing a recording makes (a record per process, a path per file event) is cyclic
    # garbage, yet the collector walked it all, again and again, as it grew: 187 ms of a
    # gzip ./configure recording (3,857 processes) and 56 ms of Lua's went to collections.
    # It is off while the tape is made, and back on (if it was) once it is written.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _record(options, notify, while_building, while_syncing)
    finally:
        if enabled:
            gc.enable()


def _record(
    options: RecordOptions,
    notify: Callable[[str], None],
    while_building: Callable[[], object] | None,
    while_syncing: Callable[[Path, Manifest, bytes], object] | None,
) -> RecordResult:
    plan = prepare(options)
    # Building the interposer (cached), probing strace and asking git wait on other
    # programs: let them overlap the survey.
    observing = Background(lambda: choose_observer(plan), "probe")
    git_later = Background(lambda: git_status(plan.workspace, plan.excludes), "git")
    scrubber = plan.redaction.scrubber()
    warnings: list[BuildWarning] = []
    writer = TapeWriter(plan.tape_path, level=options.compression_level)
    excludes = plan.excludes + _own(plan, writer)

    def store(kind: str, rel: str, data: bytes, sha256: str) -> str | None:
        from recorder.model import BuildWarning

        if scrubber.found_in(data):
            msg = f"a secret value appears in {kind} file {rel}; its content was not stored"
            warnings.append(BuildWarning(f"secret_in_{kind}", msg, rel))
            notify(msg)
            return None
        return writer.add_blob(data, sha256)

    build_status: int | None = None

    caches: list[HashCache] = []

    def meanwhile() -> None:
        _import_the_rest()
        # buildtape's cache, never the build's XDG_CACHE_HOME; a JSON file of thousands of
        # entries, parsed while the build runs rather than after it.
        caches.append(HashCache.for_env(os.environ))
        if while_building is not None:
            while_building()

    # Removed in the background once the manifest is assembled, while the tape is written
    # and synced (a build's saved files and logs took ~45 ms to remove on Lua).
    workdir = tempfile.TemporaryDirectory(prefix="buildtape-")
    removing: Background[None] | None = None
    try:
        tmp = workdir.name
        umask = current_umask()
        plan = replace(plan, excludes=excludes)
        before = survey(plan.workspace, excludes)  # while the interposer is looked up
        observer = observing.result()
        full = options.snapshot == "full" or observer.files == "none"
        if full:
            max_store = options.max_store_bytes
            stored = scan(plan.workspace, excludes, _kind(store, "input"), max_store)
            before = Survey(stored, before.dirs)
            writer.flush()  # the inputs compress while the build runs
        status = git_later.result()
        if observer.notice:
            notify(observer.notice)
        run = run_build(plan, observer, Path(tmp), meanwhile)
        _import_the_rest()  # done already, unless the build was quicker
        from recorder.assemble import assemble, signum, split_returncode
        from recorder.model import GitState, Manifest
        from recorder.observe import observe

        git = None if status is None else GitState(*status)
        code, killed_by = split_returncode(run.returncode)
        build_status = code if code is not None else 128 + signum(killed_by)
        if full:
            seen = _full_observation(plan, before, run, store)
        else:
            seen = observe(plan, before, run, store)
        writer.flush()  # the outputs compress while the manifest is put together
        manifest, stderr = assemble(
            plan, observer, run, seen, git, umask, writer, scrubber, warnings,
            caches[0] if caches else HashCache.for_env(os.environ),
        )  # fmt: skip
        removing = Background(workdir.cleanup, "cleanup")
        for warning in manifest.warnings:
            if warning.kind == "static_executables":
                notify(warning.message)
        raw = manifest.to_dict()
        # The listed rows are searched as one text, not walked string by string.
        listed = raw.pop("listed", None)
        scrubbed = scrubber.tree(raw, keep=_DIGEST_KEYS)
        if listed is not None:
            rows = scrubber.rows(listed)
            if rows is not listed and scrubbed is raw:
                scrubbed = dict(raw)
            raw["listed"] = listed
            scrubbed["listed"] = rows
        if scrubbed is not raw:  # a secret was scrubbed: the caller gets the tape's text
            manifest = Manifest.from_dict(scrubbed)
        final = manifest
        writer.commit(
            scrubbed,
            None if while_syncing is None else lambda: while_syncing(writer.path, final, stderr),
        )
    except TapeError as exc:
        writer.abort()
        raise TapeWriteFailed(str(exc), build_status) from exc
    except BaseException:
        writer.abort()
        raise
    finally:
        if removing is None:
            workdir.cleanup()
        else:
            removing.result()
    _remember(writer, notify)
    exit_code, sig = manifest.exit_code, manifest.signal
    exit_status = exit_code if exit_code is not None else 128 + signum(sig)
    return RecordResult(plan.tape_path, manifest, exit_status, stderr)


def _import_the_rest() -> None:
    """What only the end of a recording needs, imported while the build runs rather than
    before it starts: on a short build, these imports were most of the time before it."""
    import recorder.assemble
    import recorder.observe
    import recorder.trust  # noqa: F401


def _remember(writer: TapeWriter, notify: Callable[[str], None]) -> None:
    """Note the tape just committed as recorded here by this user, so that replaying it
    needs no confirmation (``recorder.trust.recorded_here``).

    Only a recording does this, with the digest of the manifest it wrote itself: a tape
    written any other way (crafted through ``TapeWriter``, copied from elsewhere) is never
    noted, and nothing in a tape decides whether it is.
    """
    if writer.manifest_sha256 is None:
        return
    from recorder.trust import recorded_list, remember_recorded

    try:
        remember_recorded(writer.manifest_sha256, recorded_list(os.environ))
    except OSError as exc:
        notify(f"could not note the tape as recorded here ({exc}); replaying it will ask")


def _own(plan: Plan, writer: TapeWriter) -> tuple[str, ...]:
    rel = relative(str(writer.temporary_path), str(plan.workspace))
    return () if rel.startswith("/") else (rel,)


Store = Callable[[str, str, bytes, str], "str | None"]


def _kind(store: Store, kind: str) -> Callable[[str, bytes, str], str | None]:
    return lambda rel, data, sha256: store(kind, rel, data, sha256)


def _full_observation(plan: Plan, before: Survey, run: BuildRun, store: Store) -> Observation:
    """``--snapshot full``: every file's content was stored before the build."""
    from recorder.model import DirEntry
    from recorder.observe import Observation

    max_store = plan.options.max_store_bytes
    changes = rescan(plan.workspace, plan.excludes, before.files, _kind(store, "output"), max_store)
    after = survey(plan.workspace, plan.excludes)
    dirs = [DirEntry(d.path, d.mode, d.mtime_ns) for d in before.dirs.values()]
    dirs += [
        DirEntry(d.path, d.mode, d.mtime_ns, "created")
        for rel, d in after.dirs.items()
        if rel not in before.dirs
    ]
    return Observation(
        inputs=[s.entry() for s in before.files.values()],
        outputs=changes.entries(),
        directories=sorted(dirs, key=lambda d: (d.path, d.change or "")),
        intermediates=[],
        stored_inputs=sum(1 for s in before.files.values() if s.blob),
    )
