"""The trust boundary: a tape is data from someone else.

Everything a reader takes from a tape passes these checks once, when the manifest is
parsed (``recorder.model``) or before anything is written (``replay.restore``): JSON
without unbounded nesting or lone surrogates, finite non-negative times, sane version
numbers, environment names without ``=``, octal umasks, acyclic process trees, known
event shapes, links that resolve inside the workspace whatever their spelling, and
restore budgets. The limits are documented in docs/tape-format.md.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recorder.errors import BudgetExceeded, NotEnoughSpace, TapeError

if TYPE_CHECKING:
    from recorder.model import Manifest

# Nesting of JSON values inside a manifest (custom event data) or a samples blob.
MAX_DEPTH = 64
# A workspace path or link target (PATH_MAX), and the links followed resolving one (as Linux).
MAX_PATH = 4096
MAX_LINK_HOPS = 40
# The mode bits a restored file may keep: no setuid, setgid, sticky, or write for others.
SAFE_FILE_MODE = 0o755

_VERSION = re.compile(r"\d{1,6}(?:\.\d{1,6}){0,3}(?:[.+-]?[A-Za-z0-9]{1,32}){0,3}")
_UMASK = re.compile(r"0?[0-7]{1,3}|00[0-7]{1,3}")
# \uD800-\uDFFF written as a JSON escape: the only way a surrogate reaches a parsed string.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _fail(what: str) -> TapeError:
    return TapeError(f"tape manifest: {what}; refusing the tape")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def load_json(raw: bytes, what: str) -> Any:
    """Parse JSON from a tape: no NaN/Infinity, bounded nesting, lone surrogates escaped.

    ``ValueError`` (with a short reason) for anything that is not such JSON.
    """
    try:
        doc = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply") from None
    if _SURROGATE_ESCAPE.search(raw):
        doc = escape_surrogates(doc)
    return doc


def _escape_text(text: str) -> str:
    if not _LONE_SURROGATE.search(text):
        return text
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def escape_surrogates(doc: Any) -> Any:
    """``doc`` with every lone surrogate written as the text ``\\udXXX`` (iterative)."""
    if isinstance(doc, str):
        return _escape_text(doc)
    root: list[Any] = [doc]
    todo: list[tuple[Any, Any]] = [(root, 0)]
    while todo:
        parent, key = todo.pop()
        value = parent[key]
        if isinstance(value, str):
            parent[key] = _escape_text(value)
        elif isinstance(value, list):
            todo.extend((value, i) for i in range(len(value)))
        elif isinstance(value, dict):
            if any(_LONE_SURROGATE.search(k) for k in value):
                fixed = {_escape_text(k): v for k, v in value.items()}
                value.clear()
                value.update(fixed)
            todo.extend((value, k) for k in value)
    return root[0]


def depth(doc: Any) -> int:
    """How deeply ``doc`` nests (a scalar is 0), found without recursion."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(doc, 0)]
    while todo:
        value, d = todo.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, d + 1)
            if deepest > MAX_DEPTH:
                return deepest
            todo.extend((v, d + 1) for v in value)
    return deepest


def time_s(value: float, where: str) -> float:
    """A time or duration in seconds: finite and not negative."""
    if not math.isfinite(value) or value < 0:
        raise _fail(f"{where} is {value!r}, not a finite time of zero or more")
    return value


def version(text: str, where: str) -> str:
    if len(text) > 64 or not _VERSION.fullmatch(text):
        raise _fail(f"{where} is not a version number")
    return text


def umask(text: str, where: str) -> str:
    """An octal umask such as ``0022`` (at most 0o777)."""
    if not _UMASK.fullmatch(text) or int(text, 8) > 0o777:
        raise _fail(f"{where} is not an octal umask")
    return text


def env_names(names: Iterable[str], where: str) -> None:
    for name in names:
        if not name or "=" in name or "\0" in name:
            raise _fail(f"{where} has the variable name {printable(name)!r}")


def env_values(values: Iterable[str], where: str) -> None:
    if any("\0" in v for v in values):
        raise _fail(f"{where} has a value with a NUL byte")


def file_mode(mode: int, where: str) -> int:
    """A recorded ``st_mode``: file type and permission bits, nothing else."""
    if not 0 <= mode <= 0o177777:
        raise _fail(f"{where}.mode is {mode}, not a file mode")
    return mode


