"""The recording as typed data: what a tape's manifest holds, parsed and validated.

``Manifest.from_dict`` is the only way untrusted JSON becomes a recording, so the
checks a hostile tape must pass (relative paths, no ``..``, links that stay inside
the workspace, the right types) live here once.
"""

from __future__ import annotations

import itertools
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from recorder.errors import TapeError
from recorder.trust import check_manifest, printable

T = TypeVar("T")

STATUSES = ("succeeded", "failed", "interrupted")
CHANGES = ("created", "modified", "deleted")


class _Fields:
    """Typed access to one JSON object; every mismatch is a ``TapeError``."""

    def __init__(self, raw: object, where: str) -> None:
        if not isinstance(raw, dict):
            raise TapeError(f"tape manifest: {where} is not an object")
        self.raw: dict[str, Any] = raw
        self.where = where

    def _get(self, key: str, types: tuple[type, ...], optional: bool) -> Any:
        value = self.raw.get(key)
        if value is None and optional:
            return None
        if isinstance(value, bool) and bool not in types:
            value = None
        if not isinstance(value, types):
            raise TapeError(f"tape manifest: {self.where}.{key} is missing or of the wrong type")
        return value

    def text(self, key: str) -> str:
        return str(self._get(key, (str,), False))

    def opt_text(self, key: str) -> str | None:
        v = self._get(key, (str,), True)
        return None if v is None else str(v)

    def integer(self, key: str) -> int:
        return int(self._get(key, (int,), False))

    def opt_integer(self, key: str) -> int | None:
        v = self._get(key, (int,), True)
        return None if v is None else int(v)

    def number(self, key: str) -> float:
        return float(self._get(key, (int, float), False))

    def opt_number(self, key: str) -> float | None:
        v = self._get(key, (int, float), True)
        return None if v is None else float(v)

    def obj(self, key: str) -> _Fields:
        return _Fields(self.raw.get(key), f"{self.where}.{key}")

    def mapping(self, key: str) -> dict[str, Any]:
        return dict(self._get(key, (dict,), False))

    def text_map(self, key: str) -> dict[str, str]:
        d = self.mapping(key)
        if not all(isinstance(v, str) for v in d.values()):
            raise TapeError(f"tape manifest: {self.where}.{key} must map names to strings")
        return {str(k): str(v) for k, v in d.items()}

    def items(self, key: str, parse: Callable[[object, str], T]) -> list[T]:
        items = self._get(key, (list,), False)
        return [parse(item, f"{self.where}.{key}[{i}]") for i, item in enumerate(items)]

    def texts(self, key: str) -> list[str]:
        return self.items(key, _as_str)


def _as_str(raw: object, where: str) -> str:
    if not isinstance(raw, str):
        raise TapeError(f"tape manifest: {where} is not a string")
    return raw


def check_relative_path(path: str, where: str) -> str:
    """Refuse absolute paths, ``..`` components and odd spellings in workspace paths."""
    if not path or "\0" in path or path.startswith("/") or "\\" in path:
        raise TapeError(f"tape manifest: {where} has an unsafe path {path!r}; refusing the tape")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise TapeError(f"tape manifest: {where} has an unsafe path {path!r}; refusing the tape")
    return path


def link_stays_inside(path: str, target: str) -> bool:
    """Whether a symlink at ``path`` (workspace-relative) resolves inside the workspace."""
    if not target or "\0" in target or target.startswith("/"):
        return False
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    return not (resolved == ".." or resolved.startswith("../"))


def check_link_target(path: str, target: str, where: str) -> str:
    """A symlink stored in a tape must resolve inside the workspace it is restored into."""
    if not target or "\0" in target or target.startswith("/"):
        raise TapeError(
            f"tape manifest: {where}: link {path!r} -> {target!r} escapes the workspace; "
            "refusing the tape"
        )
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if resolved == ".." or resolved.startswith("../"):
        raise TapeError(
            f"tape manifest: {where}: link {path!r} -> {target!r} escapes the workspace; "
            "refusing the tape"
        )
    return target


