"""Telegram commands end to end: a message to the fake Bot API, a reply back, a real board.

Rules (issue 5): commands only from chat_ids (others ignored, logged, never answered);
replies short enough for a phone; errors become the reply, never a dead bot; a bot that stops
receiving is restarted by its supervisor.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shopfloor import actions, defaults
from shopfloor.board import Board, Lane
from shopfloor.journal import Journal
from shopfloor.notify import NotifyService
from shopfloor.notify.bot import GENERIC_FAILURE, HELP, Commands
from shopfloor.notify.sender import Backoff, supervise
from tests.conftest import wait_until
from tests.fakes.telegram_server import FakeTelegram
from tests.support import edit_fields

from .conftest import CHAT, STRANGER, ServiceFactory, make_config, reply_to

Ask = Callable[[str], str]


@pytest.fixture
def bot(fake_tg: FakeTelegram, service: ServiceFactory) -> NotifyService:
    return service(make_config(fake_tg))


@pytest.fixture
def ask(fake_tg: FakeTelegram, bot: NotifyService) -> Iterator[Ask]:
    """Send a message from the allowed chat; the bot's reply."""

    def send(text: str) -> str:
        return reply_to(fake_tg, text)

    yield send


def test_help_status_new_show(ask: Ask, project: Path) -> None:
    assert ask("/help") == HELP
    assert ask("/status").startswith("hotfix 0 · active 0 · review 0 · backlog 0 · inbox 0")
    reply = ask("/new Retry Telegram sends\nWith back-off and jitter.")
    assert reply == "T-0001 filed in inbox/: Retry Telegram sends"
    text = Board(project).read_text(Board(project).find("T-0001"))
    assert "With back-off and jitter." in text and "telegram created in inbox" in text
    shown = ask("/show T-0001")
    assert shown.splitlines()[:2] == [
        "T-0001 — Retry Telegram sends",
        "inbox/ · queued · P2 · attempt 0/3",
    ]
    assert "With back-off and jitter." in shown and shown.endswith("full: shopfloor show T-0001")


def test_hotfix_files_the_hotfix_and_close_archives_it(ask: Ask, project: Path) -> None:
    reply = ask("/hotfix Payments are down\nstripe webhook 500s since 02:00")
    assert reply.startswith("🚨 HOTFIX-payments-are-down filed in hotfix/")
    path = project / "tasks" / "hotfix" / "HOTFIX-payments-are-down.md"
    text = path.read_text()
    assert "stripe webhook 500s since 02:00" in text and "telegram hotfix filed" in text
    assert "type: hotfix" in text and "priority: P0" in text
    assert ask("/status").splitlines()[1].startswith("🚨 HOTFIX-payments-are-down hotfix/queued")
    assert ask("/close HOTFIX-payments-are-down").startswith(
        "HOTFIX-payments-are-down closed: archived to done/\nhotfix closed by telegram"
    )
    assert not path.exists() and (project / "tasks/done/HOTFIX-payments-are-down.md").exists()


def test_approve_cancel_retry(ask: Ask, project: Path) -> None:
    board = Board(project)
    entry = actions.create_task(board, actions.NewTask("Gate me", backlog=True))
    assert ask(f"/approve {entry.id}") == (
        f"{entry.id} is in backlog/ with status queued; approve needs status awaiting-approval"
    )
    edit_fields(board.find(entry.id).path, status="awaiting-approval")
    assert ask(f"/approve {entry.id}") == f"{entry.id} approved: backlog/ · queued"
    assert ask(f"/cancel {entry.id}") == f"{entry.id} cancelled: failed/ · closed"
    assert ask(f"/retry {entry.id}") == f"{entry.id} queued for retry: backlog/ · queued"
    assert Board(project).find(entry.id).lane is Lane.BACKLOG


