"""Opening a tape: the one entry point every other package reads tapes through."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recorder.container import TapeReader
from recorder.errors import TapeError
from recorder.model import Manifest, blobs_referenced


@dataclass
class Tape:
    """A verified manifest plus lazy, checksummed access to the stored blobs."""

    path: Path
    manifest: Manifest
    reader: TapeReader

    def blob(self, digest: str) -> bytes:
        return self.reader.read_blob(digest)

    def stream(self, name: str) -> bytes:
        digest = getattr(self.manifest.streams, f"{name}_blob")
        return b"" if digest is None else self.blob(digest)

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> Tape:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_tape(path: Path) -> Tape:
    """Open and validate a tape; raises ``TapeError`` with one clear sentence."""
    reader = TapeReader(path)
    try:
        manifest = Manifest.from_dict(reader.read_manifest())
        stored = set(reader.blob_digests())
        missing = [d for d in blobs_referenced(manifest) if d not in stored]
        if missing:
            raise TapeError(
                f"{path} is not a readable tape: "
                f"blob {missing[0][:12]} is referenced but not stored"
            )
        streamed = sum(c.size for c in manifest.streams.chunks)
        declared = sum(
            reader.blob_size(d)
            for d in (manifest.streams.stdout_blob, manifest.streams.stderr_blob)
            if d is not None
        )
        if streamed != declared:
            raise TapeError(f"{path} is not a readable tape: its stream chunks do not add up")
    except BaseException:
        reader.close()
        raise
    return Tape(path, manifest, reader)
