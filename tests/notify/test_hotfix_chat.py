"""Stopping and closing a hotfix from Telegram, with a daemon running (issue 9).

A `/hotfix` starts an agent that patches the live tree and works on; `/cancel` stops it (the
reply comes at once, the `hotfix_stopped` message says what it left); `/close` refuses the
uncommitted patch and `/close ID --force` closes it, recorded.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopfloor import task
from shopfloor.board import Board, Lane
from tests.conftest import wait_until
from tests.fakes.telegram_server import FakeTelegram
from tests.support import FAKES, tracker

from .conftest import CHAT, chat_daemon, is_reply, reply_to


@pytest.fixture
def shop(tmp_path: Path, fake_tg: FakeTelegram) -> Iterator[Path]:
    """A daemon whose hotfix agent patches the tree and hangs, and the notify service."""
    marks = tmp_path / "marks.txt"
    command = [sys.executable, str(FAKES / "hanging_hotfix.py"), str(marks)]
    with chat_daemon(tmp_path, fake_tg, command, reconcile_every=60.0) as root:
        yield root


def _answer(fake: FakeTelegram, command: str, task_id: str) -> str:
    """The bot's reply to `command`, found by content: a reply naming `task_id`. Notifications
    (daemon started, hotfix started/stopped) may arrive before or after it."""
    return reply_to(fake, command, lambda t: is_reply(t) and task_id in t)


def test_cancel_and_close_a_running_hotfix_from_telegram(fake_tg: FakeTelegram, shop: Path) -> None:
    fake_tg.user_says(CHAT, "/hotfix Checkout returns 500")
    marks = shop.parent / "marks.txt"
    wait_until(lambda: marks.exists() and marks.read_text(), 30, "the hotfix agent patched")
    task_id = "HOTFIX-checkout-returns-500"

    reply = _answer(fake_tg, f"/cancel {task_id}", task_id)
    assert reply.startswith(f"🛑 {task_id} cancelled: hotfix/ · awaiting-human. Its agent")
    wait_until(lambda: any("Hotfix stopped" in t for t in fake_tg.texts(CHAT)), 30)
    stopped = next(t for t in fake_tg.texts(CHAT) if "Hotfix stopped" in t)
    assert "It left 2 changed files: app.py, hotfix_note.txt" in stopped
    assert f"/retry {task_id} runs it again · /close {task_id} archives it" in stopped
    assert "hotfix agent stopped (cancelled)" in tracker(shop, task_id)

    refused = _answer(fake_tg, f"/close {task_id}", task_id)
    assert "not committed: app.py, hotfix_note.txt" in refused and "--force" in refused
    assert Board(shop).find(task_id).lane is Lane.HOTFIX
    closed = _answer(fake_tg, f"/close {task_id} --force", task_id)
    assert closed.startswith(f"{task_id} closed: archived to done/")
    assert "hotfix closed by telegram; --force" in closed
    text = Board(shop).read_text(Board(shop).find(task_id))
    assert "closed_by: telegram" in text and "closed_uncommitted: true" in text
    assert task.parse(text).status == "closed"


def test_cancel_of_a_queued_hotfix_from_telegram(fake_tg: FakeTelegram, project: Path) -> None:
    """Without a daemon a filed hotfix stays queued: /cancel withdraws it to failed/."""
    from shopfloor import actions
    from shopfloor.notify.bot import Commands

    entry = actions.create_hotfix(Board(project), "Disk full")
    commands = Commands(project)
    try:
        assert commands.answer(f"/cancel {entry.id}") == (
            f"{entry.id} cancelled before its agent started: failed/ · closed"
        )
        assert commands.answer(f"/retry {entry.id}") == (
            f"{entry.id} queued for retry: hotfix/ · queued"
        )
    finally:
        commands.close_journal()
