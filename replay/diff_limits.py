"""Budgets for diffing contents from tapes: what ``diff`` reads, unpacks and aligns.

Contents come from tapes, and a tape is someone else's data: a 3 KB ``.tar.bz2`` can
inflate to gigabytes, and a line diff of two 300,000-line files is quadratic in
``difflib``. Content diffing therefore goes through three functions here, each with a
budget that says what it skipped instead of running out of memory or time:

- ``loadable(size)``: whether a stored file is small enough to read for a content diff;
- ``archive_members(data, name)``: an archive's members within ``MAX_ARCHIVE_BYTES`` and
  ``MAX_MEMBERS``, and a note for what was not unpacked;
- ``unified_diff(a, b, ...)``: difflib on the differing middle of two texts when it is
  small, else that middle shown whole (near-linear), saying so;
- ``align(a, b)``: the same for any two sequences (argv): difflib's opcodes on a small
  differing middle, else that middle as one replacement, with ``aligned`` False.
"""

from __future__ import annotations

import difflib
import io
import re
import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field

# A stored file larger than this is compared by sha256 only.
MAX_CONTENT_BYTES = 256 * 1024**2
# Decompressed bytes unpacked from one archive, and members listed from it.
MAX_ARCHIVE_BYTES = 64 * 1024**2
MAX_MEMBERS = 10_000
# Text larger than this (per side) is not diffed line by line.
MAX_TEXT_BYTES = 16 * 1024**2
# difflib runs when (differing lines of a) x (differing lines of b) is at most this.
MAX_ALIGN_WORK = 4_000_000


def loadable(size: int) -> bool:
    return size <= MAX_CONTENT_BYTES


def too_large_note(size: int) -> str:
    return (
        f"content of {size} bytes is over the {MAX_CONTENT_BYTES}-byte diff budget: "
        "compared by sha256 only"
    )


@dataclass
class Members:
    """An archive's members by name, and what the budget left out."""

    files: dict[str, bytes] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _zip(data: bytes) -> Members:
    out = Members()
    left = MAX_ARCHIVE_BYTES
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = [i for i in z.infolist() if not i.is_dir()]
        if len(infos) > MAX_MEMBERS:
            out.skipped.append(f"{len(infos) - MAX_MEMBERS} members past the first {MAX_MEMBERS}")
            infos = infos[:MAX_MEMBERS]
        for info in infos:
            if info.file_size > left:
                out.skipped.append(f"member {info.filename}: {info.file_size} bytes, over budget")
                continue
            with z.open(info) as f:
                body = f.read(left + 1)
            if len(body) > left:
                out.skipped.append(f"member {info.filename}: larger than it declares")
                continue
            left -= len(body)
            out.files[info.filename] = body
    return out


def _ar(data: bytes) -> Members:
    out = Members()
    pos = 8
    while pos + 60 <= len(data) and len(out.files) < MAX_MEMBERS:
        header = data[pos : pos + 60]
        member = header[:16].decode(errors="replace").strip().rstrip("/")
        size = int(header[48:58].decode().strip() or 0)
        if size < 0:
            raise ValueError("negative ar member size")
        out.files[member or f"#{len(out.files)}"] = data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)
    if pos + 60 <= len(data):
        out.skipped.append(f"members past the first {MAX_MEMBERS}")
    return out


def _tar(data: bytes) -> Members:
    """Members read one header at a time, stopping before the budget is decompressed."""
    out = Members()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as t:
        while True:
            member = t.next()
            if member is None:
                break
            if member.offset_data + member.size > MAX_ARCHIVE_BYTES:
                out.skipped.append(
                    f"member {member.name} and the rest: past the {MAX_ARCHIVE_BYTES}-byte budget"
                )
                break
            if len(out.files) >= MAX_MEMBERS:
                out.skipped.append(f"members past the first {MAX_MEMBERS}")
                break
            if member.isfile():
                f = t.extractfile(member)
                out.files[member.name] = f.read() if f is not None else b""
    return out


def archive_members(data: bytes, name: str) -> Members | None:
    """Members of a zip, wheel, jar, ar or tar[.gz|.bz2|.xz], within budget; None if
    ``data`` is not such an archive."""
    try:
        if name.endswith((".zip", ".whl", ".jar")) or data[:4] == b"PK\x03\x04":
            return _zip(data)
        if data[:8] == b"!<arch>\n":
            return _ar(data)
        if ".tar" in name or name.endswith((".tgz", ".tbz2", ".txz")):
            return _tar(data)
    except (zipfile.BadZipFile, tarfile.TarError, ValueError, OSError, EOFError, LookupError):
        return None
    return None


