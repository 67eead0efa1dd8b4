"""`shopfloor worker`: run PM, Coder and QA runs for a daemon on Temporal (issue 13)."""

from __future__ import annotations

import click

from shopfloor.cli._common import project
from shopfloor.errors import ConfigError

INSTALL_HINT = "pip install 'shopfloor[temporal]'"


def register(app: click.Group) -> None:
    app.add_command(worker_cmd)


@click.command("worker", short_help="Run agents for a daemon on other machines (Temporal).")
@click.option("--address", help="Temporal frontend host:port (default: [scale] address).")
@click.option("--namespace", help="Temporal namespace (default: [scale] namespace).")
@click.option("--task-queue", help="The workflows' queue (default: [scale] task_queue).")
@click.option("--remote", help="Git remote to fetch from and push to (default: [scale] remote).")
@click.option("--name", help="This worker's name in Temporal and in replies (default: host-pid).")
@click.option(
    "--agent",
    "agents",
    multiple=True,
    metavar="NAME",
    help="Serve only this agent of [agents] (repeatable; default: every one found).",
)
@click.pass_context
def worker_cmd(
    ctx: click.Context,
    address: str | None,
    namespace: str | None,
    task_queue: str | None,
    remote: str | None,
    name: str | None,
    agents: tuple[str, ...],
) -> None:
    """Carry out the PM, Coder and QA runs a daemon sends through Temporal, in this clone.

    Run it at the top of a clone of the repository whose shopfloor.toml defines the agents
    this machine has. It polls one queue per agent it can run (its binary found) and, per run,
    fetches the remote, works in a worktree under .shopfloor/worker/, and pushes a Coder's
    commit to shopfloor/<id>. SIGTERM or Ctrl-C stops it; runs in flight are killed and go
    to another worker. Needs the [temporal] extra.
    """
    try:
        from shopfloor.scale import worker
        from shopfloor.scale.queues import scoped
        from shopfloor.scale.temporal import default_identity, exit_past_the_sdk
    except ImportError as exc:
        missing = exc.name or "temporalio"
        raise click.ClickException(
            f"shopfloor worker needs the {missing} package: {INSTALL_HINT}"
        ) from None
    proj = project(ctx)
    scale = proj.config.scale
    updates = {
        "address": address,
        "namespace": namespace,
        "task_queue": task_queue,
        "remote": remote,
    }
    scale = scale.model_copy(update={k: v for k, v in updates.items() if v is not None})
    if not scale.task_queue:
        raise ConfigError("--task-queue must not be empty")
    scale = scoped(proj.root, scale)  # this repository's queue on a shared Temporal
    code = worker.serve(proj.root, scale, name or default_identity(), agents or None)
    exit_past_the_sdk(code)