@dataclass(frozen=True)
class Host:
    os: str
    kernel: str
    arch: str
    cpus: int
    memory_bytes: int
    hostname: str
    python: str

    @classmethod
    def from_dict(cls, raw: object, where: str) -> Host:
        f = _Fields(raw, where)
        return cls(
            f.text("os"),
            f.text("kernel"),
            f.text("arch"),
            f.integer("cpus"),
            f.integer("memory_bytes"),
            f.text("hostname"),
            f.text("python"),
        )


@dataclass(frozen=True)
class GitState:
    commit: str | None
    branch: str | None
    dirty: list[str]

    @classmethod
    def from_dict(cls, raw: object, where: str) -> GitState:
        f = _Fields(raw, where)
        return cls(f.opt_text("commit"), f.opt_text("branch"), f.texts("dirty"))


@dataclass(frozen=True)
class Environment:
    """The build's environment; redacted variables hold ``REDACTED``."""

    vars: dict[str, str]
    redacted: list[str]
    umask: str
    locale: dict[str, str]
    tz: str
    ulimits: dict[str, str]
    # name -> slow salted digest of a redacted value (recorder.secrets.value_digest).
    redacted_digests: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: object, where: str) -> Environment:
        f = _Fields(raw, where)
        digests = f.text_map("redacted_digests") if "redacted_digests" in f.raw else {}
        return cls(
            f.text_map("vars"),
            f.texts("redacted"),
            f.text("umask"),
            f.text_map("locale"),
            f.text("tz"),
            f.text_map("ulimits"),
            digests,
        )


REDACTED = "[REDACTED]"


@dataclass
class Process:
    """One process of the build; times are seconds since the build started."""

    id: int
    pid: int
    parent_id: int | None
    argv: list[str]
    exe: str
    cwd: str
    start_s: float
    end_s: float | None
    exit_code: int | None
    signal: str | None
    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    # Format 1.1. The executable that actually ran, by content.
    exe_sha256: str | None = None
    # The environment as a delta from the parent's (the root's: from the manifest's
    # environment); a None value is a variable the process unset. None: not observed.
    env: dict[str, str | None] | None = None
    # The interposer could not see inside it (an ELF without an interpreter, or a Go
    # program, which makes its own system calls): neither its files nor its children.
    static: bool = False
    # Format 1.4. The directories it made (mkdir), when ``Tracing.made_dirs`` says they
    # were recorded; a step replayed alone is left to make these itself.
    made_dirs: list[str] = field(default_factory=list)
    # Format 1.4. A fork that never exec'd (a subshell): it ran its parent's program, whose
    # argv and exe it carries, so it is no command to run again on its own.
    forked: bool = False

    @property
    def duration_s(self) -> float | None:
        return None if self.end_s is None else max(0.0, self.end_s - self.start_s)

    @property
    def failed(self) -> bool:
        return (self.exit_code not in (0, None)) or self.signal is not None

    def to_dict(self, path_id: Callable[[str], int]) -> dict[str, Any]:
        return {
            "id": self.id,
            "pid": self.pid,
            "parent_id": self.parent_id,
            "argv": self.argv,
            "exe": self.exe,
            "cwd": self.cwd,
            "start_s": round(self.start_s, 6),
            "end_s": None if self.end_s is None else round(self.end_s, 6),
            "exit_code": self.exit_code,
            "signal": self.signal,
            "reads": [path_id(p) for p in self.reads],
            "writes": [path_id(p) for p in self.writes],
            "deleted": [path_id(p) for p in self.deleted],
            **({"exe_sha256": self.exe_sha256} if self.exe_sha256 is not None else {}),
            **({"env": self.env} if self.env is not None else {}),
            **({"static": True} if self.static else {}),
            **({"made_dirs": [path_id(p) for p in self.made_dirs]} if self.made_dirs else {}),
            **({"forked": True} if self.forked else {}),
        }

    @classmethod
    def from_dict(cls, raw: object, where: str, paths: list[str]) -> Process:
        f = _Fields(raw, where)

        def resolve(key: str) -> list[str]:
            out = []
            for i in f.items(key, lambda x, w: x):
                if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(paths):
                    raise TapeError(f"tape manifest: {where}.{key} refers to no recorded path")
                out.append(paths[i])
            return out

        return cls(
            id=f.integer("id"),
            pid=f.integer("pid"),
            parent_id=f.opt_integer("parent_id"),
            argv=f.texts("argv"),
            exe=f.text("exe"),
            cwd=f.text("cwd"),
            start_s=f.number("start_s"),
            end_s=f.opt_number("end_s"),
            exit_code=f.opt_integer("exit_code"),
            signal=f.opt_text("signal"),
            reads=resolve("reads"),
            writes=resolve("writes"),
            deleted=resolve("deleted"),
            exe_sha256=f.opt_text("exe_sha256"),
            env=_env_delta(f.raw.get("env"), f"{where}.env"),
            static=f.raw.get("static") is True,
            made_dirs=resolve("made_dirs") if "made_dirs" in f.raw else [],
            forked=f.raw.get("forked") is True,
        )


