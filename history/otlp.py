"""A tape as an OpenTelemetry trace, sent over OTLP/HTTP with the OpenTelemetry SDK.

The build is the root span; every process is a child span of its parent process (the
build's first process a child of the build), with argv, cwd and exit code as attributes;
spans a step reported through ``$BUILDTAPE_EVENTS`` nest under the process that emitted
them (or the span they named as parent). Custom events become span events on the root,
metrics its attributes. A ``TRACEPARENT`` recorded in the build's environment makes the
build a child of the CI system's span, in its trace.

Span and trace ids are drawn from a generator seeded by the tape's identity, so exporting
one tape twice sends the same ids and a backend keeps one copy.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import shlex
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from history.errors import NothingToExport, OtlpError, OtlpUnavailable
from history.options import OtlpOptions
from history.store import HistoryStore
from recorder import __version__
from recorder.model import Manifest, Process

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class Sent:
    """One tape sent as one trace."""

    tape: Path
    spans: int


def parse_traceparent(value: str | None) -> tuple[int, int, int] | None:
    """(trace id, parent span id, flags) of a W3C traceparent, or None if it is not one."""
    m = _TRACEPARENT.match((value or "").strip().lower())
    if not m or m.group(1) == "ff":
        return None
    trace_id, span_id = int(m.group(2), 16), int(m.group(3), 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, int(m.group(4), 16)


def _ns(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1e9)


@contextmanager
def _quiet_sdk() -> Iterator[None]:
    # The exporter logs each retry; we report one sentence when it gives up.
    log = logging.getLogger("opentelemetry")
    level, propagate = log.level, log.propagate
    log.setLevel(logging.CRITICAL)
    log.propagate = False
    try:
        yield
    finally:
        log.setLevel(level)
        log.propagate = propagate


def build_spans(m: Manifest, tape: str) -> Sequence[Any]:
    """The finished SDK spans of one tape (ReadableSpan objects)."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
        from opentelemetry.sdk.trace.export import (
            SimpleSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )
        from opentelemetry.sdk.trace.id_generator import IdGenerator
    except ImportError:
        raise OtlpUnavailable(
            "the OpenTelemetry SDK is not installed; pip install 'buildtape[otlp]'"
        ) from None

    class SeededIds(IdGenerator):
        def __init__(self, seed: bytes) -> None:
            self._random = random.Random(seed)

        def generate_span_id(self) -> int:
            return self._random.getrandbits(64) or 1

        def generate_trace_id(self) -> int:
            return self._random.getrandbits(128) or 1

    class Collect(SpanExporter):
        def __init__(self) -> None:
            self.spans: list[ReadableSpan] = []

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            self.spans.extend(spans)
            return SpanExportResult.SUCCESS

    seed = hashlib.sha256(f"{m.started_at}\0{m.host.hostname}\0{m.argv}".encode()).digest()
    resource = Resource.create(
        {
            "service.name": "buildtape",
            # The SDK would draw a random one: the same tape must send the same bytes.
            "service.instance.id": str(uuid.UUID(bytes=seed[:16])),
            "host.name": m.host.hostname,
            "buildtape.tape": tape,
        }
    )
    provider = TracerProvider(
        resource=resource,
        id_generator=SeededIds(seed),
        span_limits=SpanLimits(max_events=100_000, max_attributes=1_000),
        shutdown_on_exit=False,
    )
    collect = Collect()
    provider.add_span_processor(SimpleSpanProcessor(collect))
    tracer = provider.get_tracer("buildtape", __version__)

    t0 = _ns(m.started_at)
    end_of_build = t0 + int(m.duration_s * 1e9)
    parent_ctx = None
    remote = parse_traceparent(m.environment.vars.get("TRACEPARENT"))
    if remote:
        span_context = trace.SpanContext(
            trace_id=remote[0],
            span_id=remote[1],
            is_remote=True,
            trace_flags=trace.TraceFlags(remote[2] & 0x01),
        )
        parent_ctx = trace.set_span_in_context(trace.NonRecordingSpan(span_context))

    failed = trace.Status(trace.StatusCode.ERROR)
    root_attrs: dict[str, Any] = {
        "buildtape.command": shlex.join(m.argv),
        "buildtape.status": m.status,
        "buildtape.processes": len(m.processes),
        "buildtape.tape": tape,
    }
    if m.exit_code is not None:
        root_attrs["process.exit.code"] = m.exit_code
    if m.git is not None and m.git.commit:
        root_attrs["vcs.ref.head.revision"] = m.git.commit
    root_attrs.update({f"buildtape.label.{k}": v for k, v in sorted(m.labels.items())})
    root = tracer.start_span(
        "build " + shlex.join(m.argv)[:80], context=parent_ctx, start_time=t0, attributes=root_attrs
    )
    if m.status != "succeeded":
        root.set_status(failed)

    spans: dict[int, Any] = {}
    by_pid: dict[int, list[Process]] = {}
    for p in sorted(m.processes, key=lambda p: (p.start_s, p.id)):
        parent = spans.get(p.parent_id) if p.parent_id is not None else None
        attrs: dict[str, Any] = {
            "process.pid": p.pid,
            "process.command_args": p.argv,
            "process.executable.path": p.exe,
            "process.working_directory": p.cwd,
            "buildtape.process.id": p.id,
        }
        if p.exit_code is not None:
            attrs["process.exit.code"] = p.exit_code
        if p.signal:
            attrs["buildtape.signal"] = p.signal
        name = os.path.basename(p.argv[0]) if p.argv else os.path.basename(p.exe) or "process"
        span = tracer.start_span(
            name,
            context=trace.set_span_in_context(parent or root),
            start_time=t0 + int(p.start_s * 1e9),
            attributes=attrs,
        )
        if p.failed:
            span.set_status(failed)
        spans[p.id] = span
        by_pid.setdefault(p.pid, []).append(p)

    custom: dict[tuple[int | None, str], Any] = {}
    for e in sorted(m.events, key=lambda e: e.t):
        if e.kind == "event":
            data = e.data.get("data") or {}
            attrs = {f"buildtape.{k}": str(v) for k, v in sorted(data.items())}
            root.add_event(e.data["name"], attrs, timestamp=t0 + int(e.t * 1e9))
        elif e.kind == "metric":
            root.set_attribute(f"buildtape.metric.{e.data['name']}", e.data["value"])
        elif e.kind == "span":
            start, end = e.data["start_s"], e.data["end_s"]
            pid = e.data.get("pid") if isinstance(e.data.get("pid"), int) else None
            host = _process_at(by_pid.get(pid or -1, []), start)
            parent = custom.get((pid, e.data.get("parent") or "")) or (
                spans[host.id] if host else root
            )
            span = tracer.start_span(
                e.data["name"],
                context=trace.set_span_in_context(parent),
                start_time=t0 + int(start * 1e9),
                attributes={"buildtape.span": True},
            )
            if e.data.get("error"):
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(e.data["error"])))
            span.end(end_time=t0 + int(end * 1e9))
            custom[(pid, e.data["name"])] = span

    for p in m.processes:
        end = end_of_build if p.end_s is None else t0 + int(p.end_s * 1e9)
        spans[p.id].end(end_time=end)
    root.end(end_time=end_of_build)
    provider.shutdown()
    return collect.spans


