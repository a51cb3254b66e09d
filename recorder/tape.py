"""The tape container: a seekable ``.tar.zst`` with a checksummed index.

Layout (specified in docs/tape-format.md)::

    frame: tar member blobs/ab/<sha256>   one zstd frame per member, checksummed
    ...
    frame: tar member manifest.json
    frame: tar end-of-archive (two zero blocks)
    skippable frame: index JSON, sha256(index), len(index), MAGIC

Every zstd frame decompresses to one tar member, so ``zstd -dc x.tape | tar -x``
unpacks a tape with standard tools, while this reader seeks straight to the one
frame it needs through the index and never decompresses blobs to read the manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import zstandard

FORMAT_NAME = "buildtape-tape"
FORMAT_VERSION = "1.0"
SUPPORTED_MAJOR = 1
MAGIC = b"BTAPEIDX"
_TRAILER = struct.Struct("<32sQ8s")  # sha256(index), len(index), MAGIC
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_SKIPPABLE_MAGIC = 0x184D2A5B
_BLOCK = 512

# Decompression-bomb limits: nothing is decompressed past its declared size, and
# declared sizes above these are refused before any decompression starts.
MAX_BLOB_SIZE = 2 * 1024**3
MAX_MANIFEST_SIZE = 512 * 1024**2
MAX_INDEX_SIZE = 256 * 1024**2


class TapeError(Exception):
    """A tape cannot be read or written; the message says what and what to do."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tar_member(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    info.uname = info.gname = ""
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    pad = (-len(data)) % _BLOCK
    return header + data + b"\0" * pad


def _blob_member_name(digest: str) -> str:
    return f"blobs/{digest[:2]}/{digest}"


@dataclass(frozen=True)
class _Entry:
    offset: int
    length: int
    size: int


class TapeWriter:
    """Writes a tape to a temporary name beside ``path``; ``commit`` renames it.

    A writer that is never committed (an exception, a killed process) leaves no
    file under the final name.
    """

    def __init__(self, path: Path, level: int = 9) -> None:
        self.path = path
        self._compressor = zstandard.ZstdCompressor(
            level=level, write_checksum=True, write_content_size=True
        )
        self._blobs: dict[str, _Entry] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        self._tmp = Path(tmp)
        self._file: IO[bytes] = os.fdopen(fd, "wb")
        self._offset = 0
        self._closed = False

    @property
    def temporary_path(self) -> Path:
        return self._tmp

    def _write_frame(self, member: bytes) -> tuple[int, int]:
        frame = self._compressor.compress(member)
        offset = self._offset
        try:
            self._file.write(frame)
        except OSError as exc:
            raise self._write_failed(exc) from exc
        self._offset += len(frame)
        return offset, len(frame)

    def _write_failed(self, exc: OSError) -> TapeError:
        self.abort()
        return TapeError(
            f"could not write tape {self.path}: {exc.strerror or exc}; "
            "free some space or choose another place with -o"
        )

    def add_blob(self, data: bytes) -> str:
        """Store ``data`` once and return its sha256, the name it is referred to by."""
        digest = sha256_hex(data)
        if digest not in self._blobs:
            offset, length = self._write_frame(_tar_member(_blob_member_name(digest), data))
            self._blobs[digest] = _Entry(offset, length, len(data))
        return digest

    def has_blob(self, digest: str) -> bool:
        return digest in self._blobs

    def commit(self, manifest: dict[str, Any]) -> Path:
        """Write the manifest and index, fsync, and rename to the final name."""
        if self._closed:
            raise TapeError(f"tape {self.path} was already closed")
        try:
            body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
            m_offset, m_length = self._write_frame(_tar_member("manifest.json", body))
            self._write_frame(b"\0" * (2 * _BLOCK))
            index = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "manifest": {
                    "offset": m_offset,
                    "length": m_length,
                    "size": len(body),
                    "sha256": sha256_hex(body),
                },
                "blobs": {d: [e.offset, e.length, e.size] for d, e in sorted(self._blobs.items())},
            }
            raw = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
            payload = raw + _TRAILER.pack(hashlib.sha256(raw).digest(), len(raw), MAGIC)
            self._file.write(struct.pack("<II", _SKIPPABLE_MAGIC, len(payload)) + payload)
            self._file.flush()
            mask = os.umask(0)
            os.umask(mask)
            os.fchmod(self._file.fileno(), 0o666 & ~mask)
            os.fsync(self._file.fileno())
            self._file.close()
            self._closed = True
            os.replace(self._tmp, self.path)
        except OSError as exc:
            raise self._write_failed(exc) from exc
        return self.path

    def abort(self) -> None:
        """Discard the temporary file; safe to call more than once."""
        if not self._closed:
            self._closed = True
            with contextlib.suppress(OSError):
                self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()


