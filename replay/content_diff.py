"""Content diffing: what differs inside two versions of one file.

Text files get a unified diff (after normalisation, so workspace paths and temp names
inside a ``CMakeCache.txt`` are not differences), archives (zip, wheel, jar, tar, ar) are
compared member by member, other binaries by size and first differing byte, and with
``deep`` diffoscope is asked as well. Stored contents are only read where hashes differ;
every read goes through :func:`_load`, the one place a byte budget can apply.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

from recorder.model import FileEntry
from recorder.normalize import Normalizer, is_bookkeeping
from recorder.tape import Tape
from replay import diff_limits


@dataclass(frozen=True)
class ContentOptions:
    # Apply the normalisation rules (recorder/normalize.py) to contents before comparing.
    normalize: bool = True
    # Lines of unified diff kept per file; longer diffs are cut and say so.
    max_diff_lines: int = 60
    # Hand each pair of differing outputs to diffoscope, when it is installed.
    deep: bool = False


@dataclass
class FileChange:
    path: str
    status: str  # added | removed | changed
    sha256_a: str | None = None
    sha256_b: str | None = None
    detail: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Side:
    """One recording as content diffing sees it: its tape and its normaliser."""

    tape: Tape
    norm: Normalizer


def _load(side: Side, entry: FileEntry) -> bytes | None:
    if entry.blob is None:
        return None
    return side.tape.blob(entry.blob)


def _text_diff(a: bytes, b: bytes, name: str, limit: int) -> list[str] | None:
    # Within diff_limits' budgets: text up to MAX_TEXT_BYTES, near-linear alignment.
    ta, tb = diff_limits.as_text(a), diff_limits.as_text(b)
    if ta is None or tb is None:
        return None
    lines = diff_limits.unified_diff(ta, tb, f"a/{name}", f"b/{name}", n=2)
    if len(lines) > limit:
        lines = [*lines[:limit], f"... {len(lines) - limit} more diff lines not shown"]
    return lines


def _members(data: bytes, name: str) -> diff_limits.Members | None:
    """Archive members by name (zip, wheel, jar, tar[.gz|.bz2|.xz], ar) within the
    unpacking budget, or None."""
    return diff_limits.archive_members(data, name)


def _binary_detail(a: bytes, b: bytes) -> list[str]:
    first = diff_limits.first_difference(a, b)
    return [f"binary: {len(a)} -> {len(b)} bytes, first difference at offset {first}"]


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


def _content_detail(a: bytes, b: bytes, path: str, options: ContentOptions) -> list[str]:
    unpacked_a, unpacked_b = _members(a, path), _members(b, path)
    if unpacked_a is not None and unpacked_b is not None:
        members_a, members_b = unpacked_a.files, unpacked_b.files
        out = [f"not unpacked: {s}" for s in (*unpacked_a.skipped, *unpacked_b.skipped)]
        for name in sorted(set(members_a) | set(members_b)):
            ma, mb = members_a.get(name), members_b.get(name)
            if ma is None:
                out.append(f"member added: {name}")
            elif mb is None:
                out.append(f"member removed: {name}")
            elif ma != mb:
                text = _text_diff(ma, mb, f"{path}:{name}", options.max_diff_lines)
                out += [f"member changed: {name}", *(text or _binary_detail(ma, mb))]
        return out or ["archives differ only in metadata (order, timestamps, permissions)"]
    text = _text_diff(a, b, path, options.max_diff_lines)
    detail = text if text is not None else _binary_detail(a, b)
    if options.deep:
        detail += _diffoscope(a, b, path, options.max_diff_lines * 4)
    return detail


def compare_pair(
    sa: Side, sb: Side, ea: FileEntry, eb: FileEntry, options: ContentOptions
) -> list[str] | None:
    """How two versions of one file differ, or None when equal after normalisation."""
    if (ea.sha256, ea.link) == (eb.sha256, eb.link):
        return None
    if ea.link != eb.link:
        return [f"link: {ea.link} -> {eb.link}"]
    if ea.sha256 is None or eb.sha256 is None:
        # Listed only on one side (the build never opened it there): only sizes compare.
        if ea.size == eb.size:
            return None
        return [f"size {ea.size} -> {eb.size} bytes (content recorded on one side at most)"]
    for side, e in ((sa, ea), (sb, eb)):
        size = side.tape.reader.blob_size(e.blob) if e.blob is not None else 0
        if not diff_limits.loadable(size):
            return [diff_limits.too_large_note(size)]
    a, b = _load(sa, ea), _load(sb, eb)
    if a is None or b is None:
        return ["content not stored in both tapes: compared by sha256 only"]
    if options.normalize:
        a, b = sa.norm.content(a), sb.norm.content(b)
        if a == b:
            return None
    return _content_detail(a, b, ea.path, options)


def compare_files(
    sa: Side, sb: Side, a: list[FileEntry], b: list[FileEntry], options: ContentOptions
) -> list[FileChange]:
    """Files added, removed or changed between two listings, by path."""
    skip = is_bookkeeping if options.normalize else (lambda _path: False)
    ma = {e.path: e for e in a if e.change != "deleted" and not skip(e.path)}
    mb = {e.path: e for e in b if e.change != "deleted" and not skip(e.path)}
    out = []
    for path in sorted(set(ma) | set(mb)):
        ea, eb = ma.get(path), mb.get(path)
        if ea is None and eb is not None:
            out.append(FileChange(path, "added", None, eb.sha256))
        elif eb is None and ea is not None:
            out.append(FileChange(path, "removed", ea.sha256, None))
        elif ea is not None and eb is not None:
            detail = compare_pair(sa, sb, ea, eb, options)
            if detail is not None:
                out.append(FileChange(path, "changed", ea.sha256, eb.sha256, detail))
    return out
