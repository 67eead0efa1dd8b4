"""Board verbs: init, new, hotfix, status, show."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import click

from shopfloor import actions, defaults, scaffold
from shopfloor.cli._common import console, plain, print_json, project, start_dir, who_local
from shopfloor.display import safe, safe_lines
from shopfloor.errors import ShopfloorError
from shopfloor.project import Project
from shopfloor.statusdoc import journal_extras as journal_extras  # board_live uses it


def register(app: click.Group) -> None:
    for command in (init_cmd, new_cmd, hotfix_group, status_cmd, board_cmd, show_cmd):
        app.add_command(command)


@click.command("init", short_help="Set up tasks/, shopfloor.toml and .shopfloor/ here.")
@click.pass_context
def init_cmd(ctx: click.Context) -> None:
    """Scaffold tasks/, shopfloor.toml and .shopfloor/ in this git repository (idempotent)."""
    report = scaffold.init(start_dir(ctx))
    for item in report.created:
        click.echo(f"created {item}")
    for item in report.kept:
        click.echo(f"kept    {item} (already there)")
    for line in scaffold.summary(report):
        click.echo(line)
    click.echo(f'ready: {report.root}  next: shopfloor new "your first request"')


def _read_body(body: str | None) -> str:
    if body == "-":
        return sys.stdin.read()
    return body or ""


@click.command("new", short_help="File a request in inbox/ (or a ready spec in backlog/).")
@click.argument("title")
@click.option(
    "--body", "-m", help="The request text ('-' reads it from stdin; default: the title)."
)
@click.option(
    "--backlog", "-b", is_flag=True, help="A ready spec: straight to backlog/, under ## Spec."
)
@click.option(
    "--priority",
    "-p",
    type=click.Choice(defaults.PRIORITIES),
    default=defaults.DEFAULT_PRIORITY,
    show_default=True,
    help="P0 is the most urgent.",
)
@click.option(
    "--type",
    "task_type",
    type=click.Choice(defaults.TYPES[:3]),
    default="feature",
    show_default=True,
    help="What kind of work it is.",
)
@click.option("--agent", help="The agent that should run it (else each role's default).")
@click.option("--json", "as_json", is_flag=True, help="Print the new task as a task object.")
@click.pass_context
def new_cmd(
    ctx: click.Context,
    title: str,
    body: str | None,
    backlog: bool,
    priority: str,
    task_type: str,
    agent: str | None,
    as_json: bool,
) -> None:
    """A new request in tasks/inbox/ (or a ready spec in tasks/backlog/ with --backlog)."""
    board = project(ctx).board
    spec = actions.NewTask(title, _read_body(body), backlog, priority, task_type, agent)
    entry = actions.create_task(board, spec)
    if as_json:
        print_json(actions.task_document(board, entry))
    else:
        click.echo(f"{entry.id}  {actions.cwd_relative(entry.path)}")


class _HotfixGroup(click.Group):
    """`hotfix TITLE [options]` files an emergency (the group's own parameters); `hotfix close
    ID` archives one. A title that is a subcommand's name goes after `--`: `hotfix -- close`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        completing = ctx.resilient_parsing and not args  # TAB offers `close`, not a title
        if completing or (args and args[0] in self.commands):
            ctx.meta[_SUBCOMMAND] = True  # the TITLE argument must not swallow "close"
            return super().parse_args(ctx, args)
        # Filing: parse as a plain command, so the first word is the title, not a subcommand,
        # options may follow it, and a second word is an error rather than ignored.
        ctx.allow_interspersed_args = True
        ctx.allow_extra_args = False
        return click.Command.parse_args(self, ctx, args)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        if ctx.meta.get(_SUBCOMMAND):
            return [p for p in params if not isinstance(p, click.Argument)]
        return params

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return ["[OPTIONS] TITLE", "|", "close", "ID", "[--followup]", "[--force]"]


_SUBCOMMAND = "shopfloor.hotfix.subcommand"


@click.group(
    "hotfix",
    cls=_HotfixGroup,
    invoke_without_command=True,
    no_args_is_help=True,
    short_help="File an emergency (runs at once, in the live tree) or close one.",
)
@click.argument("title", required=True)
@click.option("--body", "-m", help="What is broken ('-' reads it from stdin).")
@click.option(
    "--log",
    "log",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A log or stack trace; its last 60 lines (at most 16 KiB) go under ## Evidence.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the new hotfix as a task object.")
@click.pass_context
def hotfix_group(
    ctx: click.Context,
    body: str | None,
    log: Path | None,
    as_json: bool,
    title: str | None = None,
) -> None:
    """File an emergency: `hotfix "TITLE" [-m TEXT] [--log FILE] [--json]`.

    Writes tasks/hotfix/HOTFIX-<slug>.md (P0, one attempt) and prints its id and path; the
    daemon starts the Hotfix agent at once, in the live working tree. The file stays in
    hotfix/ until you verify, commit, push and `hotfix close ID`. A hotfix titled "close"
    (or any subcommand's name) is filed with `hotfix -- close`.
    """
    if ctx.invoked_subcommand is not None or title is None:
        return
    board = project(ctx).board
    entry = actions.create_hotfix(board, title, _read_body(body), log)
    if as_json:
        print_json(actions.task_document(board, entry))
    else:
        click.echo(f"{entry.id}  {actions.cwd_relative(entry.path)}")


@hotfix_group.command("close", short_help="Archive a verified, committed hotfix to done/.")
@click.argument("task_id")
@click.option(
    "--followup",
    is_flag=True,
    help="Also file a P1 bug request in inbox/ for the root-cause fix.",
)
@click.option("--force", is_flag=True, help="Close it even though the fix is not committed.")
@click.pass_context
def hotfix_close_cmd(ctx: click.Context, task_id: str, followup: bool, force: bool) -> None:
    """Archive a verified hotfix to done/ (after you committed and pushed the fix).

    Refused while the files its agent changed are not committed (unless --force); records who
    closed it and the commit that holds the fix.
    """
    closed, follow = actions.close_hotfix(
        project(ctx).board, task_id, followup=followup, who=who_local(), force=force
    )
    click.echo(f"{closed.id}  closed -> {actions.cwd_relative(closed.path)}")
    tracker = actions.show_report(project(ctx).board, closed.id)["tracker"]
    if tracker:
        click.echo(safe(tracker[-1]))
    if follow is not None:
        click.echo(f"{follow.id}  root-cause task -> {actions.cwd_relative(follow.path)}")


@click.command("status", short_help="The board at a glance: lanes, tasks, runs, problems.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the board as the documented JSON document for scripts (schema 1, docs/cli.md).",
)
@click.option(
    "--all", "show_all", is_flag=True, help="List every done task and every failed one too."
)
@click.option(
    "--width",
    type=click.IntRange(min=20),
    metavar="N",
    help="Fit lines to this many columns (default: $COLUMNS, else the terminal's width, else 80).",
)
@click.option(
    "--watch",
    is_flag=True,
    help="A live full-screen board, redrawn as tasks move (same as `shopfloor board`); "
    "q or Ctrl-C quits.",
)
@click.pass_context
def status_cmd(
    ctx: click.Context, as_json: bool, show_all: bool, width: int | None, watch: bool
) -> None:
    """The board at a glance: one line per task, hotfixes first, fitted to the terminal.

    Ids are shown whole (copy them); titles are cut with an ellipsis; done/ is a count unless
    --all. Unreadable files are moved to tasks/invalid/ with a reason.
    """
    if watch:
        if as_json:
            raise click.UsageError("--watch and --json do not go together")
        from shopfloor.cli import board_live

        board_live.run(project(ctx), show_all)
        return
    proj = project(ctx)
    from shopfloor import statusd

    # From the daemon or the status index; None: files to quarantine, the sweep below does.
    text = statusd.status_text(str(proj.root))
    if as_json and text is not None and not sys.stdout.isatty():
        sys.stdout.write(text + "\n")
        return
    report = status_document(proj) if text is None else json.loads(text)
    if as_json:
        print_json(report)
        return
    from shopfloor import boardview

    lines = boardview.status_lines(
        report, boardview.terminal_width(width), show_all, boardview.wants_color(sys.stdout)
    )
    sys.stdout.write("".join(f"{line}\n" for line in lines))


def status_document(proj: Project, sweep: bool = True) -> dict[str, Any]:
    """The `status --json` document: the board, plus runs, spend and pauses from the journal."""
    from shopfloor import config_check

    extras = journal_extras(proj.root)
    report = actions.status_report(proj.board, sweep=sweep, runs=extras.pop("runs"))
    report.update(extras)
    report["config_error"] = config_check.config_error(proj.root, proj.config_path)
    return report


def _task_runs(root: Path, task_id: str) -> dict[str, Any]:
    """The task's runs with tokens and cost, from the journal (none without a readable one,
    and `journal_error` saying why)."""
    from shopfloor.journal import open_for_reading, unreadable

    journal, problem = open_for_reading(root)
    if journal is None:
        return {"runs": [], "cost_usd": 0.0, "journal_error": problem}
    with journal:
        try:
            rows = journal.runs(task_id=task_id)
        except (ShopfloorError, sqlite3.Error) as exc:
            return {"runs": [], "cost_usd": 0.0, "journal_error": unreadable(journal.path, exc)}
    keys = ("role", "agent", "outcome", "started_at", "tokens_in", "tokens_out", "cost_usd")
    runs = [{"run_id": r["id"], **{k: r[k] for k in keys}} for r in rows]
    cost = round(sum((r["cost_usd"] or 0.0 for r in runs), 0.0), 4)  # 0.0 with no runs
    return {"runs": runs, "cost_usd": cost, "journal_error": None}


def _task_history(root: Path, task_id: str) -> list[dict[str, Any]]:
    from shopfloor.journal import open_if_present

    journal = open_if_present(root)
    if journal is None:
        return []
    with journal:
        rows = journal.history(task_id)
    keys = ("ts", "event", "from_lane", "to_lane", "status", "state", "line")
    return [{k: r[k] for k in keys} for r in rows]


def _print_history(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("no transitions in the journal")
    for r in rows:
        lanes = (r["from_lane"], r["to_lane"])
        where = lanes[0] if lanes[0] == lanes[1] else "->".join(lanes)
        state = "" if r["state"] == "applied" else f" ({r['state']})"
        click.echo(
            plain(f"{r['ts']}  {r['event']:<14} {where:<16} {r['status']}{state}", markup=False)
        )


@click.command("board", short_help="A live full-screen board, redrawn as tasks move.")
@click.option("--all", "show_all", is_flag=True, help="List every done and failed task too.")
@click.pass_context
def board_cmd(ctx: click.Context, show_all: bool) -> None:
    """A live full-screen board (`status --watch`): redrawn as task files move, with each
    running agent's role, age and last output line. q or Ctrl-C quits."""
    from shopfloor.cli import board_live

    board_live.run(project(ctx), show_all)


@click.command("show", short_help="One task: its lane, fields, file and runs.")
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True, help="The task as a JSON document.")
@click.option("--history", is_flag=True, help="Every lifecycle transition, from the journal.")
@click.pass_context
def show_cmd(ctx: click.Context, task_id: str, as_json: bool, history: bool) -> None:
    """One task: where it is, its fields and its file (--history: its transitions)."""
    proj = project(ctx)
    report = actions.show_report(proj.board, task_id)
    report.update(_task_runs(proj.root, report["id"]))
    if history:
        report["history"] = _task_history(proj.root, report["id"])
    if as_json:
        print_json(report)
        return
    if history:
        _print_history(report["history"])
        return
    out = console()
    out.print(
        f"[bold]{plain(report['id'])}[/]  {plain(report['title'])}\n"
        f"lane {report['lane']}  status {plain(report['status'])}  "
        f"priority {plain(report['priority'])}  "
        f"attempt {report['attempts']}/{report['max_attempts']}  file {plain(report['path'])}"
    )
    if report["runs"]:
        tokens = sum((r["tokens_in"] or 0) + (r["tokens_out"] or 0) for r in report["runs"])
        out.print(f"{len(report['runs'])} run(s), {tokens} tokens, ${report['cost_usd']:.2f} spent")
    if report["journal_error"]:
        out.print(f"[yellow]journal[/]  {plain(report['journal_error'])}")
    out.rule()
    click.echo(safe_lines(report["text"]), nl=False)
