"""Content diffing: what differs inside two versions of one file.

Text files get a unified diff (after normalisation, so workspace paths and temp names
inside a ``CMakeCache.txt`` are not differences), archives (zip, wheel, jar, tar, ar) are
compared member by member, other binaries by size and first differing byte, and with
``deep`` diffoscope is asked as well. Stored contents are only read where hashes differ;
every read goes through :func:`_load`, the one place a byte budget can apply.
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
from dataclasses import dataclass, field

from recorder.model import FileEntry
from recorder.normalize import Normalizer, is_bookkeeping
from recorder.reading import Tape


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
    members_a, members_b = _members(a, path), _members(b, path)
    if members_a is not None and members_b is not None:
        out = []
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
