"""Ids as people type them (issue 10): a hotfix's id is its slug cut at 48 characters, but
the title's full slug, or any unique prefix of an id, names the task wherever an id is taken;
a prefix of several tasks is an error that lists them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shopfloor import actions, defaults, task
from shopfloor.board import Board, Lane
from shopfloor.errors import AmbiguousIdError, TaskNotFoundError

from .conftest import CliRun

LONG_TITLE = "Bot crashes on startup when the Telegram token has expired and the retry loop spins"


def test_a_long_hotfix_is_found_by_its_full_slug_and_by_its_id(project: Path) -> None:
    board = Board(project)
    entry = actions.create_hotfix(board, LONG_TITLE)
    full = defaults.HOTFIX_PREFIX + task.id_slug(LONG_TITLE, limit=defaults.MAX_ID_CHARS)
    assert entry.id != full and full.startswith(entry.id)  # the id is the cut slug
    assert len(entry.name.encode()) <= 255
    assert board.find(full).path == entry.path
    assert board.find(entry.id).path == entry.path
    assert board.find("HOTFIX-bot-crashes").path == entry.path  # a unique prefix


def test_a_prefix_of_several_tasks_is_an_error_naming_them(project: Path) -> None:
    board = Board(project)
    for title in ("one", "two", "three"):
        actions.create_task(board, actions.NewTask(title))
    with pytest.raises(AmbiguousIdError, match="T-000 could be T-0001, T-0002, T-0003"):
        board.find("T-000")
    assert board.find("T-0002").header.title == "two"


def test_a_complete_numbered_id_is_never_read_as_a_prefix(project: Path) -> None:
    """T-1000 must not quietly name T-10004 (a person's T-1000 is gone, not shortened)."""
    board = Board(project)
    header = task.Header(id="T-10004", title="later")
    board.create(Lane.INBOX, "T-10004-later.md", task.render_new(
        header, sections={"Request": "x"}))  # fmt: skip
    with pytest.raises(TaskNotFoundError):
        board.find("T-1000")
    assert board.find("T-10004").id == "T-10004"


def test_a_hotfix_titled_in_another_script_can_be_filed_and_named(project: Path) -> None:
    """Ids are ASCII (the file format): a hotfix title in another script used to fail the
    whole `hotfix` command; its id now keeps the ASCII words, or the time when there are
    none, and the full title slug still names it."""
    board = Board(project)
    mixed = actions.create_hotfix(board, "Сервер упал: nginx 502 после обновления")
    assert mixed.id == "HOTFIX-nginx-502"
    only = actions.create_hotfix(board, "Сервер упал после обновления")
    assert re.fullmatch(r"HOTFIX-\d{8}t\d{6}z", only.id), only.id
    assert board.find(only.id).path == only.path
    assert board.find("HOTFIX-nginx").path == mixed.path


def test_show_accepts_the_full_slug_and_explains_an_ambiguous_prefix(
    project: Path, cli: CliRun
) -> None:
    filed = cli(project, "hotfix", LONG_TITLE)
    assert filed.returncode == 0, filed.stderr
    full = "HOTFIX-" + task.slugify(LONG_TITLE, limit=defaults.MAX_ID_CHARS)
    shown = cli(project, "show", "--json", full)
    assert shown.returncode == 0, shown.stderr
    assert '"title": "Bot crashes on startup' in shown.stdout
    cli(project, "hotfix", "Bot is slow")
    both = cli(project, "show", "HOTFIX-bot")
    assert both.returncode == 2
    assert both.stderr.startswith("Error: HOTFIX-bot could be HOTFIX-bot-crashes-on-startup-")
    assert "HOTFIX-bot-is-slow" in both.stderr


def test_commands_given_a_prefix_act_on_the_whole_id(project: Path, cli: CliRun) -> None:
    """The prefix names the task; what is recorded and looked up is its real id."""
    from shopfloor import runlogs

    board = Board(project)
    entry = actions.create_task(board, actions.NewTask("Only task"))
    run_dir = runlogs.runs_dir(project) / "R-1"
    run_dir.mkdir(parents=True)
    runlogs.write_meta(run_dir, entry.id, "coder", "claude")
    (run_dir / "stdout.log").write_text("the coder's words\n")
    logs = cli(project, "logs", "T-00")
    assert logs.returncode == 0, logs.stderr
    assert "==> R-1 coder claude" in logs.stdout and "the coder's words" in logs.stdout
    cancelled = cli(project, "cancel", "T-0")
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.startswith(f"{entry.id}  failed/")
