"""Telegram `/status` shows the merge queue (issue 12 item 6): what is ready to land and why
it waits — the same `actions.status_report` as `shopfloor status`."""

from __future__ import annotations

from pathlib import Path

from shopfloor import actions, task
from shopfloor.board import Board
from shopfloor.landing import _record
from tests.fakes.telegram_server import FakeTelegram
from tests.support import TO_LANDING, apply_events

from .conftest import ServiceFactory, make_config, reply_to


def test_status_shows_the_queue_and_why_it_waits(
    fake_tg: FakeTelegram, service: ServiceFactory, project: Path
) -> None:
    board = Board(project)
    entry = actions.create_task(board, actions.NewTask("Land me", "spec", backlog=True))
    entry = apply_events(project, entry, *TO_LANDING)
    # What the queue itself writes when it waits (landing._wait_all): its record.
    _record(project, target="main", waiting="main is checked out and that tree is dirty")
    service(make_config(fake_tg))
    reply = reply_to(fake_tg, "/status")
    assert f"{entry.id} review/landing — Land me" in reply
    assert f"landing on main: {entry.id}" in reply
    assert "landing waits: main is checked out and that tree is dirty" in reply
    assert task.parse(board.read_text(board.find(entry.id))).status == "landing"
