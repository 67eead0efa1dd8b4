"""Telegram `/rework ID TEXT` (issue 12 item 4): from an allowlisted chat it sends the task
back to the Coder with the notes; from any other chat it does nothing and says nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopfloor import actions, task
from shopfloor.board import Board, Lane
from shopfloor.notify import NotifyService
from tests.fakes.telegram_server import FakeTelegram

from .conftest import STRANGER, ServiceFactory, make_config, reply_to


@pytest.fixture
def bot(fake_tg: FakeTelegram, service: ServiceFactory) -> NotifyService:
    return service(make_config(fake_tg))


def ask(fake_tg: FakeTelegram, text: str) -> str:
    return reply_to(fake_tg, text)


def failed_task(project: Path) -> str:
    """A task with a spec, parked in failed/ (cancelled)."""
    board = Board(project)
    entry = actions.create_task(board, actions.NewTask("Fix the parser", "spec", backlog=True))
    actions.cancel(board, entry.id)
    return entry.id


def test_rework_from_an_allowed_chat_sends_the_task_back_with_the_notes(
    fake_tg: FakeTelegram, bot: NotifyService, project: Path
) -> None:
    task_id = failed_task(project)
    reply = ask(fake_tg, f"/rework {task_id} Handle tabs too.\nAnd a trailing newline.")
    assert reply == f"↩️ {task_id} sent back to the Coder with your notes: backlog/ · queued"
    board = Board(project)
    entry = board.find(task_id)
    assert (entry.lane, entry.header.attempts) == (Lane.BACKLOG, 0)
    notes = task.get_section(board.read_text(entry), "Rework notes") or ""
    assert "— telegram" in notes and "Handle tabs too.\nAnd a trailing newline." in notes
    assert ask(fake_tg, f"/rework {task_id}").startswith("usage: /rework ID TEXT")
    assert "is in inbox/" in ask(
        fake_tg, f"/rework {actions.create_task(board, actions.NewTask('Raw')).id} do it"
    )


def test_rework_from_another_chat_is_ignored(
    fake_tg: FakeTelegram, bot: NotifyService, project: Path
) -> None:
    task_id = failed_task(project)
    before = Board(project).find(task_id).path.read_bytes()
    fake_tg.user_says(STRANGER, f"/rework {task_id} delete everything")
    assert ask(fake_tg, "/status").startswith("hotfix 0")  # handled after the stranger's
    assert fake_tg.messages(STRANGER) == []
    entry = Board(project).find(task_id)
    assert entry.lane is Lane.FAILED and entry.path.read_bytes() == before