def restored_mode(mode: int) -> int:
    """The permissions a restored file gets: the recorded ones within ``0o755``."""
    return mode & SAFE_FILE_MODE


def check_process_tree(ids: list[int], parents: list[int | None]) -> None:
    """Process ids are unique and following parents never comes back (no cycle)."""
    parent_of: dict[int, int | None] = {}
    for pid, parent in zip(ids, parents, strict=True):
        if pid in parent_of:
            raise _fail(f"two processes have the id {pid}")
        parent_of[pid] = parent
    done: set[int] = set()
    for start in ids:
        path: list[int] = []
        on_path: set[int] = set()
        node: int | None = start
        while node is not None and node not in done:
            if node in on_path:
                raise _fail(f"the process tree has a cycle through process {node}")
            on_path.add(node)
            path.append(node)
            node = parent_of.get(node)
        done.update(path)


# Nanosecond times beyond this do not fit the kernel's timespec (os.utime would overflow).
_MAX_NS = 2**62


def _no_nul(values: Iterable[str], where: str) -> None:
    if any("\0" in v for v in values):
        raise _fail(f"{where} holds a NUL byte")


def _absolute(path: str, where: str) -> None:
    if not path.startswith("/") or "\0" in path or len(path) > MAX_PATH:
        raise _fail(f"{where} is not an absolute path")


def _finite_time(value: float, where: str) -> float:
    """Finite, and a negative time (a clock step) is read as zero."""
    if not math.isfinite(value):
        raise _fail(f"{where} is {value!r}, not a finite time")
    return max(0.0, value)


def check_manifest(m: Manifest) -> Manifest:
    """The second half of parsing: the checks that span fields or need the typed values.

    Refuses (``TapeError``) what no reader can use safely; drops malformed custom events
    with a warning in ``m.warnings``, as the recorder does with a malformed event line.
    """
    from recorder.model import BuildWarning, Chunk, Streams

    version(m.format_version, "manifest.format_version")
    version(m.buildtape_version, "manifest.buildtape_version")
    _no_nul(m.argv, "manifest.argv")
    _absolute(m.cwd, "manifest.cwd")
    _absolute(m.workspace, "manifest.workspace")
    m.duration_s = _finite_time(m.duration_s, "manifest.duration_s")
    env = m.environment
    env_names(env.vars, "manifest.environment.vars")
    env_values(env.vars.values(), "manifest.environment.vars")
    env_names(env.redacted, "manifest.environment.redacted")
    umask(env.umask, "manifest.environment.umask")
    for p in m.processes:
        where = f"manifest.processes[id {p.id}]"
        p.start_s = _finite_time(p.start_s, f"{where}.start_s")
        if p.end_s is not None:
            p.end_s = max(p.start_s, _finite_time(p.end_s, f"{where}.end_s"))
        _no_nul([*p.argv, p.cwd, p.exe], where)
        if p.env:
            env_names(p.env, f"{where}.env")
            env_values((v for v in p.env.values() if v is not None), f"{where}.env")
    check_process_tree([p.id for p in m.processes], [p.parent_id for p in m.processes])
    for name, listing in (("inputs", m.inputs), ("outputs", m.outputs)):
        for entry in listing:
            file_mode(entry.mode, f"manifest.{name}[{printable(entry.path)!r}]")
            if entry.mtime_ns is not None and not -_MAX_NS < entry.mtime_ns < _MAX_NS:
                raise _fail(f"manifest.{name}[{printable(entry.path)!r}] has no usable mtime")
            if entry.size < 0:
                raise _fail(f"manifest.{name}[{printable(entry.path)!r}] has a negative size")
        paths = [(entry.path, entry.link) for entry in listing]
        check_links([*paths, *((d.path, None) for d in m.directories)], f"manifest.{name}")
    for d in m.directories:
        file_mode(d.mode, f"manifest.directories[{printable(d.path)!r}]")
        if not -_MAX_NS < d.mtime_ns < _MAX_NS:
            raise _fail(f"manifest.directories[{printable(d.path)!r}] has no usable mtime")
    for i in m.intermediates:
        _absolute(i.path, "manifest.intermediates[].path")
        file_mode(i.mode, f"manifest.intermediates[{printable(i.path)!r}]")
    ids = {p.id for p in m.processes}
    for v in m.versions:
        where = f"manifest.versions[{printable(v.path)!r}]"
        file_mode(v.mode, where)
        if v.size < 0 or v.written_by not in ids or v.replaced_by not in ids:
            raise _fail(f"{where} names no process of the tape or has a negative size")
    chunks = m.streams.chunks
    if any(not (math.isfinite(c.t) and c.t >= 0) or c.size < 0 for c in chunks):
        if any(not math.isfinite(c.t) or c.size < 0 for c in chunks):
            raise _fail("manifest.streams.chunks holds a chunk with no finite time or size")
        chunks = [Chunk(max(0.0, c.t), c.stream, c.size) for c in chunks]
        m.streams = Streams(m.streams.stdout_blob, m.streams.stderr_blob, chunks)
    kept = []
    for e in m.events:
        problem = None if math.isfinite(e.t) else "its time is not finite"
        problem = problem or event_problem(e.kind, e.data)
        if problem is None:
            kept.append(e)
        else:
            message = f"a {printable(e.kind)!r} event was skipped when reading: {problem}"
            m.warnings.append(BuildWarning("invalid_event", message))
    if len(kept) != len(m.events):
        m.events = kept
    if m.sampling.rate < 0 or m.sampling.count < 0:
        m.sampling = replace(m.sampling, rate=max(0, m.sampling.rate), count=0)
    return m


