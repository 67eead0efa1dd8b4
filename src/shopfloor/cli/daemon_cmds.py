"""Daemon and decision verbs: run, logs, approve, retry, rework, cancel, demo."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

import click

from shopfloor import actions, runlogs
from shopfloor.board import Lane
from shopfloor.cli import web_cmds
from shopfloor.cli._common import console, print_json, project, who_local
from shopfloor.display import safe
from shopfloor.errors import ShopfloorError


def register(app: click.Group) -> None:
    for command in (run_cmd, logs_cmd, approve_cmd, retry_cmd, rework_cmd, cancel_cmd, demo_cmd):
        app.add_command(command)


@click.command("run", short_help="The daemon: drive tasks through PM, Coder, checks, QA.")
@click.option("--once", is_flag=True, help="Work until nothing is runnable, then exit.")
@click.pass_context
def run_cmd(ctx: click.Context, once: bool) -> None:
    """The daemon: watch the board and drive tasks through PM, Coder, checks and QA.

    Logs one line per event on stderr. SIGTERM or Ctrl-C stops it cleanly. With --once the
    exit code is 1 if a task failed during the run. With [web] enabled = true it serves the
    web board too (see `shopfloor web`), and stops it when it stops.
    """
    from shopfloor.notify import NotifyService
    from shopfloor.scheduler import Daemon

    proj = project(ctx)
    service = NotifyService(proj.root, proj.config) if proj.config.notify.channel_names() else None
    if service is not None:
        service.start()  # its own thread: a dead network can delay a message, never the daemon
    daemon = Daemon(proj.root, proj.config, once=once)
    try:
        with web_cmds.beside(proj, daemon, once):
            code = daemon.run()
    finally:
        if service is not None:
            # Within the stop deadline too: a dead network must not stretch a SIGTERM.
            left = max(0.0, daemon.stop_deadline() - time.monotonic())
            service.flush(min(2.0, left / 2))
            service.stop(min(3.0, left / 2))
    if daemon.shop.engine is not None:
        from shopfloor.scale.temporal import exit_past_the_sdk

        exit_past_the_sdk(code)
    sys.exit(code)


@click.command("logs", short_help="The run logs of a task (-f follows the newest run).")
@click.argument("task_id")
@click.option("--all", "all_runs", is_flag=True, help="Every run of the task, oldest first.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing the newest run's output.")
@click.pass_context
def logs_cmd(ctx: click.Context, task_id: str, all_runs: bool, follow: bool) -> None:
    """The run logs of a task (the newest run unless --all)."""
    proj = project(ctx)
    task_id = proj.board.find(task_id).id  # a clear error for unknown ids; a prefix named it
    runs = runlogs.runs_for(proj.root, task_id)
    if not runs:
        click.echo(f"{task_id} has no runs yet")
        return
    for run in runs if all_runs else runs[-1:]:
        click.echo(runlogs.header(run))
        for chunk in runlogs.read_output(run):
            click.echo(chunk, nl=False)
    if follow:
        runlogs.follow(runs[-1], click.echo, stop=lambda: False)


def _decide(ctx: click.Context, verb: str, task_id: str) -> None:
    board = project(ctx).board
    entry = getattr(actions, verb)(board, task_id)
    click.echo(f"{entry.id}  {entry.lane.value}/  status {entry.header.status}")


@click.command("approve", short_help="Release a spec that waits for approval.")
@click.argument("task_id")
@click.pass_context
def approve_cmd(ctx: click.Context, task_id: str) -> None:
    """Release a spec that waits for approval (pipeline.require_approval)."""
    _decide(ctx, "approve", task_id)


@click.command("retry", short_help="Give a failed or parked task fresh attempts.")
@click.argument("task_id")
@click.pass_context
def retry_cmd(ctx: click.Context, task_id: str) -> None:
    """Give a failed or parked task a fresh set of attempts."""
    _decide(ctx, "retry", task_id)


@click.command("rework", short_help="Send a task back to the Coder with notes; keeps its branch.")
@click.argument("task_id")
@click.option(
    "-m", "--message", "messages", multiple=True, help="A note (repeat: one paragraph each)."
)
@click.option(
    "-F",
    "--file",
    "notes_file",
    type=click.File("r", encoding="utf-8"),
    help="Read the notes from a file (- for stdin).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the task as a task object.")
@click.pass_context
def rework_cmd(
    ctx: click.Context,
    task_id: str,
    messages: tuple[str, ...],
    notes_file: TextIO | None,
    as_json: bool,
) -> None:
    """Send a task back to the Coder with notes for its next attempt.

    The Coder continues on the task's branch (its earlier commits are kept) and its next
    prompt shows the notes, which are added to the task's `## Rework notes`. Works on a task
    in review/, backlog/, done/ (not yet landed) or failed/; a running task is refused. The
    task gets a fresh set of attempts, as with `retry`.
    """
    parts = [m for m in messages if m.strip()]
    if notes_file is not None:
        parts.append(notes_file.read())
    if not parts:
        raise ShopfloorError(
            f'rework needs notes: shopfloor rework {task_id} -m "what to change" (or -F FILE)'
        )
    board = project(ctx).board
    entry = actions.rework(board, task_id, "\n\n".join(p.strip() for p in parts), who_local())
    if as_json:
        print_json(actions.task_document(board, entry))
        return
    click.echo(f"{entry.id}  {entry.lane.value}/  status {entry.header.status}")


@click.command("cancel", short_help="Park a task in failed/ (a running hotfix: stop it).")
@click.argument("task_id")
@click.pass_context
def cancel_cmd(ctx: click.Context, task_id: str) -> None:
    """Park a task in failed/; a running agent for it is stopped by the daemon.

    A running hotfix is stopped and stays in hotfix/ (awaiting-human): this waits up to 15 s
    for the daemon to stop its agent and prints what it left in the tree. A queued hotfix
    (its agent not started) goes to failed/.
    """
    board = project(ctx).board
    if board.find(task_id).lane is not Lane.HOTFIX:
        _decide(ctx, "cancel", task_id)
        return
    done = actions.cancel_hotfix(board, task_id, who=who_local(), wait=actions.CANCEL_WAIT)
    entry = done.entry
    click.echo(f"{entry.id}  {entry.lane.value}/  status {entry.header.status}")
    if not done.started:
        click.echo("cancelled before its agent started; nothing ran")
        return
    if not done.recorded:
        click.echo(
            f"the daemon has not confirmed the stop within {actions.CANCEL_WAIT:.0f} s "
            f"(`shopfloor show {entry.id}` will show it); the tree now:"
        )
    click.echo(safe(done.left or ""))


@click.command("demo", short_help="A demo repository and a full run with the simulator.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to create the demo repository (default: a new temporary folder).",
)
def demo_cmd(directory: Path | None) -> None:
    """A self-contained demo repository and a full pipeline run with the simulator (no API key)."""
    from shopfloor import demo

    started = time.monotonic()
    out = console()
    out.soft_wrap = not out.is_terminal  # piped or saved, lines stay whole (not cut at 80)
    root = demo.create(directory)
    out.print(f"[bold]Shopfloor demo[/] in {root}\n")
    code = demo.run(root, out)
    out.print(f"\nfinished in {time.monotonic() - started:.1f}s; explore it: cd {root}")
    sys.exit(code)