def _env_delta(raw: object, where: str) -> dict[str, str | None] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in raw.items()
    ):
        raise TapeError(f"tape manifest: {where} must map names to strings or null")
    return dict(raw)


def _plainly_relative(path: str) -> bool:
    """The common shape of a workspace path, tested at once (``check_relative_path`` gives
    the error for anything else)."""
    parts = path.split("/")
    return (
        bool(path)
        and path[0] != "/"
        and "\0" not in path
        and "\\" not in path
        and "" not in parts
        and ".." not in parts
        and "." not in parts
    )


@dataclass(frozen=True)
class FileEntry:
    """A workspace file. ``blob`` names its stored content, ``None`` when only hashed."""

    path: str
    mode: int
    size: int
    sha256: str | None
    blob: str | None = None
    link: str | None = None
    change: str | None = None
    # Format 1.1: st_mtime_ns as recorded (None in 1.0 tapes). An input with neither
    # sha256 nor blob is listed only: the build never touched it.
    mtime_ns: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "path": self.path,
            "mode": self.mode,
            "size": self.size,
            "sha256": self.sha256,
        }
        if self.mtime_ns is not None:
            d["mtime_ns"] = self.mtime_ns
        if self.blob is not None:
            # A stored file's blob is named by its sha256; saying "stored" saves repeating it.
            d["stored"] = True
        if self.link is not None:
            d["link"] = self.link
        if self.change is not None:
            d["change"] = self.change
        return d

    @classmethod
    def from_dict(cls, raw: object, where: str) -> FileEntry:
        # Tapes hold tens of thousands of these: check the common shape directly, and fall
        # back to the general accessor (for its error messages) when anything is off.
        if isinstance(raw, dict):
            path, mode, size = raw.get("path"), raw.get("mode"), raw.get("size")
            sha, link, change = raw.get("sha256"), raw.get("link"), raw.get("change")
            if (
                type(path) is str
                and type(mode) is int
                and type(size) is int
                and (sha is None or type(sha) is str)
                and link is None
                and (change is None or change in CHANGES)
                and _plainly_relative(path)
            ):
                stored = raw.get("stored") is True
                mtime = raw.get("mtime_ns")
                if not (stored and sha is None) and (mtime is None or type(mtime) is int):
                    blob = sha if stored else None
                    return cls(path, mode, size, sha, blob, None, change, mtime)
        f = _Fields(raw, where)
        path = check_relative_path(f.text("path"), where)
        link = f.opt_text("link")
        if link is not None:
            check_link_target(path, link, where)
        change = f.opt_text("change")
        if change is not None and change not in CHANGES:
            raise TapeError(f"tape manifest: {where}.change is {change!r}")
        sha = f.opt_text("sha256")
        stored = f.raw.get("stored") is True
        if stored and sha is None:
            raise TapeError(f"tape manifest: {where} is stored but has no sha256")
        mode, size = f.integer("mode"), f.integer("size")
        blob = sha if stored else None
        return cls(path, mode, size, sha, blob, link, change, f.opt_integer("mtime_ns"))

    @classmethod
    def from_row(cls, raw: object, where: str) -> FileEntry:
        """A listed-only file (format 1.3): ``[path, mode, size, mtime_ns]``, with the link
        target as a fifth item for a symlink."""
        # A list as read from JSON; a tuple when a recording reads back its scrubbed rows.
        if isinstance(raw, (list, tuple)) and len(raw) == 4:
            path, mode, size, mtime = raw
            if (
                type(path) is str
                and type(mode) is int
                and type(size) is int
                and type(mtime) is int
                and _plainly_relative(path)
            ):
                return cls(path, mode, size, None, None, None, None, mtime)
        if not isinstance(raw, (list, tuple)) or len(raw) not in (4, 5):
            raise TapeError(f"tape manifest: {where} is not a [path, mode, size, mtime_ns] row")
        keys = ("path", "mode", "size", "mtime_ns", "link")
        entry = cls.from_dict(dict(zip(keys, raw, strict=False)), where)
        if entry.mtime_ns is None:
            raise TapeError(f"tape manifest: {where}.mtime_ns is not an integer")
        return entry


