"""``buildtape config``: the settings in effect and where each one came from."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from buildtape.config import SCHEMA, env_name, load_here
from buildtape.exit_codes import ExitCode
from buildtape.params import epilog, json_option


@click.command(
    "config",
    epilog=epilog(
        ["buildtape config", "BUILDTAPE_HOME=/tmp/h buildtape config --format json"],
        (ExitCode.OK, ExitCode.USAGE, ExitCode.BAD_INPUT),
    ),
)
@json_option("json: values, sources and metric rules.")
def config_cmd(fmt: str) -> ExitCode:
    """Show every setting, its value and its source.

    \b
    Highest first: BUILDTAPE_* environment variables, buildtape.toml, then
    [tool.buildtape] in pyproject.toml, both at the workspace root (git top level,
    else the current directory). Command-line options beat all of them.
    """
    cfg = load_here()
    if fmt == "json":
        out = {
            "workspace": str(cfg.workspace),
            "home": str(cfg.home),
            "values": cfg.values,
            "sources": cfg.sources,
            "metric_rules": [asdict(r) for r in cfg.metric_rules],
        }
        click.echo(json.dumps(out, indent=2, sort_keys=True))
        return ExitCode.OK
    click.echo(f"workspace: {cfg.workspace}\nhistory:   {cfg.home}")
    for section, keys in SCHEMA.items():
        for key in keys:
            dotted = f"{section}.{key}" if section else key
            value = cfg.values[dotted]
            shown = "-" if value is None else json.dumps(value)
            click.echo(
                f"{dotted:<30} {shown:<34} {cfg.sources[dotted]:<14} ({env_name(section, key)})"
            )
    for r in cfg.metric_rules:
        click.echo(f"alerts.metric {r.name}: above={r.above} below={r.below} -> {r.level}")
    return ExitCode.OK
