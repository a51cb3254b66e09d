"""``replay --playback``: the recorded stdout and stderr, with their original timing."""

from __future__ import annotations

from collections.abc import Iterator

from recorder.reading import Tape


def playback(tape: Tape) -> Iterator[tuple[float, str, bytes]]:
    """(seconds to wait before it, stream, bytes) for each recorded chunk, in order."""
    data = {name: tape.stream(name) for name in ("stdout", "stderr")}
    offsets = {"stdout": 0, "stderr": 0}
    last = 0.0
    for chunk in tape.manifest.streams.chunks:
        start = offsets[chunk.stream]
        offsets[chunk.stream] = start + chunk.size
        yield max(0.0, chunk.t - last), chunk.stream, data[chunk.stream][start : start + chunk.size]
        last = max(last, chunk.t)
