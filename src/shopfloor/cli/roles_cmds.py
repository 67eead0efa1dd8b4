"""`shopfloor roles ...`: see and customise the role bootloaders."""

from __future__ import annotations

import click

from shopfloor import roles
from shopfloor.cli._common import project


def register(app: click.Group) -> None:
    app.add_command(roles_group)


@click.group("roles", short_help="See and customise the role prompt templates.")
def roles_group() -> None:
    """The role bootloaders (prompt templates) for pm, coder, qa and hotfix."""


@roles_group.command("export", short_help="Write the default templates to .shopfloor/roles/.")
@click.option("--force", is_flag=True, help="Overwrite templates you already customised.")
@click.pass_context
def export_cmd(ctx: click.Context, force: bool) -> None:
    """Write the default templates to .shopfloor/roles/ to customise them."""
    proj = project(ctx)
    for path in roles.export(proj.root, force=force):
        click.echo(f"wrote {path.relative_to(proj.root)}")


@roles_group.command("show", short_help="Print the template a role uses here.")
@click.argument("role", type=click.Choice(roles.ROLES))
@click.pass_context
def show_cmd(ctx: click.Context, role: str) -> None:
    """Print the template a role uses in this project (override or default)."""
    click.echo(roles.template_text(role, project(ctx).root), nl=False)
