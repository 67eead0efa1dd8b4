"""The root command group; verb groups live in their own modules."""

from __future__ import annotations

from pathlib import Path

import click

from shopfloor import __version__
from shopfloor.cli import (
    board_cmds,
    completion_cmds,
    daemon_cmds,
    doctor_cmds,
    land_cmds,
    roles_cmds,
    scale_cmds,
    web_cmds,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="shopfloor")
@click.option(
    "-C",
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run as if started in this directory (like git -C).",
)
@click.pass_context
def app(ctx: click.Context, directory: Path | None) -> None:
    """Shopfloor: a governed pipeline of AI coding agents over Markdown task files."""
    ctx.obj = directory


board_cmds.register(app)
daemon_cmds.register(app)
land_cmds.register(app)
doctor_cmds.register(app)
roles_cmds.register(app)
completion_cmds.register(app)
web_cmds.register(app)
scale_cmds.register(app)
