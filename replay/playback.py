"""``replay --playback``: the recorded stdout and stderr, with their original timing."""

from __future__ import annotations

import codecs
from collections.abc import Iterator, Mapping

from recorder.ansi import TerminalStream
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


def playback_text(tape: Tape, colour: Mapping[str, bool]) -> Iterator[tuple[float, str, str]]:
    """``playback`` as text safe for a terminal: (wait, stream, text).

    The build's colours are kept for a stream whose ``colour`` is true (recorder/ansi.py:
    SGR rewritten from its parsed style, reset at the end) and stripped otherwise; every
    other control character (OSC, cursor movement, C0, C1) is shown escaped, never obeyed.
    A UTF-8 character or an escape sequence split across chunks is joined first.
    """
    names = ("stdout", "stderr")
    decoders = {n: codecs.getincrementaldecoder("utf-8")("backslashreplace") for n in names}
    streams = {n: TerminalStream(colour.get(n, False)) for n in names}
    for delay, stream, data in playback(tape):
        yield delay, stream, streams[stream].feed(decoders[stream].decode(data))
    for name in names:
        rest = streams[name].feed(decoders[name].decode(b"", final=True)) + streams[name].finish()
        if rest:
            yield 0.0, name, rest
