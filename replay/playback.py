"""``replay --playback``: the recorded stdout and stderr, with their original timing."""

from __future__ import annotations

from collections.abc import Iterator

from recorder.tape import Tape

# A longer silence is played back as this many seconds (a tape's times are its word).
MAX_GAP_S = 5.0


def playback(tape: Tape) -> Iterator[tuple[float, str, bytes]]:
    """(seconds to wait before it, stream, bytes) for each recorded chunk, in order.

    Waits are at most ``MAX_GAP_S``: a long silence in the build is shortened, and a chunk
    stamped a billion seconds later cannot hang the playback.
    """
    data = {name: tape.stream(name) for name in ("stdout", "stderr")}
    offsets = {"stdout": 0, "stderr": 0}
    last = 0.0
    for chunk in tape.manifest.streams.chunks:
        start = offsets[chunk.stream]
        offsets[chunk.stream] = start + chunk.size
        yield (
            min(MAX_GAP_S, max(0.0, chunk.t - last)),
            chunk.stream,
            data[chunk.stream][start : start + chunk.size],
        )
        last = max(last, chunk.t)