# --- events and samples -------------------------------------------------------------------


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _text(v: object) -> bool:
    return isinstance(v, str)


def _opt_text(v: object) -> bool:
    return v is None or isinstance(v, str)


# The fields each known event kind must have (see recorder.events); other kinds pass.
_EVENT_SHAPES: dict[str, dict[str, Callable[[object], bool]]] = {
    "event": {"name": _text, "data": lambda v: isinstance(v, dict)},
    "metric": {"name": _text, "value": _finite},
    "span": {"name": _text, "start_s": _finite, "end_s": _finite},
    "invalid_event": {"line": lambda v: isinstance(v, int), "reason": _text},
}
_EVENT_OPTIONAL: dict[str, dict[str, Callable[[object], bool]]] = {
    "metric": {"unit": _opt_text},
    "span": {"parent": _opt_text, "pid": lambda v: v is None or type(v) is int},
    "invalid_event": {"text": _opt_text},
}


def event_problem(kind: str, data: Mapping[str, Any]) -> str | None:
    """Why an event of ``kind`` with ``data`` cannot be used, or None when it can."""
    if depth(dict(data)) > MAX_DEPTH:
        return f"its data nests deeper than {MAX_DEPTH}"
    for key, ok in _EVENT_SHAPES.get(kind, {}).items():
        if key not in data or not ok(data[key]):
            return f"{kind} without a valid {key}"
    for key, ok in _EVENT_OPTIONAL.get(kind, {}).items():
        if key in data and not ok(data[key]):
            return f"{kind} with an invalid {key}"
    if kind == "span" and data["end_s"] < data["start_s"]:
        return "span ends before it starts"
    return None


Frame = tuple[str, str, int]
Sample = tuple[int, int, int, list[int]]


def samples_doc(raw: bytes) -> tuple[list[Frame], list[Sample], int]:
    """A samples blob's frames and samples, and how many malformed samples were skipped.

    ``ValueError`` when the blob is not such a document at all.
    """
    doc = load_json(raw, "the samples blob")
    if not isinstance(doc, dict):
        raise ValueError("the samples blob is not a JSON object")
    frames_raw, samples_raw = doc.get("frames"), doc.get("samples")
    if not isinstance(frames_raw, list) or not isinstance(samples_raw, list):
        raise ValueError("the samples blob lacks its frames or samples")
    frames: list[Frame] = []
    for f in frames_raw:
        if (
            isinstance(f, list)
            and len(f) == 3
            and isinstance(f[0], str)
            and isinstance(f[1], str)
            and type(f[2]) is int
        ):
            frames.append((f[0], f[1], f[2]))
        else:
            frames.append(("?", "?", 0))
    samples: list[Sample] = []
    skipped = 0
    n = len(frames)
    for s in samples_raw:
        if (
            isinstance(s, list)
            and len(s) == 4
            and all(type(x) is int and x >= 0 for x in s[:3])
            and isinstance(s[3], list)
            and all(type(i) is int and 0 <= i < n for i in s[3])
        ):
            samples.append((s[0], s[1], s[2], list(s[3])))
        else:
            skipped += 1
    return frames, samples, skipped