# A workspace file nobody touched, as a manifest lists it (format 1.3): path, mode, size,
# mtime_ns, and a symlink's target. A row, not an object: a big workspace has 20,000 of
# them, and each costs a fraction of a FileEntry to build, scrub and encode.
ListedRow = tuple[str, int, int, int] | tuple[str, int, int, int, str]


@dataclass(frozen=True)
class DirEntry:
    """A workspace directory (format 1.1): before the build, or created by it."""

    path: str
    mode: int
    mtime_ns: int
    change: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "mode": self.mode, "mtime_ns": self.mtime_ns}
        if self.change is not None:
            d["change"] = self.change
        return d

    @classmethod
    def from_dict(cls, raw: object, where: str) -> DirEntry:
        f = _Fields(raw, where)
        change = f.opt_text("change")
        if change is not None and change not in CHANGES:
            raise TapeError(f"tape manifest: {where}.change is {change!r}")
        path = check_relative_path(f.text("path"), where)
        return cls(path, f.integer("mode"), f.integer("mtime_ns"), change)


@dataclass(frozen=True)
class Intermediate:
    """A file outside the workspace that one step wrote and another read (format 1.1).

    gcc's ``/tmp/cc*.s`` between ``cc1`` and ``as``: captured when it was closed or just
    before the build deleted it, so a single step can be replayed later.
    """

    path: str
    mode: int
    size: int
    sha256: str
    blob: str | None
    written_by: list[int]
    read_by: list[int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "mode": self.mode,
            "size": self.size,
            "sha256": self.sha256,
            "stored": self.blob is not None,
            "written_by": self.written_by,
            "read_by": self.read_by,
        }

    @classmethod
    def from_dict(cls, raw: object, where: str) -> Intermediate:
        f = _Fields(raw, where)
        path = f.text("path")
        if not path.startswith("/") or "\0" in path or ".." in path.split("/"):
            raise TapeError(
                f"tape manifest: {where} has an unsafe path {path!r}; refusing the tape"
            )
        sha = f.text("sha256")
        ints = lambda x, w: x if type(x) is int else _bad(w)  # noqa: E731
        return cls(
            path,
            f.integer("mode"),
            f.integer("size"),
            sha,
            sha if f.raw.get("stored") is True else None,
            f.items("written_by", ints),
            f.items("read_by", ints),
        )


def _bad(where: str) -> int:
    raise TapeError(f"tape manifest: {where} is not a process id")


