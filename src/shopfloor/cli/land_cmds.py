"""The merge queue's verb: land now."""

from __future__ import annotations

import sys

import click

from shopfloor import actions
from shopfloor.cli._common import plain, print_json, project


def register(app: click.Group) -> None:
    app.add_command(land_cmd)


@click.command("land", short_help="Land what the merge queue holds now (or one task of it).")
@click.argument("task_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print what happened as JSON.")
@click.pass_context
def land_cmd(ctx: click.Context, task_id: str | None, as_json: bool) -> None:
    """Land the tasks QA passed (land = "queue"): each checked on top of the target branch,
    the target advanced only when the checks pass there; a task that does not fit goes back
    to its Coder. Works with or without a daemon running (they take turns). Exit code 3
    when the queue has to wait (the reason is printed)."""
    outcome = actions.land(project(ctx).root, task_id)
    if as_json:
        print_json(
            {
                "landed": outcome.landed,
                "bounced": outcome.bounced,
                "refused": outcome.refused,
                "waiting": outcome.waiting,
                "check_runs": outcome.check_runs,
            }
        )
    else:
        for word, ids in (
            ("landed", outcome.landed),
            ("bounced", outcome.bounced),
            ("gave up", outcome.refused),
        ):
            for one in ids:
                click.echo(f"{word:<8} {one}")
        if outcome.waiting:
            click.echo(plain(f"waiting: {outcome.waiting}", markup=False))
        elif not (outcome.landed or outcome.bounced or outcome.refused):
            click.echo("nothing to land")
    if outcome.waiting:
        sys.exit(3)