def test_control_characters_never_reach_a_chat(ask: Ask, project: Path) -> None:
    """Rule: titles, bodies and notifications are sent with control characters (ESC, BEL, CR,
    C1, bidi overrides) as visible escapes; newlines in a message stay."""
    from shopfloor import task
    from shopfloor.notify import events

    evil = "Pay\x1b[2J\x1b]0;pwned\x07 out\rX \x9b31m \u202egnp.exe"
    (project / "tasks" / "inbox" / "T-0009-evil.md").write_text(
        f"---\nid: T-0009\ntitle: {task.yaml_scalar(evil)}\n---\n# x\n\n"
        "## Request\nline one\x1b[31m red\rover\n"
    )
    raw = ("\x1b", "\x07", "\r", "\x9b", "\u202e")
    for command in ("/show T-0009", "/status"):
        reply = ask(command)
        assert not [c for c in raw if c in reply], (command, reply)
        assert "Pay\\x1b[2J\\x1b]0;pwned\\x07 out\\x0dX" in reply
    message = events.render(
        events.HOTFIX_AWAITING_HUMAN,
        {"task_id": "HOTFIX-x", "title": evil, "summary": "done\x1b[0m\nnext line"},
        7,
    )
    assert not [c for c in raw if c in message], message
    assert "done\\x1b[0m\nnext line" in message and message.endswith("\n#7")


def test_logs_tails_the_newest_run(ask: Ask, project: Path) -> None:
    entry = actions.create_task(Board(project), actions.NewTask("Logged"))
    assert ask(f"/logs {entry.id}") == f"{entry.id} has no runs yet."
    runs = project / defaults.STATE_DIR / "runs"
    with Journal.for_project(project) as journal:
        for run_id, marker in (("R-1", "old"), ("R-2", "new")):
            (runs / run_id).mkdir(parents=True)
            lines = "".join(f"{marker} line {n}\n" for n in range(200))
            (runs / run_id / "stdout.log").write_text(lines)
            journal.insert_run(run_id, entry.id, "coder")
    (runs / "R-2" / "stderr.log").write_text("Traceback: boom\n")
    reply = ask(f"/logs {entry.id}")
    assert reply.startswith(f"R-2 ({entry.id}), last lines:")
    assert "new line 199" in reply and "new line 150" not in reply and "old line" not in reply
    assert "— stderr.log\nTraceback: boom" in reply
    assert reply.endswith(f"full: shopfloor logs {entry.id}")


def test_errors_become_short_replies(ask: Ask) -> None:
    assert ask("/show T-9999") == "no task T-9999 on the board (see `shopfloor status`)"
    assert ask("/show ../../etc/passwd") == (
        "unsafe file name '../../etc/passwd': path separators are not allowed"
    )
    assert ask("/frobnicate") == "Unknown command /frobnicate. Send /help for the list."
    assert ask("/new") == "usage: /new TEXT (the first line is the title)"
    assert ask("/approve") == "usage: /approve ID (e.g. /approve T-0042)"
    assert ask("hello?") == "Send /help for the commands."


def test_long_output_is_trimmed_with_a_pointer(ask: Ask, project: Path) -> None:
    board = Board(project)
    for n in range(40):
        actions.create_task(board, actions.NewTask(f"Task number {n} " + "x" * 50))
    reply = ask("/status")
    assert len(reply) <= 1600
    assert reply.splitlines()[-1] == "… 25 more: shopfloor status"