@dataclass(frozen=True)
class Version:
    """A workspace file as one step left it, when a later step replaced it (format 1.2).

    ``ar`` writes ``libbz2.a`` and ``ranlib`` rewrites it: the outputs hold the final
    archive, this the one ``ar`` made, so replaying the ``ar`` step alone can be checked
    against what that step produced.
    """

    path: str
    mode: int
    size: int
    sha256: str
    blob: str | None
    written_by: int
    replaced_by: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "mode": self.mode,
            "size": self.size,
            "sha256": self.sha256,
            "stored": self.blob is not None,
            "written_by": self.written_by,
            "replaced_by": self.replaced_by,
        }

    @classmethod
    def from_dict(cls, raw: object, where: str) -> Version:
        f = _Fields(raw, where)
        path = check_relative_path(f.text("path"), where)
        sha = f.text("sha256")
        return cls(
            path,
            f.integer("mode"),
            f.integer("size"),
            sha,
            sha if f.raw.get("stored") is True else None,
            f.integer("written_by"),
            f.integer("replaced_by"),
        )


@dataclass(frozen=True)
class ExternalFile:
    """A file outside the workspace that the build read: identified, not stored."""

    path: str
    sha256: str | None
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, raw: object, where: str) -> ExternalFile:
        f = _Fields(raw, where)
        return cls(f.text("path"), f.opt_text("sha256"), f.integer("size"))


@dataclass(frozen=True)
class Tool:
    """A known tool that ran, with its version line."""

    name: str
    path: str
    sha256: str | None
    version: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "sha256": self.sha256,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, raw: object, where: str) -> Tool:
        f = _Fields(raw, where)
        return cls(f.text("name"), f.text("path"), f.opt_text("sha256"), f.opt_text("version"))


@dataclass(frozen=True)
class Chunk:
    """``size`` bytes of one stream, read ``t`` seconds after the build started."""

    t: float
    stream: str
    size: int


@dataclass(frozen=True)
class Streams:
    stdout_blob: str | None
    stderr_blob: str | None
    chunks: list[Chunk]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stdout_blob": self.stdout_blob,
            "stderr_blob": self.stderr_blob,
            "chunks": [[round(c.t, 6), c.stream, c.size] for c in self.chunks],
        }

    @classmethod
    def from_dict(cls, raw: object, where: str) -> Streams:
        f = _Fields(raw, where)

        def chunk(x: object, w: str) -> Chunk:
            ok = (
                isinstance(x, list)
                and len(x) == 3
                and isinstance(x[0], (int, float))
                and x[1] in ("stdout", "stderr")
                and isinstance(x[2], int)
            )
            if not ok:
                raise TapeError(f"tape manifest: {w} is not a [t, stream, size] chunk")
            assert isinstance(x, list)
            return Chunk(float(x[0]), str(x[1]), int(x[2]))

        return cls(f.opt_text("stdout_blob"), f.opt_text("stderr_blob"), f.items("chunks", chunk))


@dataclass(frozen=True)
class Event:
    """One typed event; ``data`` holds the kind's fields."""

    t: float
    kind: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        # The kind's fields sit beside t and kind; they must not use either name.
        return {**self.data, "t": round(self.t, 6), "kind": self.kind}

    @classmethod
    def from_dict(cls, raw: object, where: str) -> Event:
        f = _Fields(raw, where)
        data = {k: v for k, v in f.raw.items() if k not in ("t", "kind")}
        return cls(f.number("t"), f.text("kind"), data)


@dataclass(frozen=True)
class BuildWarning:
    kind: str
    message: str
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "path": self.path}

    @classmethod
    def from_dict(cls, raw: object, where: str) -> BuildWarning:
        f = _Fields(raw, where)
        return cls(f.text("kind"), f.text("message"), f.opt_text("path"))


