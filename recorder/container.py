"""The tape container: a seekable ``.tar.zst`` with a checksummed index.

Layout (specified in docs/tape-format.md)::

    frame: pack 0   tar members blobs/ab/<sha256> ...   zstd frames, checksummed
    frame: pack 1   ...
    frame: tar member manifest.json  (with the blob table under "_tape")
    frame: tar end-of-archive (two zero blocks)
    skippable frame: index JSON, sha256(index), len(index), MAGIC

Every frame decompresses to whole tar members, so ``zstd -dc x.tape | tar -x`` unpacks a
tape with standard tools. Small blobs share a frame (a *pack*) so that similar files
compress together, as they would in one tar.gz; the reader seeks straight to the one pack
it needs through the blob table, and never decompresses a pack to read the manifest.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import struct
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, cast

import zstandard

from recorder.background import Background
from recorder.errors import TapeError, TapeNotFound, TapeNotWritten

FORMAT_NAME = "buildtape-tape"
FORMAT_VERSION = "1.4"
SUPPORTED_MAJOR = 1
MAGIC = b"BTAPEIDX"
TABLE_KEY = "_tape"
_TRAILER = struct.Struct("<32sQ8s")  # sha256(index), len(index), MAGIC
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_SKIPPABLE_MAGIC = 0x184D2A5B
_BLOCK = 512

# Blobs up to PACK_MEMBER_MAX share packs of about PACK_TARGET uncompressed bytes.
PACK_TARGET = 4 * 1024**2
PACK_MEMBER_MAX = 1024**2
# Packs waiting for the background compressor before the writer waits for it.
_MAX_QUEUED = 2

# Decompression-bomb limits: nothing is decompressed past its declared size, and
# declared sizes above these are refused before any decompression starts.
MAX_PACK_SIZE = 2 * 1024**3 + 2 * _BLOCK
MAX_MANIFEST_SIZE = 512 * 1024**2
MAX_INDEX_SIZE = 1024**2
# Packs larger than this (a large file's pack of its own) are read as a stream.
STREAM_PACK_SIZE = 64 * 1024**2
_STREAM_CHUNK = 1024**2


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _padded(size: int) -> int:
    return size + ((-size) % _BLOCK)


def _tar_member(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    info.uname = info.gname = ""
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    return header + data + b"\0" * (_padded(len(data)) - len(data))


def _member_size(data: bytes) -> int:
    """A blob's member in a pack: one ustar header block (its name is always short), then
    the data padded to whole blocks."""
    return _BLOCK + _padded(len(data))


# (sha256, data) of the blobs of one pack, in order.
_Members = list[tuple[str, bytes]]


def _blob_member_name(digest: str) -> str:
    return f"blobs/{digest[:2]}/{digest}"


class _PackQueue:
    """Compresses and writes full packs in one background thread, in the order given.

    zstd releases the GIL, so a pack compresses while the recorder hashes the next
    files or the build runs. ``wait`` returns once every pack is written and re-raises
    the first write error. At most ``_MAX_QUEUED`` packs wait, so a workspace that hashes
    faster than it compresses is held back instead of piling up in memory.
    """

    def __init__(self, write: Callable[[_Members, int], None]) -> None:
        self._write = write
        self._jobs: list[tuple[_Members, int]] = []
        self._cond = threading.Condition()
        self._busy = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def put(self, members: _Members, size: int) -> None:
        with self._cond:
            while len(self._jobs) >= _MAX_QUEUED:
                self._cond.wait()
            self._jobs.append((members, size))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="buildtape-packs", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    self._busy = False
                    self._cond.notify_all()
                    self._cond.wait()
                self._busy = True
                members, size = self._jobs.pop(0)
                self._cond.notify_all()
            if self._error is None:
                try:
                    self._write(members, size)
                except BaseException as exc:  # re-raised by wait(), in the writer's thread
                    self._error = exc

    def wait(self) -> None:
        with self._cond:
            while self._jobs or self._busy:
                self._cond.wait()
        if self._error is not None:
            raise self._error


class TapeWriter:
    """Writes a tape to a temporary name beside ``path``; ``commit`` renames it.

    A writer that is never committed (an exception, a killed process) leaves no
    file under the final name.
    """

    def __init__(self, path: Path, level: int = 3) -> None:
        self.path = path
        self._compressor = zstandard.ZstdCompressor(
            level=level, write_checksum=True, write_content_size=True
        )
        # The manifest is small and read first: worth the stronger level.
        self._manifest_compressor = zstandard.ZstdCompressor(
            level=max(level, 9), write_checksum=True, write_content_size=True
        )
        # digest -> [pack index, member offset in the pack, size]
        self._blobs: dict[str, list[int]] = {}
        # [frame offset, frame length, uncompressed size]
        self._packs: list[list[int]] = []
        self._sealed = 0  # packs handed to the queue, written or not
        self._queue = _PackQueue(self._write_pack)
        self._pending: _Members = []
        self._pending_size = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        self._tmp = Path(tmp)
        # Held until the file is closed: `buildtape gc` leaves a locked partial (and the
        # tape it will become) alone, and removes only partials a killed recorder left.
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._file: IO[bytes] = os.fdopen(fd, "wb")
        self._offset = 0
        self._closed = False
        # The sha256 of the manifest this writer committed, from the bytes it wrote (never
        # read back from disk, where another process could have put a different tape).
        self.manifest_sha256: str | None = None

    @property
    def temporary_path(self) -> Path:
        return self._tmp

    def _write_frame(self, data: bytes, compressor: Any = None) -> tuple[int, int]:
        frame = (compressor or self._compressor).compress(data)
        offset = self._offset
        self._file.write(frame)
        self._offset += len(frame)
        return offset, len(frame)

    def _write_pack(self, members: _Members, size: int) -> None:
        # The tar headers are made here, in the queue's thread, off the recorder's path.
        data = b"".join(_tar_member(_blob_member_name(d), blob) for d, blob in members)
        assert len(data) == size, "a blob member is not the size add_blob counted"
        offset, length = self._write_frame(data)
        self._packs.append([offset, length, size])

    def _write_failed(self, exc: OSError) -> TapeNotWritten:
        self.abort()
        if exc.errno == errno.ENOENT:  # the build removed the directory the tape goes to
            advice = "its directory was removed while the build ran; choose another place with -o"
        else:
            advice = "free some space or choose another place with -o"
        return TapeNotWritten(f"could not write tape {self.path}: {exc.strerror or exc}; {advice}")

    def flush(self) -> None:
        """Start compressing the blobs added so far, in the background.

        Call it when a batch of blobs is complete (the workspace before the build, the
        outputs after it) so that their compression overlaps what comes next.
        """
        if not self._pending:
            return
        self._queue.put(self._pending, self._pending_size)
        self._sealed += 1
        self._pending = []
        self._pending_size = 0

    def add_blob(self, data: bytes, sha256: str | None = None) -> str:
        """Store ``data`` once and return its sha256, the name it is referred to by.

        ``sha256`` is the caller's digest of ``data`` when it has one, to hash only once.
        """
        digest = sha256 or sha256_hex(data)
        if digest in self._blobs:
            return digest
        size = _member_size(data)
        if len(data) > PACK_MEMBER_MAX:
            self.flush()
            self._pending = [(digest, data)]
            self._pending_size = size
            self._blobs[digest] = [self._sealed, 0, len(data)]
            self.flush()
            return digest
        if self._pending_size + size > PACK_TARGET:
            self.flush()
        self._blobs[digest] = [self._sealed, self._pending_size, len(data)]
        self._pending.append((digest, data))
        self._pending_size += size
        return digest

    def commit(
        self, manifest: dict[str, Any], alongside: Callable[[], object] | None = None
    ) -> Path:
        """Write the manifest (with the blob table) and the index, fsync, rename.

        ``alongside`` runs in a thread while the file is synced, the slowest step on a VM's
        disk (10-70 ms): the history index is written then, not after. It must not need
        the tape on disk under its final name; its error, if any, is raised after the rename.
        """
        if self._closed:
            raise TapeError(f"tape {self.path} was already closed")
        self.flush()
        try:
            self._queue.wait()
        except OSError as exc:
            raise self._write_failed(exc) from exc
        table = {"packs": self._packs, "blobs": dict(sorted(self._blobs.items()))}
        body = json.dumps(
            {**manifest, TABLE_KEY: table}, sort_keys=True, separators=(",", ":")
        ).encode()
        try:
            m_offset, m_length = self._write_frame(
                _tar_member("manifest.json", body), self._manifest_compressor
            )
            self._write_frame(b"\0" * (2 * _BLOCK))
        except OSError as exc:
            raise self._write_failed(exc) from exc
        digest = sha256_hex(body)
        index = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "manifest": {
                "offset": m_offset,
                "length": m_length,
                "size": len(body),
                "sha256": digest,
            },
        }
        raw = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
        payload = raw + _TRAILER.pack(hashlib.sha256(raw).digest(), len(raw), MAGIC)
        try:
            self._file.write(struct.pack("<II", _SKIPPABLE_MAGIC, len(payload)) + payload)
            self._file.flush()
            mask = os.umask(0)
            os.umask(mask)
            os.fchmod(self._file.fileno(), 0o666 & ~mask)
            side = Background(alongside, "alongside") if alongside is not None else None
            try:
                os.fsync(self._file.fileno())
                self._file.close()
                self._closed = True
                os.replace(self._tmp, self.path)
            finally:
                if side is not None:
                    side.wait()
        except OSError as exc:
            raise self._write_failed(exc) from exc
        self.manifest_sha256 = digest
        if side is not None:
            side.result()
        return self.path

    def abort(self) -> None:
        """Discard the temporary file; safe to call more than once."""
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):  # the error, if any, is being raised already
                self._queue.wait()
            with contextlib.suppress(OSError):
                self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()


@dataclass(frozen=True)
class _Pack:
    offset: int
    length: int
    size: int


class TapeReader:
    """Reads and verifies one tape. Every failure is a ``TapeError`` naming the tape.

    Opening reads the trailer, the index and the manifest frame, nothing else.
    """

    def __init__(self, path: Path, index_only: bool = False) -> None:
        """``index_only``: read the trailer and index alone (for ``manifest_sha256``)."""
        self.path = path
        try:
            self._file: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed in close()
        except FileNotFoundError:
            raise TapeNotFound(f"no tape at {path}; check the path") from None
        except IsADirectoryError:
            raise TapeError(f"{path} is a directory, not a tape") from None
        except OSError as exc:
            raise TapeError(f"cannot open tape {path}: {exc.strerror}") from None
        self._decompressor = zstandard.ZstdDecompressor()
        self._cached: tuple[int, bytes] | None = None
        try:
            self._size = os.fstat(self._file.fileno()).st_size
            self._index = self._read_index()
            self._manifest = {} if index_only else self._read_manifest()
        except BaseException:
            self._file.close()
            raise

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> TapeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fail(self, what: str) -> TapeError:
        return TapeError(f"{self.path} is not a readable tape: {what}")

    def _read_at(self, offset: int, length: int) -> bytes:
        self._file.seek(offset)
        data = self._file.read(length)
        if len(data) != length:
            raise self._fail("it is truncated (re-record it or copy it again)")
        return data

    def _read_index(self) -> dict[str, Any]:
        if self._size < len(_ZSTD_MAGIC) + _TRAILER.size + 8:
            raise self._fail("it is too short to be a tape (truncated or empty)")
        if self._read_at(0, 4) != _ZSTD_MAGIC:
            raise self._fail("it does not start with a zstd frame")
        digest, length, magic = _TRAILER.unpack(
            self._read_at(self._size - _TRAILER.size, _TRAILER.size)
        )
        if magic != MAGIC:
            raise self._fail("its index trailer is missing, so it is truncated or not a tape")
        if length > MAX_INDEX_SIZE or length > self._size - _TRAILER.size - 8:
            raise self._fail("its index length is out of range")
        start = self._size - _TRAILER.size - length
        raw = self._read_at(start, length)
        if hashlib.sha256(raw).digest() != digest:
            raise self._fail("the index checksum does not match (the file is corrupt)")
        head = struct.unpack("<II", self._read_at(start - 8, 8))
        if head != (_SKIPPABLE_MAGIC, length + _TRAILER.size):
            raise self._fail("the index frame header is corrupt")
        self._data_end = start - 8
        try:
            index = _load_json(raw, "the index")
        except ValueError:
            raise self._fail("the index is not valid JSON") from None
        if not isinstance(index, dict) or index.get("format") != FORMAT_NAME:
            raise self._fail("the index does not name the buildtape tape format")
        version = str(index.get("format_version", ""))
        major = version.split(".", 1)[0]
        if len(version) > 32 or not major.isdigit() or int(major) != SUPPORTED_MAJOR:
            version = version if len(version) <= 32 else f"{version[:32]}..."
            raise TapeError(
                f"{self.path} uses tape format {version or '?'}, but this buildtape reads "
                f"format {SUPPORTED_MAJOR}.x; upgrade buildtape to read it"
            )
        m = index.get("manifest")
        fields = ("offset", "length", "size")
        if not isinstance(m, dict) or not all(_count(m.get(k)) for k in fields):
            raise self._fail("the index does not locate the manifest")
        if m["offset"] + m["length"] > self._data_end:
            raise self._fail("the manifest lies past the data (truncated)")
        if m["size"] > MAX_MANIFEST_SIZE:
            raise self._fail(f"the manifest declares {m['size']} bytes, over the limit")
        return index

    def _frame(self, offset: int, length: int, expected: int, what: str) -> bytes:
        """Decompress one frame, refusing it unless it declares exactly ``expected`` bytes."""
        frame = self._read_at(offset, length)
        try:
            declared = zstandard.frame_content_size(frame)
        except zstandard.ZstdError:
            raise self._fail(f"{what} is not a zstd frame (the file is corrupt)") from None
        if declared != expected:
            raise self._fail(f"{what} declares {declared} bytes, expected {expected}")
        try:
            out = self._decompressor.decompress(frame, max_output_size=expected)
        except zstandard.ZstdError as exc:
            raise self._fail(f"{what} does not decompress ({exc}); the file is corrupt") from None
        if len(out) != expected:
            raise self._fail(f"{what} decompressed to the wrong size")
        return out

    def _member(self, data: bytes, at: int, size: int, name: str) -> bytes:
        header = data[at : at + _BLOCK]
        try:
            info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
        except tarfile.TarError:
            raise self._fail(f"{name} has a corrupt tar header") from None
        if info.name != name or info.size != size:
            raise self._fail(f"member {info.name!r} found where {name!r} was expected")
        return data[at + _BLOCK : at + _BLOCK + size]

    def _read_manifest(self) -> dict[str, Any]:
        m = self._index["manifest"]
        size = int(m["size"])
        frame = self._frame(m["offset"], m["length"], _BLOCK + _padded(size), "manifest.json")
        body = self._member(frame, 0, size, "manifest.json")
        if sha256_hex(body) != m["sha256"]:
            raise self._fail("the manifest checksum does not match (the file is corrupt)")
        try:
            manifest = _load_json(body, "the manifest")
        except ValueError as exc:
            raise self._fail(f"the manifest is not valid JSON ({exc})") from None
        if not isinstance(manifest, dict):
            raise self._fail("the manifest is not a JSON object")
        table = manifest.pop(TABLE_KEY, None)
        self._packs, self._blobs = self._check_table(table, m["offset"])
        return manifest

    def _check_table(
        self, table: object, manifest_offset: int
    ) -> tuple[list[_Pack], dict[str, tuple[int, int, int]]]:
        if not isinstance(table, dict):
            raise self._fail("the manifest lacks its blob table")
        packs_raw, blobs_raw = table.get("packs"), table.get("blobs")
        if not isinstance(packs_raw, list) or not isinstance(blobs_raw, dict):
            raise self._fail("the blob table is malformed")
        packs = []
        for entry in packs_raw:
            if not (isinstance(entry, list) and len(entry) == 3 and all(map(_count, entry))):
                raise self._fail("a pack entry is malformed")
            pack = _Pack(*entry)
            if pack.offset + pack.length > manifest_offset:
                raise self._fail("a pack lies past the data (truncated)")
            if pack.size > MAX_PACK_SIZE:
                raise self._fail(f"a pack declares {pack.size} bytes, over the limit")
            packs.append(pack)
        blobs = {}
        sizes = [p.size for p in packs]
        for digest, entry in blobs_raw.items():
            try:
                pack_i, at, size = entry
                ok = (
                    type(pack_i) is int
                    and type(at) is int
                    and type(size) is int
                    and 0 <= pack_i < len(sizes)
                    and at >= 0
                    and size >= 0
                    and at + _BLOCK + size <= sizes[pack_i]
                )
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise self._fail(
                    f"blob {str(digest)[:12]} has a malformed entry or lies outside its pack"
                )
            blobs[digest] = (pack_i, at, size)
        return packs, blobs

    @property
    def format_version(self) -> str:
        return str(self._index["format_version"])

    @property
    def manifest_sha256(self) -> str:
        """The manifest's checksum, as the index records it: the tape's identity."""
        return str(self._index["manifest"].get("sha256", ""))

    @property
    def manifest_frame_length(self) -> int:
        return int(self._index["manifest"]["length"])

    def read_manifest(self) -> dict[str, Any]:
        """The manifest as stored, without the blob table. Callers own the returned dict:
        it is parsed once per reader, and a caller that changes it changes only its copy."""
        manifest, self._manifest = self._manifest, {}
        if not manifest:
            manifest = self._parse_manifest_again()
        return manifest

    def _parse_manifest_again(self) -> dict[str, Any]:
        return self._read_manifest()

    def blob_digests(self) -> list[str]:
        return sorted(self._blobs)

    def blob_size(self, digest: str) -> int:
        entry = self._blobs.get(digest)
        if entry is None:
            raise self._fail(f"blob {digest[:12]} is referenced but not stored")
        return entry[2]

    def _pack(self, index: int) -> bytes:
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        pack = self._packs[index]
        data = self._frame(pack.offset, pack.length, pack.size, f"pack {index}")
        self._cached = (index, data)
        return data

    def read_blob(self, digest: str) -> bytes:
        entry = self._blobs.get(digest)
        if entry is None:
            raise self._fail(f"blob {digest[:12]} is referenced but not stored")
        pack_i, at, size = entry
        data = self._member(self._pack(pack_i), at, size, _blob_member_name(digest))
        if sha256_hex(data) != digest:
            raise self._fail(f"blob {digest[:12]} fails its checksum (the file is corrupt)")
        return data

    def copy_blob(self, digest: str, out: Writable) -> int:
        """Write one blob to ``out`` and return its size, in bounded memory for large blobs.

        A blob in a pack larger than ``STREAM_PACK_SIZE`` (a large file has a pack of its
        own) is decompressed and hashed as it is written, never held whole; a checksum
        failure is raised after the write, so the caller removes what it wrote.
        """
        entry = self._blobs.get(digest)
        if entry is None:
            raise self._fail(f"blob {digest[:12]} is referenced but not stored")
        pack_i, at, size = entry
        if self._packs[pack_i].size <= STREAM_PACK_SIZE:
            data = self.read_blob(digest)
            out.write(data)
            return len(data)
        hasher = hashlib.sha256()
        for chunk in self._stream_member(pack_i, at, size, _blob_member_name(digest)):
            hasher.update(chunk)
            out.write(chunk)
        if hasher.hexdigest() != digest:
            raise self._fail(f"blob {digest[:12]} fails its checksum (the file is corrupt)")
        return size

    def _stream_member(self, pack_i: int, at: int, size: int, name: str) -> Iterator[bytes]:
        """The bytes of one member of a large pack, decompressed a piece at a time."""
        pack = self._packs[pack_i]
        self._file.seek(pack.offset)
        head = self._file.read(min(pack.length, 18))
        try:
            declared = zstandard.frame_content_size(head)
        except zstandard.ZstdError:
            raise self._fail(f"pack {pack_i} is not a zstd frame (the file is corrupt)") from None
        if declared != pack.size:
            raise self._fail(f"pack {pack_i} declares {declared} bytes, expected {pack.size}")
        self._file.seek(pack.offset)
        source = _Region(self._file, pack.length)
        reader = self._decompressor.stream_reader(cast(IO[bytes], source), read_across_frames=False)
        try:
            skip = at
            while skip:
                got = reader.read(min(skip, _STREAM_CHUNK))
                if not got:
                    raise self._fail(f"pack {pack_i} decompressed to the wrong size")
                skip -= len(got)
            header = reader.read(_BLOCK)
            try:
                info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
            except tarfile.TarError:
                raise self._fail(f"{name} has a corrupt tar header") from None
            if info.name != name or info.size != size:
                raise self._fail(f"member {info.name!r} found where {name!r} was expected")
            left = size
            while left:
                got = reader.read(min(left, _STREAM_CHUNK))
                if not got:
                    raise self._fail(f"pack {pack_i} decompressed to the wrong size")
                left -= len(got)
                yield got
        except zstandard.ZstdError as exc:
            raise self._fail(
                f"pack {pack_i} does not decompress ({exc}); the file is corrupt"
            ) from None

    def verify(self) -> int:
        """Check every pack and every blob; return the number of blobs checked.

        Large packs are checked as a stream, so verifying needs memory for one small pack.
        """
        by_pack = sorted(self._blobs, key=lambda d: self._blobs[d][:2])
        large = {i for i, p in enumerate(self._packs) if p.size > STREAM_PACK_SIZE}
        sink = _Discard()
        for digest in by_pack:
            if self._blobs[digest][0] in large:
                self.copy_blob(digest, sink)
            else:
                self.read_blob(digest)
        for i in range(len(self._packs)):
            if i not in large:
                self._pack(i)
        return len(by_pack)


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _Region:
    """At most ``length`` bytes of ``file`` from where it stands: one frame for zstd."""

    def __init__(self, file: IO[bytes], length: int) -> None:
        self._file = file
        self._left = length

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        data = self._file.read(n)
        self._left -= len(data)
        return data


class _Discard:
    """A file that keeps nothing (verify streams large blobs through it)."""

    def write(self, data: bytes) -> int:
        return len(data)


def _load_json(raw: bytes, what: str) -> Any:
    from recorder.trust import load_json  # trust.py needs TapeError from this module

    return load_json(raw, what)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