def test_a_foreign_chat_is_ignored_logged_and_never_answered(
    fake_tg: FakeTelegram, ask: Ask, project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_tg.user_says(STRANGER, "/hotfix rm -rf everything")
    fake_tg.user_says(STRANGER, "/status")
    assert ask("/status").startswith("hotfix 0")  # handled after the stranger's messages
    assert fake_tg.messages(STRANGER) == []
    assert list((project / "tasks" / "hotfix").glob("HOTFIX-*")) == []
    assert f"ignored a telegram message from chat {STRANGER}" in caplog.text


def test_a_command_older_than_max_command_age_is_refused(
    fake_tg: FakeTelegram, bot: NotifyService, project: Path
) -> None:
    fake_tg.user_says(CHAT, "/hotfix Something from yesterday", date=time.time() - 7200)
    wait_until(lambda: fake_tg.messages(CHAT))
    assert fake_tg.texts(CHAT) == ["Ignored /hotfix: it was sent 120 min ago. Send it again."]
    assert list((project / "tasks" / "hotfix").glob("HOTFIX-*")) == []


def test_commands_run_once_even_when_the_service_restarts(
    fake_tg: FakeTelegram, service: ServiceFactory, project: Path
) -> None:
    """The update offset is saved before commands run: a restart never repeats a /hotfix."""
    cfg = make_config(fake_tg)
    first = service(cfg)
    fake_tg.user_says(CHAT, "/new Only once")
    wait_until(lambda: fake_tg.messages(CHAT))
    first.stop(3.0)
    service(cfg)
    fake_tg.user_says(CHAT, "/status")
    # At-least-once delivery may repeat a reply across the restart: find the status reply.
    # (a re-run /new would make the status reply say "inbox 2" and this wait fail).
    wait_until(lambda: any("inbox 1" in t for t in fake_tg.texts(CHAT)), what="status reply")
    assert len(Board(project).scan().entries) == 1


def test_the_bot_recovers_after_get_updates_hangs(
    fake_tg: FakeTelegram, service: ServiceFactory
) -> None:
    fake_tg.failing = {"getUpdates"}
    fake_tg.set_mode("hang")
    svc = service(make_config(fake_tg))
    fake_tg.user_says(CHAT, "/status")
    wait_until(lambda: svc.status()["bot"]["failures"] >= 1, what="getUpdates timed out")
    assert "TimedOut" in svc.status()["bot"]["last_error"]
    assert fake_tg.messages(CHAT) == []
    fake_tg.set_mode("normal")
    wait_until(lambda: fake_tg.messages(CHAT), what="the queued command answered")
    assert fake_tg.texts(CHAT)[0].startswith("hotfix 0")


def test_an_unexpected_error_is_logged_and_answered_generically(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = project / defaults.TASKS_DIR / "inbox"
    shutil.rmtree(inbox)
    inbox.write_text("a lane that is a file")  # the scan raises an OSError, no ShopfloorError
    assert Commands(project).answer("/status") == GENERIC_FAILURE
    assert "telegram /status failed" in caplog.text and "Traceback" in caplog.text


def _run_supervised(life: Callable[[], object], stalled: Callable[[], bool] | None) -> list[str]:
    reasons: list[str] = []

    async def main() -> None:
        task = asyncio.create_task(
            supervise("test loop", life, Backoff(0.01, 0.02), stalled, 0.02, reasons.append)  # type: ignore[arg-type]
        )
        deadline = time.monotonic() + 10
        while len(reasons) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    return reasons


def test_the_supervisor_restarts_a_loop_that_stops_receiving() -> None:
    beats: list[float] = []

    async def life() -> None:
        beats.append(time.monotonic())
        await asyncio.Event().wait()  # hangs without ever reporting back

    reasons = _run_supervised(life, lambda: time.monotonic() - beats[-1] > 0.1)
    assert reasons[:2] == ["stopped receiving", "stopped receiving"] and len(beats) >= 2


def test_the_supervisor_restarts_a_loop_that_dies() -> None:
    async def life() -> None:
        raise RuntimeError("boom")

    assert _run_supervised(life, None)[:2] == ["died (RuntimeError: boom)"] * 2


def test_with_an_empty_allowlist_the_log_shows_the_chat_id_to_add(
    fake_tg: FakeTelegram, service: ServiceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """How a user finds their chat id: message the bot, read the daemon log."""
    svc = service(make_config(fake_tg, tg={"chat_ids": []}))
    fake_tg.user_says(987654321, "/start")
    wait_until(lambda: svc.status()["bot"]["ignored"] == 1)
    assert "from chat 987654321 user 987654321 (not in notify.telegram.chat_ids" in caplog.text
    assert svc.status()["channels"]["telegram"]["state"] == "off"
    assert fake_tg.messages() == []