# --- paths and links ----------------------------------------------------------------------


def resolve(path: str, links: Mapping[str, str]) -> str | None:
    """Where a workspace-relative ``path`` lands once ``links`` (path -> target) are followed.

    The workspace is everything that is not a link; None when the path leaves it (through
    ``..`` or an absolute target) or follows more than ``MAX_LINK_HOPS`` links.
    """
    done: list[str] = []
    todo = [c for c in reversed(path.split("/")) if c not in ("", ".")]
    hops = 0
    while todo:
        part = todo.pop()
        if part == "..":
            if not done:
                return None
            done.pop()
            continue
        candidate = "/".join([*done, part])
        target = links.get(candidate)
        if target is None:
            done.append(part)
            continue
        hops += 1
        if hops > MAX_LINK_HOPS or target.startswith("/") or len(todo) > MAX_PATH:
            return None
        todo.extend(c for c in reversed(target.split("/")) if c not in ("", "."))
    return "/".join(done) or "."


def check_links(entries: Iterable[tuple[str, str | None]], where: str) -> None:
    """Every link of one workspace listing resolves inside it, and nothing lies under a link.

    ``entries`` are (path, link target or None). Links are resolved against each other, so a
    chain (``p/q -> ..`` then ``r -> p/q/p/q/../../..``) is followed as the kernel would.
    """
    listed = list(entries)
    links = {path: target for path, target in listed if target is not None}
    if not links:
        return
    for path, target in links.items():
        if len(target) > MAX_PATH:
            raise _fail(f"{where}: link {printable(path)!r} has a target over {MAX_PATH} bytes")
        if resolve(path, links) is None:
            raise _fail(
                f"{where}: link {printable(path)!r} -> {printable(target)!r} escapes the workspace"
            )
    for path, _ in listed:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in links:
                raise _fail(f"{where}: {printable(path)!r} lies under a link")


def inside_workspace(path: str, links: Mapping[str, str]) -> str:
    """``path`` (relative to the workspace) resolved through ``links``; refused if outside."""
    if "\0" in path or path.startswith("/") or len(path) > MAX_PATH:
        raise _fail(f"{printable(path)!r} is not a path inside the workspace")
    resolved = resolve(path, links)
    if resolved is None:
        raise _fail(f"{printable(path)!r} resolves outside the workspace")
    return resolved


def relative_to_workspace(path: str, workspace: str) -> str | None:
    """An absolute recorded path (a cwd) relative to the recorded workspace, or None outside.

    Lexical: ``..`` components are applied before deciding, so ``<ws>/../../x`` is outside.
    """
    if not path.startswith("/") or not workspace.startswith("/"):
        return None
    rel = os.path.relpath(os.path.normpath(path), os.path.normpath(workspace))
    if rel == ".." or rel.startswith("../"):
        return None
    return rel


# --- restore budgets ----------------------------------------------------------------------


# The environment variable that changes each restore limit.
LIMIT_VARS = {
    "max_bytes": "BUILDTAPE_MAX_RESTORE_BYTES",
    "max_entries": "BUILDTAPE_MAX_RESTORE_ENTRIES",
    "max_blob_bytes": "BUILDTAPE_MAX_BLOB_BYTES",
}


@dataclass(frozen=True)
class RestoreLimits:
    """Ceilings for what one restore may write (docs/tape-format.md, "Limits").

    Each can be changed with the environment variable in ``LIMIT_VARS`` (bytes or a count).
    """

    max_bytes: int = 8 * 1024**3
    max_entries: int = 200_000
    max_blob_bytes: int = 2 * 1024**3
    # Free space left on the destination's filesystem after the restore.
    reserve_bytes: int = 64 * 1024**2

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RestoreLimits:
        values: dict[str, int] = {}
        for name, var in LIMIT_VARS.items():
            raw = env.get(var)
            if raw is None:
                continue
            if not raw.isdigit() or len(raw) > 20:
                raise TapeError(f"{var}={printable(raw)!r} is not a whole number")
            values[name] = int(raw)
        return cls(**values)