def as_text(data: bytes) -> list[str] | None:
    """``data`` as lines when it is text (UTF-8 without NUL) small enough to diff."""
    if len(data) > MAX_TEXT_BYTES:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\0" in text else text.splitlines()


def _common_ends(a: Sequence[object], b: Sequence[object]) -> tuple[int, int]:
    """How many items ``a`` and ``b`` share at their start, and then at their end (linear)."""
    head = 0
    while head < len(a) and head < len(b) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < len(a) - head and tail < len(b) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    return head, tail


Opcode = tuple[str, int, int, int, int]


@dataclass(frozen=True)
class Alignment:
    """How ``b`` differs from ``a``, as difflib's opcodes (equal blocks left out).

    ``aligned`` is False when the differing middle was too large for difflib: it is then
    one ``replace`` (or ``delete``/``insert``) of the whole middle, and a caller says so.
    """

    opcodes: list[Opcode]
    aligned: bool
    differing_a: int  # items of a and of b in the differing middle
    differing_b: int


def align(a: Sequence[str], b: Sequence[str], max_work: int = MAX_ALIGN_WORK) -> Alignment:
    """The differences between ``a`` and ``b`` in near-linear time (see ``unified_diff``)."""
    if len(a) * len(b) <= max_work:  # small: difflib on the whole, as it always was
        head, tail = 0, 0
    else:
        head, tail = _common_ends(a, b)
    end_a, end_b = len(a) - tail, len(b) - tail
    n_a, n_b = end_a - head, end_b - head
    if n_a * n_b <= max_work:
        matcher = difflib.SequenceMatcher(a=a[head:end_a], b=b[head:end_b], autojunk=False)
        ops: list[Opcode] = [
            (op, i1 + head, i2 + head, j1 + head, j2 + head)
            for op, i1, i2, j1, j2 in matcher.get_opcodes()
            if op != "equal"
        ]
        return Alignment(ops, True, n_a, n_b)
    tag = "replace" if n_a and n_b else "delete" if n_a else "insert"
    return Alignment([(tag, head, end_a, head, end_b)], False, n_a, n_b)


_HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@")


def unified_diff(a: list[str], b: list[str], from_name: str, to_name: str, n: int = 2) -> list[str]:
    """A unified diff of ``a`` and ``b`` in near-linear time.

    The common head and tail are skipped first (linear); difflib aligns the middle when
    it is small enough, otherwise the middle is shown whole as one hunk, with a line that
    says the text was too large to align.
    """
    head, tail = _common_ends(a, b)
    mid_a, mid_b = a[head : len(a) - tail], b[head : len(b) - tail]
    if not mid_a and not mid_b:
        return []
    lo = max(0, head - n)
    if len(mid_a) * len(mid_b) <= MAX_ALIGN_WORK:
        lines = list(
            difflib.unified_diff(
                a[lo : len(a) - tail + n], b[lo : len(b) - tail + n],
                from_name, to_name, lineterm="", n=n,
            )
        )  # fmt: skip
        return [_shift(line, lo) for line in lines]
    ctx_before = a[lo:head]
    ctx_after = a[len(a) - tail : len(a) - tail + n]
    size_a, size_b = (
        len(ctx_before) + len(mid_a) + len(ctx_after),
        len(ctx_before) + len(mid_b) + len(ctx_after),
    )
    return [
        f"--- {from_name}",
        f"+++ {to_name}",
        f"@@ -{lo + 1},{size_a} +{lo + 1},{size_b} @@ "
        f"(too large to align line by line: {len(mid_a)} and {len(mid_b)} differing lines "
        "shown whole)",
        *(f" {x}" for x in ctx_before),
        *(f"-{x}" for x in mid_a),
        *(f"+{x}" for x in mid_b),
        *(f" {x}" for x in ctx_after),
    ]


def _shift(line: str, by: int) -> str:
    """A hunk header of a diff of slices starting at ``by``, renumbered for the whole."""
    if not by or not line.startswith("@@"):
        return line
    m = _HUNK.match(line)
    if m is None:
        return line
    a_start, a_len, b_start, b_len = m.groups()
    rest = line[m.end() :]
    return f"@@ -{int(a_start) + by}{a_len or ''} +{int(b_start) + by}{b_len or ''} @@{rest}"


def first_difference(a: bytes, b: bytes) -> int:
    """The offset of the first differing byte (the shorter length if one is a prefix),
    found a block at a time: linear, and fast on large binaries."""
    block = 1 << 16
    n = min(len(a), len(b))
    at = 0
    while at < n and a[at : at + block] == b[at : at + block]:
        at += block
    end = min(at + block, n)
    while at < end and a[at] == b[at]:
        at += 1
    return min(at, n)
