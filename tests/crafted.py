"""Tapes written from a manifest made here, field by field, through the real writer: every
time, host, path and id fixed, so what buildtape says about them can be golden files.

``good`` is a small C build that succeeds; ``bad`` is the same build where ``util.c``
changed, ``CFLAGS`` differs and the compile of util.c fails.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from recorder.container import TapeWriter

WORKSPACE = "/work/crafted"
SOURCES = {
    "Makefile": b"app: main.o util.o\n\tcc main.o util.o -o app\n",
    "main.c": b"int util(void);\nint main(void) { return util(); }\n",
}
UTIL = {"good": b"int util(void) { return 0; }\n", "bad": b"int util(void) { return 0 }\n"}


def _process(
    id: int, parent: int | None, argv: list[str], start: float, end: float, exit_code: int,
    reads: list[int], writes: list[int],
) -> dict[str, Any]:  # fmt: skip
    return {
        "id": id, "pid": 4000 + id, "parent_id": parent, "argv": argv, "exe": f"/usr/bin/{argv[0]}",
        "cwd": WORKSPACE, "start_s": start, "end_s": end, "exit_code": exit_code, "signal": None,
        "reads": reads, "writes": writes, "deleted": [],
    }  # fmt: skip


def _entry(path: str, data: bytes, change: str | None = None) -> dict[str, Any]:
    out = {"path": path, "mode": 0o100644, "size": len(data),
           "sha256": hashlib.sha256(data).hexdigest(), "stored": True}  # fmt: skip
    if change is not None:
        out["change"] = change
    return out


def write_crafted(path: Path, variant: str = "good", started_at: str | None = None) -> Path:
    """Write the crafted tape ``variant`` (good or bad) to ``path``."""
    failed = variant == "bad"
    files = {**SOURCES, "util.c": UTIL[variant]}
    stdout = b"cc -c main.c -o main.o\ncc -c util.c -o util.o\n"
    stderr = b"util.c:1: error: expected ';' before '}' token\n" if failed else b""
    if not failed:
        stdout += b"cc main.o util.o -o app\n"
    outputs = {"main.o": b"\x7fELF main", "util.o": b"\x7fELF util", "app": b"\x7fELF app"}
    if failed:
        outputs = {"main.o": outputs["main.o"]}
    # Every path a process read or wrote, which processes name by index.
    paths = sorted({*files, *outputs})
    at = paths.index
    processes = [
        _process(1, None, ["make", "-j2"], 0.0, 1.9 if not failed else 1.2, 2 if failed else 0,
                 [at("Makefile")], []),
        _process(2, 1, ["cc", "-c", "main.c", "-o", "main.o"], 0.1, 1.1, 0, [at("main.c")],
                 [at("main.o")]),
        _process(3, 1, ["cc", "-c", "util.c", "-o", "util.o"], 0.2, 0.9 if not failed else 1.0,
                 1 if failed else 0, [at("util.c")], [] if failed else [at("util.o")]),
    ]  # fmt: skip
    if not failed:
        processes.append(
            _process(4, 1, ["cc", "main.o", "util.o", "-o", "app"], 1.2, 1.8, 0,
                     [at("main.o"), at("util.o")], [at("app")])
        )  # fmt: skip
    w = TapeWriter(path)
    for data in [*files.values(), *outputs.values()]:
        w.add_blob(data)
    chunks: list[list[Any]] = [[0.1, "stdout", 23], [0.2, "stdout", 23]]
    if failed:
        chunks.append([0.9, "stderr", len(stderr)])
    else:
        chunks.append([1.2, "stdout", 24])
    manifest: dict[str, Any] = {
        "format_version": "1.0",
        "buildtape_version": "0.1.0",
        "argv": ["make", "-j2"],
        "cwd": WORKSPACE,
        "workspace": WORKSPACE,
        "started_at": started_at or "2026-01-02T03:04:05.000Z",
        "ended_at": "2026-01-02T03:04:06.900Z" if not failed else "2026-01-02T03:04:06.200Z",
        "duration_s": 1.9 if not failed else 1.2,
        "status": "failed" if failed else "succeeded",
        "exit_code": 2 if failed else 0,
        "signal": None,
        "host": {"os": "Linux", "kernel": "6.1.0", "arch": "x86_64", "cpus": 2,
                 "memory_bytes": 8 * 1024**3, "hostname": "builder", "python": "3.11.7"},
        "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "branch": "main",
                "dirty": ["util.c"] if failed else []},
        "labels": {"ci": "crafted", "variant": variant},
        "environment": {
            "vars": {"PATH": "/usr/bin:/bin", "CC": "cc", "CFLAGS": "-O0" if failed else "-O2",
                     "API_TOKEN": "[REDACTED]"},
            "redacted": ["API_TOKEN"],
            "redacted_digests": {},
            "umask": "0022",
            "locale": {"LANG": "C.UTF-8"},
            "tz": "UTC",
            "ulimits": {"nofile": "1024/4096"},
        },
        "tracing": {"mode": "strace", "notice": None, "files": "preload"},
        "sampling": {"sampler": "none", "rate": 0, "count": 0, "notice": None,
                     "samples_blob": None},
        "toolchain": [{"name": "cc", "path": "/usr/bin/cc", "sha256": None,
                       "version": "cc (Debian 12.2.0-14) 12.2.0"}],
        "paths": paths,
        "inputs": [_entry(p, d) for p, d in sorted(files.items())],
        "outputs": [_entry(p, d, "created") for p, d in sorted(outputs.items())],
        "external": [],
        "processes": processes,
        "streams": {
            "stdout_blob": w.add_blob(stdout),
            "stderr_blob": w.add_blob(stderr) if stderr else None,
            "chunks": chunks,
        },
        "events": [
            {"t": 0.5, "kind": "metric", "name": "objects", "value": 3 if not failed else 1,
             "unit": "files"},
            {"t": 0.1, "kind": "span", "name": "compile", "start_s": 0.1, "end_s": 1.1,
             "pid": 4002},
        ],
        "warnings": [],
    }  # fmt: skip
    w.commit(manifest)
    return path
