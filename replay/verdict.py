"""Why an output did not reproduce, in words a user can act on.

Each output that differs gets one reason, checked in this order:

- ``bookkeeping``: a build system's own log that always differs (``.ninja_log`` holds
  times, ``.ninja_deps`` is keyed by mtimes; the list is recorder/normalize.py's, which
  ``diff`` leaves out of its comparison too): an expected difference, not a divergence;
- ``drift``: a tool the writing step ran is not the recorded one (sha256 and version line
  of the tool, under the name it was run as);
- ``path``: the output embeds the build directory, and the replay ran somewhere else
  (no namespaces, or ``--vary path``);
- ``timestamp``: the two contents are equal once dates and times are masked, or are zip
  archives (wheels) whose members are the same and only their stored times differ;
- ``tempname``: equal once random temporary names (``/tmp/jqTtvJPt``) are masked too;
- ``nondeterministic``: same command, same inputs, same place, different output;
- ``missing`` / ``extra``: the replay did not write it, or wrote it and the recording did not.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recorder.model import FileEntry, Manifest, Process
from recorder.normalize import is_bookkeeping as is_bookkeeping
from recorder.tape import Tape
from replay.world import subtree

_TIMES = re.compile(
    rb"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?"
    rb"|\b\d\d:\d\d:\d\d\b"
    rb"|\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun),? +\d{1,2} +\w{3} +\d{4}\b"
    rb"|\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} +\d{4}\b"
    rb"|\b1[5-9]\d{8}(\.\d+)?\b"
)
# A name made by mktemp(1), mkstemp(3) or tempfile under a temporary directory
# (/tmp/jqTtvJPt, /tmp/tmpa1b2c3d4): random on every run.
_TEMP_NAME = re.compile(rb"(?<![\w.-])((?:/var)?/tmp)/[\w.-]*?[A-Za-z0-9]{6,}(?=[/\s'\":]|$)")
_MAX_SCAN = 32 * 1024 * 1024


def equal_but_times(a: bytes, b: bytes) -> bool:
    """Two contents that differ, and only by dates and times (``__DATE__ __TIME__``, a
    build stamp): equal once each is masked."""
    return a != b and _TIMES.sub(b"$TIME", a) == _TIMES.sub(b"$TIME", b)


# Past this many members an archive is not opened to explain a difference.
_MAX_MEMBERS = 10_000


def zip_equal_but_times(a: bytes, b: bytes) -> bool:
    """Two zip archives with the same members (names, sizes, CRC-32s, from each central
    directory: nothing is decompressed) that differ in the times stored with them."""
    if not (a.startswith(b"PK\x03\x04") and b.startswith(b"PK\x03\x04")):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(a)) as za, zipfile.ZipFile(io.BytesIO(b)) as zb:
            ia, ib = za.infolist(), zb.infolist()
            if len(ia) > _MAX_MEMBERS or len(ib) > _MAX_MEMBERS:
                return False
            members_a = [(i.filename, i.file_size, i.CRC) for i in ia]
            members_b = [(i.filename, i.file_size, i.CRC) for i in ib]
            return members_a == members_b and [i.date_time for i in ia] != [i.date_time for i in ib]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False


@dataclass(frozen=True)
class Finding:
    path: str
    # bookkeeping | drift | path | timestamp | tempname | nondeterministic | missing | extra
    reason: str
    why: str
    expected: bool = False  # an expected difference: does not count against reproduction


def file_content(path: Path) -> bytes | None:
    """A replayed output as the sandbox holds it, unless too large to scan."""
    try:
        if path.is_symlink() or path.stat().st_size > _MAX_SCAN:
            return None
        return path.read_bytes()
    except OSError:
        return None


def _content(tape: Tape, entry: FileEntry | None) -> bytes | None:
    if entry is None or entry.blob is None or entry.size > _MAX_SCAN:
        return None
    try:
        return tape.blob(entry.blob)
    except Exception:  # an unreadable blob only means we cannot say more
        return None


def _masked(data: bytes) -> bytes:
    return _TEMP_NAME.sub(rb"\1/$TEMP", _TIMES.sub(b"$TIME", data))


def writers(m: Manifest, path: str) -> list[Process]:
    return sorted((p for p in m.processes if path in p.writes), key=lambda p: (p.start_s, p.id))


_DRIVER = re.compile(r"(.*-)?(gcc|g\+\+|cc|c\+\+|clang|clang\+\+|collect2)(-[\d.]+)?")


def _steps_behind(m: Manifest, path: str) -> list[Process]:
    """The processes of each step that wrote ``path``: for a compiler's ``as`` or ``ld``,
    the whole compile (driver, cc1, as), found by climbing through compiler drivers."""
    by_id = {p.id: p for p in m.processes}
    out: dict[int, Process] = {}
    for writer in writers(m, path):
        top = writer
        while top.parent_id is not None and top.parent_id in by_id:
            parent = by_id[top.parent_id]
            if not _DRIVER.fullmatch(posixpath.basename(parent.exe)):
                break
            top = parent
        for p in subtree(m, top.id):
            out[p.id] = p
    return [out[i] for i in sorted(out)]


def explain(
    path: str,
    status: str,
    recorded: tuple[Tape, FileEntry | None],
    replayed: Callable[[], bytes | None],
    recorded_place: str,
    replay_place: str,
    drifted: dict[str, str],
    path_varied_on_purpose: bool = False,
) -> Finding:
    """One differing output's reason. ``drifted``: tool path -> what drifted about it;
    ``replayed``: the replay's content of ``path`` (None when it cannot be read)."""
    if is_bookkeeping(path):
        return Finding(
            path, "bookkeeping",
            "build-system bookkeeping (times, mtimes, random names, hash order): always differs",
            expected=True,
        )  # fmt: skip
    if status == "missing":
        return Finding(path, "missing", "the replay did not write it")
    if status == "extra":
        return Finding(path, "extra", "the replay wrote it; the recording did not")
    m = recorded[0].manifest
    for proc in _steps_behind(m, path):
        tool = drifted.get(proc.exe)
        if tool:
            return Finding(path, "drift", f"made by {posixpath.basename(proc.exe)}, which "
                           f"differs from the recording: {tool}")  # fmt: skip
        changed = sorted(r for r in proc.reads if r in drifted)
        if changed:
            return Finding(path, "drift", f"its step read {changed[0]}, which differs from "
                           f"the recording: {drifted[changed[0]]}")  # fmt: skip
    before = _content(*recorded)
    after = replayed() if before is not None else None
    if before is not None and after is not None:
        moved = replay_place.rstrip("/") != recorded_place.rstrip("/")
        if moved and recorded_place.encode() in before and replay_place.encode() in after:
            if path_varied_on_purpose:
                why = f"embeds the build directory ({replay_place} in the varied run)"
            else:
                why = (
                    f"embeds the build directory: recorded at {recorded_place}, replayed at "
                    f"{replay_place} because namespaces were not available (install bubblewrap "
                    "to replay at the recorded path)"
                )
            return Finding(path, "path", why)
        if equal_but_times(before, after) or before == after:
            return Finding(path, "timestamp", "embeds a date or time (equal once times are masked)")
        if zip_equal_but_times(before, after):
            return Finding(
                path, "timestamp",
                "a zip archive (a wheel, a jar) whose members are all as recorded: only the "
                "modification times stored with them differ, those of files the build wrote "
                "(SOURCE_DATE_EPOCH fixes them for tools that honour it, as wheel does)",
            )  # fmt: skip
        if _masked(before) == _masked(after):
            return Finding(
                path, "tempname",
                "embeds the random name of a temporary file or directory (such as mktemp's "
                "/tmp/tmp.XXXXXXXXXX): equal once those names and times are masked",
            )  # fmt: skip
    return Finding(
        path, "nondeterministic",
        "same command and inputs at the same path, different output: a nondeterministic step",
    )  # fmt: skip