@dataclass(frozen=True)
class Tracing:
    """How the build was observed, and what fidelity a fallback lost."""

    mode: str
    notice: str | None
    # Where per-process file events came from: preload, strace or none.
    files: str = "none"
    # How the workspace's changes were found after the build: ``walk`` (every file stat-ed
    # again) or ``seen`` (the interposer saw every process: only the directories whose
    # mtime moved and the paths it saw change were looked at).
    changes: str = "walk"
    # Format 1.4: each process's ``made_dirs`` was recorded (the file tracer saw mkdir).
    # False in older tapes, whose readers must guess which directories a step made.
    made_dirs: bool = False

    @classmethod
    def from_dict(cls, raw: object, where: str) -> Tracing:
        f = _Fields(raw, where)
        return cls(
            f.text("mode"),
            f.opt_text("notice"),
            f.opt_text("files") or "none",
            f.opt_text("changes") or "walk",
            f.raw.get("made_dirs") is True,
        )


@dataclass(frozen=True)
class Sampling:
    """Sampled Python stacks: which sampler, at what rate, and the blob that holds them.

    The blob is JSON: ``{"frames": [[function, file, line], ...], "samples":
    [[process_id, start_us, dur_us, [frame index, ...outermost first]], ...]}``.
    """

    sampler: str = "none"
    rate: int = 0
    notice: str | None = None
    samples_blob: str | None = None
    count: int = 0

    @classmethod
    def from_dict(cls, raw: object, where: str) -> Sampling:
        if raw is None:
            return cls()
        f = _Fields(raw, where)
        return cls(
            f.text("sampler"),
            f.integer("rate"),
            f.opt_text("notice"),
            f.opt_text("samples_blob"),
            f.integer("count"),
        )


