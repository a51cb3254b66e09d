"""What a build step reports about itself: spans (``buildtape.step``), metrics and
events (see *span* in docs/glossary.md: a span is what a step says, not a step).

Under ``buildtape record`` they append JSON lines to the file named by
``$BUILDTAPE_EVENTS``; anywhere else they do nothing (one environment lookup per call).
Spans nest: a span opened inside another names it as its parent, per thread.

    import buildtape

    with buildtape.step("compile"):
        ...

    @buildtape.step("link")
    def link(): ...

    buildtape.metric("objects", 42, unit="files")
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

EVENTS_VAR = "BUILDTAPE_EVENTS"
F = TypeVar("F", bound=Callable[..., Any])
_local = threading.local()


def _emit(record: dict[str, Any]) -> None:
    path = os.environ.get(EVENTS_VAR)
    if not path:
        return
    line = json.dumps(record, separators=(",", ":")) + "\n"
    # One write on an O_APPEND descriptor: lines of parallel steps never interleave.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, line.encode())
    except OSError:
        pass
    finally:
        os.close(fd)


def _open_spans() -> list[str]:
    stack: list[str] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


class step:
    """A named span of the build, as a context manager or a decorator."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._start = 0.0

    def __enter__(self) -> step:
        if os.environ.get(EVENTS_VAR):
            self._start = time.time()
            _open_spans().append(self.name)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._start:
            return
        stack = _open_spans()
        if stack and stack[-1] == self.name:
            stack.pop()
        record: dict[str, Any] = {
            "kind": "span",
            "name": self.name,
            "start": self._start,
            "end": time.time(),
            "pid": os.getpid(),
        }
        if stack:
            record["parent"] = stack[-1]
        if exc_type is not None:
            record["error"] = exc_type.__name__
        self._start = 0.0
        _emit(record)

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with step(self.name):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def metric(name: str, value: float, unit: str | None = None) -> None:
    """Record a number (an object count, a cache hit rate, a size) for this build."""
    if not os.environ.get(EVENTS_VAR):
        return
    record: dict[str, Any] = {"kind": "metric", "name": name, "value": value, "ts": time.time()}
    if unit is not None:
        record["unit"] = unit
    _emit(record)


def event(name: str, **data: Any) -> None:
    """Record a named event with free-form data."""
    if os.environ.get(EVENTS_VAR):
        _emit({"kind": "event", "name": name, "data": data, "ts": time.time()})
