"""``buildtape show`` and ``buildtape verify``: reading one tape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from buildtape import show_text
from recorder.reading import open_tape
from recorder.summary import json_view
from recorder.trust import json_safe, printable


def _emit_json(obj: Any) -> None:
    click.echo(json_safe(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False)))


@click.command("show")
@click.argument("tape", type=click.Path(path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="Print the documented JSON object (docs/cli.md)."
)
def show(tape: Path, as_json: bool) -> None:
    """Summarise a tape: command, status, host, slowest and failing steps, outputs, warnings."""
    with open_tape(tape) as t:
        if as_json:
            _emit_json(json_view(t))
        else:
            click.echo(printable(show_text.render(t), one_line=False), nl=False)


@click.command("verify")
@click.argument("tape", type=click.Path(path_type=Path))
def verify(tape: Path) -> None:
    """Check every checksum in a tape; exit 0 when sound, 3 naming the first problem otherwise."""
    with open_tape(tape) as t:
        count = t.reader.verify()
    click.echo(
        f"{tape}: ok (format {t.manifest.format_version}, manifest and {count} blobs verified)"
    )