class TapeReader:
    """Reads and verifies one tape. Every failure is a ``TapeError`` naming the tape."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed in close()
        except FileNotFoundError:
            raise TapeError(f"no tape at {path}; check the path") from None
        except IsADirectoryError:
            raise TapeError(f"{path} is a directory, not a tape") from None
        except OSError as exc:
            raise TapeError(f"cannot open tape {path}: {exc.strerror}") from None
        try:
            self._size = os.fstat(self._file.fileno()).st_size
            self._index = self._read_index()
        except BaseException:
            self._file.close()
            raise
        self._decompressor = zstandard.ZstdDecompressor()

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
            index = json.loads(raw)
        except ValueError:
            raise self._fail("the index is not valid JSON") from None
        if not isinstance(index, dict) or index.get("format") != FORMAT_NAME:
            raise self._fail("the index does not name the buildtape tape format")
        version = str(index.get("format_version", ""))
        major = version.split(".", 1)[0]
        if not major.isdigit() or int(major) != SUPPORTED_MAJOR:
            raise TapeError(
                f"{self.path} uses tape format {version or '?'}, but this buildtape reads "
                f"format {SUPPORTED_MAJOR}.x; upgrade buildtape to read it"
            )
        self._check_entries(index)
        return index

    def _check_entries(self, index: dict[str, Any]) -> None:
        manifest = index.get("manifest")
        blobs = index.get("blobs")
        if not isinstance(manifest, dict) or not isinstance(blobs, dict):
            raise self._fail("the index lacks its manifest or blob table")
        entries = [(manifest.get("offset"), manifest.get("length"), manifest.get("size"))]
        entries += [tuple(v) if isinstance(v, list) else (None,) for v in blobs.values()]
        total = 0
        for entry in entries:
            if len(entry) != 3 or not all(isinstance(x, int) and x >= 0 for x in entry):
                raise self._fail("an index entry is malformed")
            offset, length, size = entry
            assert isinstance(offset, int) and isinstance(length, int) and isinstance(size, int)
            if offset + length > self._data_end:
                raise self._fail("an index entry points past the data (truncated)")
            if size > MAX_BLOB_SIZE:
                raise self._fail(f"a blob declares {size} bytes, over the {MAX_BLOB_SIZE} limit")
            total += size
        if int(manifest["size"]) > MAX_MANIFEST_SIZE:
            raise self._fail("the manifest declares a size over the limit")

    @property
    def format_version(self) -> str:
        return str(self._index["format_version"])

    def blob_digests(self) -> list[str]:
        return sorted(self._index["blobs"])

    def blob_size(self, digest: str) -> int:
        entry = self._index["blobs"].get(digest)
        if entry is None:
            raise self._fail(f"blob {digest[:12]} is referenced but not stored")
        return int(entry[2])

    def _member(self, offset: int, length: int, size: int, name: str) -> bytes:
        frame = self._read_at(offset, length)
        expected = _BLOCK + size + ((-size) % _BLOCK)
        try:
            declared = zstandard.frame_content_size(frame)
        except zstandard.ZstdError:
            raise self._fail(f"{name} is not a zstd frame (the file is corrupt)") from None
        if declared != expected:
            raise self._fail(f"{name} declares {declared} bytes, expected {expected}")
        try:
            out = self._decompressor.decompress(frame, max_output_size=expected)
        except zstandard.ZstdError as exc:
            raise self._fail(f"{name} does not decompress ({exc}); the file is corrupt") from None
        if len(out) != expected:
            raise self._fail(f"{name} decompressed to the wrong size")
        try:
            info = tarfile.TarInfo.frombuf(out[:_BLOCK], "utf-8", "surrogateescape")
        except tarfile.TarError:
            raise self._fail(f"{name} has a corrupt tar header") from None
        if info.name != name or info.size != size:
            raise self._fail(f"member {info.name!r} found where {name!r} was expected")
        return out[_BLOCK : _BLOCK + size]

    def read_manifest(self) -> dict[str, Any]:
        m = self._index["manifest"]
        body = self._member(m["offset"], m["length"], m["size"], "manifest.json")
        if sha256_hex(body) != m["sha256"]:
            raise self._fail("the manifest checksum does not match (the file is corrupt)")
        try:
            manifest = json.loads(body)
        except ValueError:
            raise self._fail("the manifest is not valid JSON") from None
        if not isinstance(manifest, dict):
            raise self._fail("the manifest is not a JSON object")
        return manifest

    def read_blob(self, digest: str) -> bytes:
        entry = self._index["blobs"].get(digest)
        if entry is None:
            raise self._fail(f"blob {digest[:12]} is referenced but not stored")
        offset, length, size = entry
        data = self._member(offset, length, size, _blob_member_name(digest))
        if sha256_hex(data) != digest:
            raise self._fail(f"blob {digest[:12]} fails its checksum (the file is corrupt)")
        return data

    def verify(self) -> int:
        """Check the manifest and every blob; return the number of blobs checked."""
        self.read_manifest()
        digests = self.blob_digests()
        for digest in digests:
            self.read_blob(digest)
        return len(digests)
