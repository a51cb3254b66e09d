"""The exports of one tape (``export --format compile-commands|junit``): which engine in
``reports`` writes each."""

from __future__ import annotations

from pathlib import Path

TAPE_FORMATS = ("compile-commands", "junit")


def export_tape(path: Path, fmt: str) -> str:
    """The text of ``fmt`` for the tape at ``path`` (raises TapeError for a bad tape)."""
    from recorder.tape import open_tape

    with open_tape(path) as tape:
        if fmt == "compile-commands":
            from reports.compile_db import compile_commands, to_json

            return to_json(compile_commands(tape.manifest))
        from reports.junit import render_junit

        return render_junit(tape)