@dataclass
class Manifest:
    """Everything a tape says about one build, except stored file and stream contents."""

    format_version: str
    buildtape_version: str
    argv: list[str]
    cwd: str
    workspace: str
    status: str
    exit_code: int | None
    signal: str | None
    started_at: str
    ended_at: str
    duration_s: float
    host: Host
    git: GitState | None
    labels: dict[str, str]
    environment: Environment
    tracing: Tracing
    toolchain: list[Tool]
    processes: list[Process]
    inputs: list[FileEntry]
    outputs: list[FileEntry]
    external: list[ExternalFile]
    streams: Streams
    events: list[Event]
    warnings: list[BuildWarning]
    sampling: Sampling = field(default_factory=Sampling)
    # Format 1.1.
    directories: list[DirEntry] = field(default_factory=list)
    intermediates: list[Intermediate] = field(default_factory=list)
    versions: list[Version] = field(default_factory=list)
    # Format 1.3. Only in a manifest being recorded: the files nobody touched, written as
    # the manifest's ``listed`` rows. Read back, they are among ``inputs`` (listed-only
    # entries: no sha256, no blob), so readers see one list as in earlier formats.
    listed: list[ListedRow] = field(default_factory=list)

    @property
    def cwd_in_workspace(self) -> str:
        """The build's cwd relative to the workspace root (``.`` when equal)."""
        rel = posixpath.relpath(self.cwd, self.workspace)
        return "." if rel.startswith("..") else rel

    def to_dict(self) -> dict[str, Any]:
        paths: dict[str, int] = {}

        def path_id(p: str) -> int:
            return paths.setdefault(p, len(paths))

        processes = [p.to_dict(path_id) for p in self.processes]
        return {
            "format_version": self.format_version,
            "buildtape_version": self.buildtape_version,
            "argv": self.argv,
            "cwd": self.cwd,
            "workspace": self.workspace,
            "status": self.status,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": round(self.duration_s, 6),
            "host": self.host.__dict__,
            "git": None if self.git is None else self.git.__dict__,
            "labels": self.labels,
            "environment": self.environment.__dict__,
            "tracing": self.tracing.__dict__,
            "toolchain": [t.to_dict() for t in self.toolchain],
            "paths": list(paths),
            "processes": processes,
            "inputs": [e.to_dict() for e in self.inputs],
            **({"listed": self.listed} if self.listed else {}),
            "outputs": [e.to_dict() for e in self.outputs],
            "external": [e.to_dict() for e in self.external],
            "streams": self.streams.to_dict(),
            "events": [e.to_dict() for e in self.events],
            "warnings": [w.to_dict() for w in self.warnings],
            "sampling": self.sampling.__dict__,
            "directories": [d.to_dict() for d in self.directories],
            "intermediates": [i.to_dict() for i in self.intermediates],
            "versions": [v.to_dict() for v in self.versions],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Manifest:
        f = _Fields(raw, "manifest")
        status = f.text("status")
        if status not in STATUSES:
            raise TapeError(f"tape manifest: status {status!r} is not one of {STATUSES}")
        paths = f.texts("paths")
        git_raw = raw.get("git")
        manifest = cls(
            format_version=f.text("format_version"),
            buildtape_version=f.text("buildtape_version"),
            argv=f.texts("argv"),
            cwd=f.text("cwd"),
            workspace=f.text("workspace"),
            status=status,
            exit_code=f.opt_integer("exit_code"),
            signal=f.opt_text("signal"),
            started_at=f.text("started_at"),
            ended_at=f.text("ended_at"),
            duration_s=f.number("duration_s"),
            host=Host.from_dict(raw.get("host"), "manifest.host"),
            git=None if git_raw is None else GitState.from_dict(git_raw, "manifest.git"),
            labels=f.text_map("labels"),
            environment=Environment.from_dict(raw.get("environment"), "manifest.environment"),
            tracing=Tracing.from_dict(raw.get("tracing"), "manifest.tracing"),
            toolchain=f.items("toolchain", Tool.from_dict),
            processes=f.items("processes", lambda x, w: Process.from_dict(x, w, paths)),
            inputs=_inputs(f),
            outputs=f.items("outputs", FileEntry.from_dict),
            external=f.items("external", ExternalFile.from_dict),
            streams=Streams.from_dict(raw.get("streams"), "manifest.streams"),
            events=f.items("events", Event.from_dict),
            warnings=f.items("warnings", BuildWarning.from_dict),
            sampling=Sampling.from_dict(raw.get("sampling"), "manifest.sampling"),
            directories=f.items("directories", DirEntry.from_dict) if "directories" in raw else [],
            intermediates=(
                f.items("intermediates", Intermediate.from_dict) if "intermediates" in raw else []
            ),
            versions=f.items("versions", Version.from_dict) if "versions" in raw else [],
        )
        # The checks across fields (links, process tree, events...): recorder/trust.py.
        return check_manifest(manifest)


def _inputs(f: _Fields) -> list[FileEntry]:
    """The manifest's inputs, with the listed-only rows of format 1.3 among them."""
    inputs = f.items("inputs", FileEntry.from_dict)
    if f.raw.get("listed") is None:
        return inputs
    listed = f.items("listed", FileEntry.from_row)
    merged = sorted([*inputs, *listed], key=lambda e: e.path)
    for a, b in itertools.pairwise(merged):
        if a.path == b.path:
            raise TapeError(
                f"tape manifest: {printable(a.path)!r} is listed twice among the inputs"
            )
    return merged


def blobs_referenced(manifest: Manifest) -> Iterable[str]:
    for entry in (*manifest.inputs, *manifest.outputs):
        if entry.blob is not None:
            yield entry.blob
    for inter in manifest.intermediates:
        if inter.blob is not None:
            yield inter.blob
    for version in manifest.versions:
        if version.blob is not None:
            yield version.blob
    for blob in (
        manifest.streams.stdout_blob,
        manifest.streams.stderr_blob,
        manifest.sampling.samples_blob,
    ):
        if blob is not None:
            yield blob


def process_environment(manifest: Manifest, process: Process) -> dict[str, str]:
    """A process's whole environment: the manifest's, then each delta from the root down.

    Tapes without deltas (format 1.0, or a tracer that saw none) give the build's environment.
    """
    by_id = {p.id: p for p in manifest.processes}
    chain: list[Process] = []
    seen: set[int] = set()
    node: Process | None = process
    while node is not None and node.id not in seen:
        seen.add(node.id)
        chain.append(node)
        node = by_id.get(node.parent_id) if node.parent_id is not None else None
    env = dict(manifest.environment.vars)
    for proc in reversed(chain):
        for name, value in (proc.env or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
    return env