def _process_at(candidates: list[Process], t: float) -> Process | None:
    """The process with this pid that was alive at ``t`` (pids are reused)."""
    for p in candidates:
        if p.start_s <= t and (p.end_s is None or t <= p.end_s):
            return p
    return candidates[-1] if candidates else None


def tapes_to_export(
    store: HistoryStore, since: str | None = None, last: int | None = None
) -> list[Path]:
    """The tapes of the history to send: every build since ``since`` (unless ``last`` is
    given), else the newest ``last`` (default one), oldest first."""
    found = store.export_rows("builds", since)
    if not found:
        raise NothingToExport(f"no builds in the history at {store.home} to export")
    chosen = found if since and not last else found[-(last or 1) :]
    return [Path(r["tape"]) for r in chosen]


def export_traces(tapes: Sequence[Path], options: OtlpOptions) -> Iterator[Sent]:
    """Send each tape as one trace, in order, saying each as it goes."""
    from recorder.tape import open_tape

    for path in tapes:
        with open_tape(path) as t:
            spans = build_spans(t.manifest, str(path))
        send(spans, options.endpoint, options.timeout_s)
        yield Sent(path, len(spans))


def send(spans: Sequence[Any], endpoint: str, timeout_s: float) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=timeout_s)
    with _quiet_sdk():
        result = exporter.export(spans)
    exporter.shutdown()  # type: ignore[no-untyped-call]
    if result is not SpanExportResult.SUCCESS:
        raise OtlpError(
            f"could not send {len(spans)} spans to {endpoint}; check that an OTLP/HTTP "
            "receiver listens there (--endpoint, or otlp.endpoint in the config)"
        )