def check_restore(
    files: Iterable[tuple[str, int, int]], entries: int, free_bytes: int, limits: RestoreLimits
) -> int:
    """Check (path, declared size, stored size) of each file to restore, and the number
    of ``entries`` (files, links, directories), against the limits.

    A blob shared by several entries counts once per entry, as it is written once per
    entry. Returns the total bytes; raises ``BudgetExceeded`` (or ``TapeError`` when a
    blob is not the size its entry declares, ``NotEnoughSpace`` when the destination lacks
    the space) before anything is written.
    """
    total = 0
    for path, declared, stored in files:
        if declared != stored:
            raise _fail(f"{printable(path)!r} declares {declared} bytes but stores {stored}")
        if stored > limits.max_blob_bytes:
            raise BudgetExceeded(
                f"{printable(path)!r} is {stored} bytes, over the {limits.max_blob_bytes}-byte "
                f"limit for one file; raise {LIMIT_VARS['max_blob_bytes']} to restore it"
            )
        total += stored
    if entries > limits.max_entries:
        raise BudgetExceeded(
            f"the tape would restore {entries} entries, over the limit of {limits.max_entries}; "
            f"raise {LIMIT_VARS['max_entries']} to restore it"
        )
    if total > limits.max_bytes:
        raise BudgetExceeded(
            f"the tape would restore {total} bytes, over the {limits.max_bytes}-byte limit; "
            f"raise {LIMIT_VARS['max_bytes']} to restore it"
        )
    if total + limits.reserve_bytes > free_bytes:
        raise NotEnoughSpace(
            f"the tape would restore {total} bytes and {limits.reserve_bytes} must stay free, "
            f"but only {free_bytes} bytes are free there; free some space or restore elsewhere"
        )
    return total


# --- tapes recorded here -----------------------------------------------------------------

# The identities (manifest sha256) of the tapes this user recorded on this machine.
RECORDED_HERE = "recorded-here"
_RECORDED_MAX = 4 * 1024**2


def recorded_list(env: Mapping[str, str]) -> Path:
    """Where the list of tapes recorded here is kept: ``$XDG_STATE_HOME/buildtape``."""
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "buildtape" / RECORDED_HERE


def remember_recorded(digest: str, listing: Path) -> None:
    """Add a tape's manifest sha256 to ``listing`` (private to the user; kept under 4 MiB)."""
    listing.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(listing, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as f:
        f.write(f"{digest}\n")
        size = f.tell()
    if size > _RECORDED_MAX:  # keep the newest half
        lines = listing.read_text(encoding="ascii").splitlines()
        tmp = listing.with_suffix(".partial")
        tmp.write_text("".join(f"{x}\n" for x in lines[len(lines) // 2 :]), encoding="ascii")
        os.chmod(tmp, 0o600)
        os.replace(tmp, listing)


def recorded_here(digest: str, listing: Path) -> bool:
    """Whether this user recorded the tape whose manifest has ``digest`` on this machine.

    The listing counts only if this user owns it and nobody else may write it.
    """
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        return False
    try:
        fd = os.open(listing, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            return False
        return digest.encode() in f.read(_RECORDED_MAX * 2).split(b"\n")


# --- terminal output ----------------------------------------------------------------------

# C0 controls but tab and newline, DEL, C1 controls, and lone surrogates.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NAMES = {"\x1b": "\\e", "\r": "\\r", "\n": "\\n", "\t": "\\t", "\b": "\\b"}


def _visible(m: re.Match[str]) -> str:
    c = m.group()
    return _NAMES.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029]")


def json_safe(text: str) -> str:
    """JSON text (from ``json.dumps(ensure_ascii=False)``) with DEL and the C1 controls
    written as ``\\u`` escapes, as json already writes C0: still the same JSON."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def printable(text: str, one_line: bool = True) -> str:
    """``text`` from a tape, safe to write to a terminal: every control character visible.

    C0 (ESC, CR, BEL...), DEL, C1 (CSI, OSC...) and lone surrogates become escapes such as
    ``\\e`` or ``\\x9b``, so no escape sequence, OSC 52 clipboard write, title change or
    line overwrite reaches the terminal. ``one_line`` escapes newlines and tabs too.
    """
    pattern = _CONTROL_ONE_LINE if one_line else _CONTROL
    return pattern.sub(_visible, text) if pattern.search(text) else text
