"""``buildtape verify``: check every checksum of a tape."""

from __future__ import annotations

from pathlib import Path

import click

from buildtape.exit_codes import ExitCode
from buildtape.params import TAPE_CODES, epilog, tape_argument
from recorder.tape import open_tape


@click.command(
    "verify", epilog=epilog(["buildtape verify ci.tape", "buildtape verify last"], TAPE_CODES)
)
@tape_argument()
def verify_cmd(tape: Path) -> ExitCode:
    """Check every checksum in a tape; exit 0 when sound, 3 naming the first problem otherwise."""
    with open_tape(tape) as t:
        count = t.reader.verify()
    click.echo(
        f"{tape}: ok (format {t.manifest.format_version}, manifest and {count} blobs verified)"
    )
    return ExitCode.OK
