"""The daemon with notifications wired in: a /hotfix from Telegram becomes a hotfix run, and a
hanging Telegram does not slow it down (issue 5).

The wiring is the contract: `Daemon(..., notify=partial(publish, journal, config))` plus a
`NotifyService` started beside it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.fakes.telegram_server import FakeTelegram
from tests.support import agent_command

from .conftest import CHAT, chat_daemon


@pytest.fixture
def shop(tmp_path: Path, fake_tg: FakeTelegram) -> Iterator[Path]:
    """A project whose hotfix agent patches at once, a daemon and the notify service."""
    with chat_daemon(tmp_path, fake_tg, agent_command("hotfix:patch"), reconcile_every=2.0) as root:
        yield root


def _hotfix_seconds(fake: FakeTelegram, root: Path, title: str) -> float:
    """From a /hotfix message to the HOTFIX file waiting for the human."""
    started = time.monotonic()
    fake.user_says(CHAT, f"/hotfix {title}")

    def waiting() -> bool:
        return any("status: awaiting-human" in p.read_text() for p in root.glob("tasks/hotfix/H*"))

    wait_until(waiting, 30, "the hotfix agent ran")
    return time.monotonic() - started


def test_a_telegram_hotfix_runs_and_reports_back(fake_tg: FakeTelegram, shop: Path) -> None:
    _hotfix_seconds(fake_tg, shop, "Checkout returns 500")
    wait_until(lambda: any("Hotfix waits for you" in t for t in fake_tg.texts(CHAT)))
    texts = fake_tg.texts(CHAT)
    assert any(t.startswith("🚨 HOTFIX-checkout-returns-500 filed in hotfix/") for t in texts)
    assert any("Hotfix started: HOTFIX-checkout-returns-500" in t for t in texts)


def test_a_hanging_telegram_does_not_slow_the_hotfix(fake_tg: FakeTelegram, shop: Path) -> None:
    fake_tg.failing = {"sendMessage"}
    fake_tg.set_mode("hang")
    seconds = _hotfix_seconds(fake_tg, shop, "Payments down")
    assert seconds < 5.0  # normally ~0.3 s here, with or without Telegram
    fake_tg.set_mode("normal")
    wait_until(lambda: any("Hotfix waits for you" in t for t in fake_tg.texts(CHAT)))
